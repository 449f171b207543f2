// One reconcile: the whole desired state from rules and the running host, made
// true in the kernel, and recorded. Used by every hook event and by `apply`.
import { readTextIfAny } from "../effects/read-text.js";
import type { Family } from "../net/ip.js";
import type { HostView } from "../host/view.js";
import { chooseBackend } from "../host/backend.js";
import type { Plan } from "../plan/intents.js";
import { resolvePlan } from "../plan/resolve.js";
import type { RuleSet } from "../rules/model.js";
import type { RunTool } from "../effects/exec.js";
import { readState, readVerified, writeState, writeVerified, type AppliedFamily, type AppliedState, type Verified } from "../effects/state-store.js";
import { countStates, type RuleCounts } from "../plan/intents.js";
import { defaultPaths } from "../config/paths.js";
import type { FamilySync } from "./iptables-backend.js";
import { firewallFor, otherFirewall, type Firewall } from "./firewall.js";
import { digest } from "./digest.js";
import { unchangedFamilies, type ReconcileResult } from "./result.js";
import { deleteStaleFlows, plannedTranslations, recordedTranslations, staleFlowCommands, type FlowDeletion } from "./stale-flows.js";
import { withLocalAddresses } from "../effects/host-addresses.js";

export interface ReconcileOptions {
  readonly rules: RuleSet;
  readonly view: HostView;
  readonly stateDir: string;
  readonly run: RunTool;
  readonly dryRun: boolean;
  /** Look at both families and both backends even when we have nothing there (CLI: cleans up leftovers). */
  readonly everyFamily: boolean;
  /** libvirt's network.conf (firewall_backend); defaults to the standard path. */
  readonly networkConf?: string;
  /**
   * Hooks: CLOCK_MONOTONIC ns when this hook started (process.hrtime.bigint()).
   * A reconcile that started looking at the kernel after it, for the same
   * desired state, makes this one's look unnecessary.
   */
  readonly startedAt?: bigint;
  /** Hooks: the key of what this desired state is computed from (hook/coalesce.ts), recorded when it is clean. */
  readonly inputsKey?: string;
}



export async function reconcile(o: ReconcileOptions): Promise<ReconcileResult> {
  // egress/map wait for an address this host lacks: read its addresses only when such statements exist.
  const plan = resolvePlan(o.rules, withLocalAddresses(o.view, o.rules));
  const backend = chooseBackend(o.rules.settings.backend, o.view, readTextIfAny(o.networkConf ?? defaultPaths().networkConf));
  const state = readState(o.stateDir);
  // Chosen once: every step below goes through this backend's Firewall (firewall.ts).
  const fw = firewallFor(backend.backend);
  const key = desiredKey(plan, fw);
  if (!o.dryRun && o.startedAt !== undefined && coveredBy(readVerified(o.stateDir), o.startedAt, key)) {
    return { plan, backend, families: unchangedFamilies(state), removedFrom: [], coalesced: true };
  }
  const lookedAt = process.hrtime.bigint();
  const families: FamilySync[] = [];
  const removedFrom: string[] = [];
  const flows: FlowDeletion[] = [];
  for (const family of [4, 6] as const) {
    const recorded = state.families[`ipv${family}`];
    const wanted = hasRules(plan, family) || recorded !== undefined;
    if (!wanted && !o.everyFamily) continue;
    const sync = await fw.sync(o.run, plan, family, o.dryRun, recorded);
    // Nothing of ours in a family whose tools or kernel support are missing: not a problem.
    if (sync.error && !wanted) continue;
    families.push(sync);
    // Only after a transaction that went in: flows keep their first translation (apply/stale-flows.ts).
    if (!sync.error && !o.dryRun && sync.transaction !== undefined) {
      const commands = staleFlowCommands(recordedTranslations(recorded?.rules ?? [], family), plannedTranslations(plan, family));
      if (commands.length) flows.push(...(await deleteStaleFlows(o.run, commands)));
    }
    // libvirt switched backends (network.conf + restart): leave nothing behind in the old one.
    const old = otherFirewall(fw.name);
    if (!sync.error && !o.dryRun && (recorded?.backend === old.name || (o.everyFamily && recorded?.backend === undefined))) {
      const removed = await old.remove(o.run, family, false);
      if (removed.transaction && !removed.error) removedFrom.push(`${old.name} ipv${family}`);
    }
  }
  if (!o.dryRun) {
    record(o.stateDir, state, families);
    const clean = families.every((f) => !f.error);
    // Inputs are recorded only when every rule is fine: a covered hook then has no problem to report.
    const counts = countStates(plan.states);
    const inputs = o.inputsKey !== undefined && counts.failed === 0 ? { inputs: o.inputsKey, counts } : {};
    // Not recorded (a refused or full state directory): the next hook simply looks for itself.
    writeVerified(o.stateDir, clean ? { at: lookedAt, key, ...inputs } : undefined);
  }
  return { plan, backend, families, removedFrom, ...(flows.length ? { flows } : {}) };
}

/*
 * Coalescing (libvirtd restarts: one `reconnect` per running guest, all at
 * once, serialised by our lock; each would look at the kernel and find it
 * in sync). A hook may skip its own look when a reconcile that STARTED
 * LOOKING AFTER THIS HOOK STARTED already made the kernel hold exactly the
 * same desired state. That is provably as good as looking itself: whatever
 * this hook's event changed happened before the hook started, so the later
 * look saw it and fixed it; whatever changed after that look happened after
 * this hook began, as if this hook had run first. Identical desired state is
 * checked on the rendered result (the key below), not assumed; a reconcile
 * with any error records nothing.
 */
function desiredKey(plan: Plan, fw: Firewall): string {
  return digest(fw.name, ...([4, 6] as const).map((f) => fw.rendered(plan, f)));
}

function coveredBy(v: Verified | undefined, startedAt: bigint, key: string): boolean {
  return v !== undefined && v.at > startedAt && v.key === key;
}


function hasRules(plan: Plan, family: Family): boolean {
  return plan.forwards.some((f) => f.family === family) || plan.masquerades.some((m) => m.subnet.family === family) || plan.accepts.some((a) => a.from.family === family) || plan.egress.some((e) => e.family === family);
}

function record(stateDir: string, before: AppliedState, families: readonly FamilySync[]): void {
  const next: AppliedState = { families: { ...before.families } };
  const at = new Date().toISOString();
  const families_ = next.families as Record<string, unknown>;
  for (const f of families) {
    if (f.error) continue;
    const key = `ipv${f.family}`;
    // A family with nothing of ours is not managed: later hooks need not look at it.
    if (f.rules.length === 0) delete families_[key];
    else {
      const entry = { backend: f.backend, rules: f.rules, ...(f.hash ? { hash: f.hash } : {}), ...(f.kernelHash ? { kernelHash: f.kernelHash } : {}) };
      const old = families_[key] as AppliedFamily | undefined;
      // Unchanged: keep the old entry and its time (when this was applied, not last looked at).
      families_[key] = old && sameEntry(old, entry) ? old : { ...entry, at };
    }
  }
  // Most events change nothing: then the file is not rewritten either.
  if (JSON.stringify(next) === JSON.stringify(before)) return;
  // Recording is an optimisation and a report; never a reason to fail a hook (state-dir.ts reports, never throws).
  writeState(stateDir, next);
}

function sameEntry(a: AppliedFamily, b: Omit<AppliedFamily, "at">): boolean {
  return a.backend === b.backend && a.hash === b.hash && a.kernelHash === b.kernelHash && a.rules.length === b.rules.length && a.rules.every((r, i) => r === b.rules[i]);
}
