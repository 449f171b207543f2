// The watcher's side of the quiet record (effects/quiet-record.ts): withdrawn
// the moment anything that could matter is heard, given again only after a
// clean reconcile during which nothing was heard and nothing it was computed
// from moved. Hooks trust it only while this process runs.
import type { Paths } from "../config/paths.js";
import type { Context } from "../converge/context.js";
import type { Converged } from "../converge/converge.js";
import { readTextIfAny } from "../effects/read-text.js";
import { dropQuiet, writeQuiet } from "../effects/quiet-record.js";
import { selfIdentity } from "../effects/process-identity.js";
import { spawnTool } from "../effects/light-spawn.js";
import { toolPath } from "../effects/exec.js";
import { statusIdentity } from "../effects/status-identity.js";
import { inputsKey } from "../hook/coalesce.js";
import { countStates } from "../plan/intents.js";
import { interestOf } from "../plan/interest.js";

export interface QuietKeeper {
  /** Something that could matter was heard (a netfilter change, a firewalld signal, rules.d, a source going down). */
  heard(): void;
  /** Before a reconcile: what it starts from, to compare after it. */
  begin(ctx: Context): QuietPending;
  /**
   * After it: the record, when the reconcile was clean, changed nothing,
   * nothing was heard and nothing moved meanwhile, and the monitor hears the
   * backend's changes.
   */
  end(p: QuietPending, result: Converged, o: { readonly monitorUp: boolean; readonly changed: boolean }): void;
  stop(): void;
}

export interface QuietPending {
  readonly heardBefore: number;
  readonly inputs: string | undefined;
  readonly ctx: Context;
}

/**
 * `iptablesHeard`: the iptables tools are iptables-nft, whose changes nft
 * monitor prints. iptables-legacy's are invisible to it: then the word is
 * never given on that backend, and hooks look at the kernel as before.
 */
export function createQuietKeeper(paths: Paths, iptablesHeard: boolean): QuietKeeper {
  let heard = 0;
  // Computed as a hook computes it (hook/covered-early.ts): rules.d's text, the identity of the
  // status files of the domains rules name and of every network, network.conf.
  const inputsOf = (ctx: Context): string | undefined => {
    // egress and map wait for addresses this host may gain or lose, which no key here follows.
    if (ctx.ruleErrors || ctx.problems.length > 0 || ctx.compiled.diagnostics.length > 0 || ctx.compiled.rules.egress.length > 0) return undefined;
    return inputsKey({ rules: ctx.files, statusIdentity: statusIdentity(paths.libvirtRunDir, interestOf(ctx.compiled.rules).domains), networkConf: readTextIfAny(paths.networkConf) });
  };
  return {
    heard: () => {
      heard++;
      dropQuiet(paths.stateDir);
    },
    begin: (ctx) => ({ heardBefore: heard, inputs: inputsOf(ctx), ctx }),
    end: (p, result, { monitorUp, changed }) => {
      const hearsBackend = result.backend.backend === "nftables" || iptablesHeard;
      const clean = !result.families.some((f) => f.error) && result.problems.length === 0 && result.hosts.problems.length === 0;
      const counts = countStates(result.plan.states);
      if (!monitorUp || !hearsBackend || !clean || counts.failed > 0 || p.inputs === undefined || heard !== p.heardBefore) return;
      // A repair's own transaction comes back through nft monitor, maybe only
      // after this (a loaded host): a word given now would be withdrawn by
      // that echo moments later, while a hook may be reading it. The echo's
      // check, which changes nothing, gives it instead.
      if (changed) return;
      // Fixed addresses converged (virsh net-update rewrote a network's status file): inputs moved.
      if (inputsOf(p.ctx) !== p.inputs || result.hosts.changed) return;
      writeQuiet(paths.stateDir, { watcher: selfIdentity(), inputs: p.inputs, counts, since: new Date().toISOString() });
    },
    stop: () => {
      heard++;
      dropQuiet(paths.stateDir);
    },
  };
}

/** Whether `iptables` here is iptables-nft (its changes reach nft monitor): asked once, as the watcher starts. */
export async function iptablesIsNft(): Promise<boolean> {
  const r = await spawnTool("iptables", ["-V"], { input: "", timeoutMs: 3000, maxBytes: 64 * 1024, env: { PATH: toolPath(), LC_ALL: "C" } });
  return r.exitCode === 0 && /\(nf_tables\)/.test(r.stdout);
}
