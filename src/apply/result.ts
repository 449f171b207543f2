// What a reconcile reports (apply/reconcile.ts), and the report of a hook that
// a later-started reconcile covered (hook/coalesce.ts). Apart from reconcile
// itself so that a hook covered before it loaded the firewall code
// (hook/covered-early.ts) can report without loading it.
import type { FlowDeletion } from "./stale-flows.js";
import type { BackendChoice, BackendName } from "../host/backend.js";
import type { Plan, RuleCounts } from "../plan/intents.js";
import { readState, type AppliedState } from "../effects/state-store.js";
import type { FamilySync } from "./iptables-backend.js";

export interface ReconcileResult {
  readonly plan: Plan;
  readonly backend: BackendChoice;
  readonly families: readonly FamilySync[];
  /** Leftovers removed from the backend libvirt no longer uses. */
  readonly removedFrom: readonly string[];
  /** Nothing looked at: a hook that started after this one had just verified the same desired state. */
  readonly coalesced?: boolean;
  /** Nothing looked at: the watcher verified these very inputs then and heard no change since (effects/quiet-record.ts). */
  readonly quietSince?: string;
  /** Rule counts when `plan` was not computed (covered before reading the host: hook/coalesce.ts). */
  readonly counts?: RuleCounts;
  /** Tracked connections deleted because their guest's egress/map translation changed (apply/stale-flows.ts). */
  readonly flows?: readonly FlowDeletion[];
}

/**
 * The result of a hook covered before it read the host (hook/coalesce.ts):
 * nothing planned or looked at; the families and rule counts as the covering
 * reconcile left and reported them.
 */
export function coveredResult(stateDir: string, counts: RuleCounts, quietSince?: string): ReconcileResult {
  const families = unchangedFamilies(readState(stateDir));
  const backend: BackendName = families[0]?.backend ?? "iptables";
  return {
    plan: { forwards: [], masquerades: [], accepts: [], egress: [], states: [] },
    backend: { backend, why: "as the covering reconcile applied it" },
    families,
    removedFrom: [],
    coalesced: true,
    counts,
    ...(quietSince !== undefined ? { quietSince } : {}),
  };
}

/** The families as recorded, reported as in sync (what the covering reconcile left). */
export function unchangedFamilies(state: AppliedState): FamilySync[] {
  return ([4, 6] as const).flatMap((family) => {
    const r = state.families[`ipv${family}`];
    return r ? [{ family, backend: r.backend ?? "iptables", added: 0, removed: 0, rules: r.rules, ...(r.hash ? { hash: r.hash } : {}) }] : [];
  });
}
