// The coalescing check of hook/coalesce.ts, made before the deferred code is
// loaded. On a libvirtd restart every running guest's `reconnect` starts at
// once; all but the first find that a reconcile which started after them
// verified their very inputs. Reaching that answer through handle-event.ts
// meant compiling the deferred bundle, the rules and the event's XML in every
// one of them: on a 2-core host, 50 such hooks cost four times as much as 50
// trivial executables (bench/, issue 15).
//
// Here nothing is parsed. An event whose corrections are "this domain is up,
// as its XML says" (policy.ts upFromXml) adds nothing when the domain's status
// file says all that XML says (a reconnect: libvirt formats it from the
// definition it keeps there; libvirt/domain-text.ts), so the inputs are
// rules.d's text, the status files' identities and network.conf: the key of
// coalesce.ts, compared with the record of the last clean reconcile. Not
// covered yet (the storm's first hook is reconciling), it waits for the lock,
// asking again between attempts (no queue: every waiter sees the record the
// moment it is written); given the lock, it asks once more and, still not
// covered, keeps the lock for handle-event.ts.
//
// Only when the cached interest says that rules.d compiled without a single
// diagnostic and nothing in it was refused: a covered hook reports no problem.
import { join } from "node:path";
import { readTextIfAny } from "../effects/read-text.js";
import { statusIdentity } from "../effects/status-identity.js";
import { readVerified } from "../effects/state-store.js";
import { readQuiet } from "../effects/quiet-record.js";
import { acquireLockUnless, type Lock } from "../effects/lock.js";
import type { RuleFiles } from "../effects/rules-files.js";
import type { Paths } from "../config/paths.js";
import type { HookEvent } from "../libvirt/event.js";
import { readRulesKeepingLastGood } from "../effects/last-good.js";
import { coveredResult, type ReconcileResult } from "../apply/result.js";
import { coveredBefore, inputsKey } from "./coalesce.js";
import { statusHoldsDomain } from "../libvirt/domain-text.js";
import { rulesKey, type CachedInterest } from "../effects/interest-cache.js";
import type { Decision } from "./policy.js";

export interface EarlyInputs {
  readonly event: HookEvent;
  readonly decision: Extract<Decision, { kind: "reconcile" }>;
  readonly interest: CachedInterest;
  readonly xml: string;
  readonly files: RuleFiles;
  readonly paths: Paths;
  readonly startedAt: bigint;
}

/** Not covered, with our lock held for handle-event.ts. */
export interface Held {
  readonly lock: Lock;
  /**
   * The coalescing key, computed under the lock from rules.d read again there
   * (identical to what the hook started with) and the status files: then
   * handle-event.ts need read and compute neither again. Absent when rules.d
   * changed meanwhile or the event is no longer eligible.
   */
  readonly inputs?: string;
}

/** covered: this hook is done (report it). held: not covered, go on with the lock. Neither: not a case this check can decide. */
export type Early = { readonly covered: ReconcileResult } | { readonly held: Held } | Record<string, never>;

export async function coveredEarly(i: EarlyInputs): Promise<Early> {
  if (!eligible(i)) return {};
  const key = () => inputsKey({ rules: i.files.files, statusIdentity: statusIdentity(i.paths.libvirtRunDir, i.interest.domains), networkConf: readTextIfAny(i.paths.networkConf) });
  // Computed once: what this hook would compute from, as it started. A reconcile
  // that recorded these very inputs later covers it (coalesce.ts), whatever
  // changed since: that belongs to later events.
  const mine = key();
  let covered = coveredBy(i, mine);
  if (covered) return { covered };
  // While the storm's first hook reconciles, every other one polls the record (a
  // small file, written by rename) between its attempts on the lock.
  const lock = await acquireLockUnless(i.paths.stateDir, () => (covered = coveredBy(i, mine)) !== undefined);
  if (!lock) return covered ? { covered } : {};
  try {
    // rules.d and the status files as they are now: an `apply` or a hook with
    // other rules may have run while we waited.
    const now = readRulesKeepingLastGood(i.paths.rulesDir, i.paths.stateDir);
    const same = now.problems.length === 0 && rulesKey(now.files) === rulesKey(i.files.files);
    if (!same || !eligible(i)) return { held: { lock } };
    const inputs = key();
    covered = coveredBy(i, inputs);
    if (covered) {
      await lock.release();
      return { covered };
    }
    return { held: { lock, inputs } };
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/** A qemu event with nothing but upFromXml corrections, a clean rules.d, and the domain's status file holding the event's XML. */
function eligible(i: EarlyInputs): boolean {
  const d = i.decision;
  if (i.event.driver !== "qemu" || !d.upFromXml || d.vetoable || d.links || d.reattach || d.relevant) return false;
  if (!i.interest.clean || i.files.problems.length > 0) return false;
  const text = readTextIfAny(join(i.paths.libvirtRunDir, "qemu", `${i.event.object}.xml`));
  return text !== undefined && statusHoldsDomain(text, i.xml);
}

function coveredBy(i: EarlyInputs, key: string): ReconcileResult | undefined {
  return coveredFor(i.paths.stateDir, i.startedAt, key);
}

/**
 * Covered: a reconcile that started after this hook recorded these very
 * inputs (coalesce.ts), or the running watcher verified them and has heard no
 * change since (effects/quiet-record.ts).
 */
export function coveredFor(stateDir: string, startedAt: bigint, key: string): ReconcileResult | undefined {
  const verified = readVerified(stateDir);
  if (coveredBefore(verified, startedAt, key)) return coveredResult(stateDir, verified.counts);
  const quiet = readQuiet(stateDir);
  return quiet?.inputs === key && quiet.counts.failed === 0 ? coveredResult(stateDir, quiet.counts, quiet.since) : undefined;
}
