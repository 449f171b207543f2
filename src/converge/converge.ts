// The one door to the reconcile (issue 27): the hook, `plan --event`, `apply`
// (and the units, which run it), `plan` and the watcher all enter here, each
// with its row of occasion.ts. What a run includes is that row, not which
// face called: fixed addresses first (outside the firewall lock: `net-update
// --live` fires the network's `updated` hook, which takes that lock while virsh
// waits for it), then under the lock the event's own steps (re-attach,
// uplinks and routes), then the firewall (apply/reconcile.ts).
//
// The hook's lazy-loading boundary holds: converging `host` statements needs
// virsh, which a hook must never reach, so that step is passed in by the faces
// that may take it (converge/host-entries.ts), never imported here.
import type { Paths } from "../config/paths.js";
import { reconcile } from "../apply/reconcile.js";
import type { ReconcileResult } from "../apply/result.js";
import { acquireLock, type Lock } from "../effects/lock.js";
import type { RunTool } from "../effects/exec.js";
import { applyReattach, readLinks, readMtu } from "../effects/links.js";
import { linksForEvent } from "../effects/links-apply.js";
import { rulesKey, writeCachedInterest } from "../effects/interest-cache.js";
import { interestOf } from "../plan/interest.js";
import type { HostView } from "../host/view.js";
import type { NetworkInfo } from "../libvirt/network.js";
import { planReattach, type ReattachAction } from "../plan/reattach.js";
import type { RuleSet } from "../rules/model.js";
import type { SourceFile } from "../rules/source.js";
import type { Occasion } from "./occasion.js";

/** What converging the `host` statements did (converge/host-entries.ts). */
export interface HostEntriesResult {
  readonly states: readonly import("../plan/fixed-addresses.js").HostEntryState[];
  readonly done: readonly string[];
  readonly problems: readonly string[];
  readonly changed: boolean;
}

export const NO_HOST_ENTRIES: HostEntriesResult = { states: [], done: [], problems: [], changed: false };

/** The event's own steps (occasion.eventSteps): which network, and what its event asks for. */
export interface EventSteps {
  readonly network: string;
  readonly reattach: boolean;
  readonly links?: "up" | "down";
  /** The network as the event's XML named it (a stop's network is gone from the status files). */
  readonly fromEvent?: NetworkInfo;
}

export interface ConvergeInputs {
  readonly rules: RuleSet;
  /** The host as the face read it (a hook: corrected by its event). */
  readonly view: HostView;
  readonly paths: Paths;
  /** rules.d as read, for the hooks' interest record (occasion.primeInterest). */
  readonly files?: readonly SourceFile[];
  /** The rules compiled without a diagnostic (recorded with the interest). */
  readonly clean?: boolean;
  readonly event?: EventSteps;
  /** A lock the face already holds (the hook's covered-early.ts): released by the face. */
  readonly held?: Lock;
  /** Hooks: when the hook started, and the key of its inputs (hook/coalesce.ts). */
  readonly startedAt?: bigint;
  readonly inputsKey?: string;
}

export interface ConvergeIo {
  readonly run: RunTool;
  /** Converges `host` statements; given only by faces that may call libvirt. */
  readonly hostEntries?: (view: HostView, dryRun: boolean) => Promise<HostEntriesResult>;
  /** libvirt's status files read again (after fixed addresses changed what they hold). */
  readonly rereadView?: () => HostView;
}

export type Converged = ReconcileResult & {
  readonly hosts: HostEntriesResult;
  /** Taps put back (or, dry, to put back) on the event's network's bridge. */
  readonly reattached: readonly ReattachAction[];
  /** Phrases for the face's one log line (re-attached taps, moved uplinks). */
  readonly notes: readonly string[];
  /** Lines that follow it (the lock's notes, a failed re-attach or links step). */
  readonly problems: readonly string[];
};

export async function converge(occasion: Occasion, i: ConvergeInputs, io: ConvergeIo): Promise<Converged> {
  const hosts = occasion.hostEntries && io.hostEntries ? await io.hostEntries(i.view, occasion.dryRun) : NO_HOST_ENTRIES;
  const view = hosts.changed && io.rereadView ? io.rereadView() : i.view;
  const notes: string[] = [];
  const problems: string[] = [];
  let reattached: ReattachAction[] = [];
  // LockTimeout propagates: the face says what it means for it.
  const taken = occasion.dryRun || i.held ? undefined : await acquireLock(i.paths.stateDir);
  problems.push(...(taken?.notes ?? []));
  try {
    // The hooks' record of what these rules name, so that the events after an
    // apply (a libvirtd restart's storm) decide without compiling rules.d.
    if (occasion.primeInterest && !occasion.dryRun && i.files) writeCachedInterest(i.paths.stateDir, rulesKey(i.files), { ...interestOf(i.rules), clean: i.clean ?? false });
    if (occasion.eventSteps && i.event) {
      // Neither may cost the firewall its reconcile: whatever they throw is a problem line.
      const besides = async (what: string, step: () => Promise<string[]>) => {
        try {
          notes.push(...(await step()));
        } catch (e) {
          problems.push(`${what}: ${(e as Error).message}`);
        }
      };
      const ev = i.event;
      if (ev.reattach) await besides("re-attach", async () => {
        const r = await reattachGuests(ev.network, view, io.run, occasion.dryRun, problems);
        reattached = r.actions;
        return r.notes;
      });
      if (ev.links) await besides("links", () => linksForEvent(ev.links, ev.network, ev.fromEvent, view.networks, i.rules, i.paths.stateDir, io.run, problems, occasion.dryRun));
    }
    const result = await reconcile({
      rules: i.rules,
      view,
      stateDir: i.paths.stateDir,
      run: io.run,
      dryRun: occasion.dryRun,
      everyFamily: occasion.everyFamily,
      networkConf: i.paths.networkConf,
      ...(occasion.coalesce && i.startedAt !== undefined ? { startedAt: i.startedAt } : {}),
      ...(occasion.coalesce && i.inputsKey !== undefined ? { inputsKey: i.inputsKey } : {}),
    });
    return { ...result, hosts, reattached, notes, problems };
  } finally {
    await taken?.release();
  }
}

/** Taps of running guests back onto a restarted network's bridge: what was (or, dry, would be) done, and notes for the log line. */
async function reattachGuests(networkName: string, view: HostView, run: RunTool, dryRun: boolean, problems: string[]): Promise<{ actions: ReattachAction[]; notes: string[] }> {
  const network = view.networks.get(networkName);
  if (!network?.bridge) return { actions: [], notes: [] };
  const taps = [...view.domains.values()].flatMap((d) => d.interfaces.flatMap((i) => (i.tap ? [i.tap] : [])));
  const actions = planReattach(network, view.domains.values(), readLinks(taps), readMtu(network.bridge));
  if (actions.length === 0) return { actions, notes: [] };
  const list = actions.map((a) => `${a.tap} (${a.domain})`).join(", ");
  if (dryRun) return { actions, notes: [`would re-attach ${list} to ${network.bridge}`] };
  const error = await applyReattach(run, actions);
  if (error) problems.push(`re-attach to ${network.bridge}: ${error}`);
  return { actions, notes: [`re-attached ${list} to ${network.bridge}`] };
}
