// The watcher's word that the firewall has not changed: "at SINCE I (pid,
// start) verified that the kernel holds the desired state computed from
// INPUTS, and I have heard no change to any table that holds or could bury
// our rules since". A hook whose own inputs are exactly INPUTS then has
// nothing to look at (hook/covered-early.ts): no iptables-save, no nft list,
// no child at all (issue 28: a `reconnect` after `systemctl restart virtqemud`,
// where the firewall did not move).
//
// When it may be believed, all of:
// - it is in the state directory (root's alone all the way from /: state-dir.ts);
// - the watcher that wrote it still runs (pid and start time): a watcher that
//   stopped or died hears nothing any more, so its word ends with it;
// - the watcher hears every change that matters: its `nft monitor` was up,
//   and the backend's changes reach it (nftables, or iptables-nft; never
//   iptables-legacy, which nft monitor cannot see: then it writes none);
// - it was written after a clean reconcile whose inputs did not move while it
//   ran, and with no event heard meanwhile;
// - the watcher deletes it, synchronously, on every event it hears that could
//   matter, before anything else.
// What remains is the moment between a change reaching the kernel and the
// watcher reading its line (milliseconds when the watcher is idle): a hook in
// that moment skips, and the watcher repairs it as for any change no hook
// sees (its own ≤ 1 s bound), exactly as if that change had come just after
// the hook.
import { unlinkSync } from "node:fs";
import { join } from "node:path";
import type { RuleCounts } from "../plan/intents.js";
import { isRunning, type ProcessIdentity } from "./process-identity.js";
import { readJsonRecord, writeRecord } from "./state-dir.js";

export const QUIET_FILE = "quiet.json";

export interface Quiet {
  readonly watcher: ProcessIdentity;
  /** The coalescing key of hook/coalesce.ts (rules.d, status file identities, network.conf). */
  readonly inputs: string;
  /** What the verifying reconcile reported (a covered hook reports the same). */
  readonly counts: RuleCounts;
  /** ISO time of that reconcile. */
  readonly since: string;
}

export function writeQuiet(stateDir: string, q: Quiet): string | undefined {
  return writeRecord(stateDir, QUIET_FILE, JSON.stringify(q) + "\n");
}

/** Gone, or never there. Synchronous on purpose: the watcher calls it as it hears a change. */
export function dropQuiet(stateDir: string): void {
  try {
    unlinkSync(join(stateDir, QUIET_FILE));
  } catch {
    // Missing already, or a state directory we may not write (then no quiet record was ever written there).
  }
}

/** The record, only while the watcher that wrote it runs. */
export function readQuiet(stateDir: string): Quiet | undefined {
  const q = readJsonRecord(stateDir, QUIET_FILE, 64 * 1024) as Partial<Record<keyof Quiet, unknown>> | undefined;
  if (!q || typeof q !== "object") return undefined;
  const w = q.watcher as Partial<ProcessIdentity> | undefined;
  const c = q.counts as Partial<RuleCounts> | undefined;
  if (!w || !Number.isInteger(w.pid) || typeof w.start !== "string" || !/^\d+$/.test(w.start)) return undefined;
  if (!c || ![c.live, c.waiting, c.failed].every((n) => Number.isInteger(n))) return undefined;
  if (typeof q.inputs !== "string" || typeof q.since !== "string") return undefined;
  const watcher = { pid: w.pid as number, start: w.start };
  if (!isRunning(watcher)) return undefined;
  return { watcher, inputs: q.inputs, counts: { live: c.live as number, waiting: c.waiting as number, failed: c.failed as number }, since: q.since };
}
