// One reconcile: the whole desired state from rules and the running host, made
// true in the kernel, and recorded. Used by every hook event and by `apply`.
import type { Family } from "../net/ip.js";
import type { HostView } from "../host/view.js";
import type { Plan } from "../plan/intents.js";
import { resolvePlan } from "../plan/resolve.js";
import type { RuleSet } from "../rules/model.js";
import type { RunTool } from "../effects/exec.js";
import { readState, writeState, type AppliedState } from "../effects/state-store.js";
import { syncIptables, type FamilySync } from "./iptables-backend.js";

export interface ReconcileOptions {
  readonly rules: RuleSet;
  readonly view: HostView;
  readonly stateDir: string;
  readonly run: RunTool;
  readonly dryRun: boolean;
  /** Look at both families even when we have nothing there (CLI apply/plan: cleans up leftovers). */
  readonly everyFamily: boolean;
}

export interface ReconcileResult {
  readonly plan: Plan;
  readonly families: readonly FamilySync[];
}

export async function reconcile(o: ReconcileOptions): Promise<ReconcileResult> {
  const plan = resolvePlan(o.rules, o.view);
  const state = readState(o.stateDir);
  const families: FamilySync[] = [];
  for (const family of [4, 6] as const) {
    const wanted = hasRules(plan, family) || state.families[`ipv${family}`] !== undefined;
    if (!wanted && !o.everyFamily) continue;
    const sync = await syncIptables(o.run, plan, family, o.dryRun);
    // Nothing of ours in a family whose tools or kernel support are missing: not a problem.
    if (sync.error && !wanted) continue;
    families.push(sync);
  }
  if (!o.dryRun) record(o.stateDir, state, families);
  return { plan, families };
}

function hasRules(plan: Plan, family: Family): boolean {
  return plan.forwards.some((f) => f.family === family) || plan.masquerades.some((m) => m.subnet.family === family) || plan.accepts.some((a) => a.from.family === family);
}

function record(stateDir: string, before: AppliedState, families: readonly FamilySync[]): void {
  const next: AppliedState = { families: { ...before.families } };
  const at = new Date().toISOString();
  for (const f of families) if (!f.error) (next.families as Record<string, unknown>)[`ipv${f.family}`] = { rules: f.rules, at };
  try {
    writeState(stateDir, next);
  } catch {
    // Recording is an optimisation and a report; never a reason to fail a hook.
  }
}
