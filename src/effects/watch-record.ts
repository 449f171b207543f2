// What the watcher records of itself (in the state directory): for `virt-hooks
// status`, and for the `reconnect` hooks of a libvirtd restart, which leave
// the answer to libvirt's rebuild to a watcher that hears it (hook/handed-to-watcher.ts).
import { isRunning } from "./process-identity.js";
import { readJsonRecord } from "./state-dir.js";

export const WATCH_STATE_FILE = "watch.json";

export interface WatchState {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat (effects/process-identity.ts); absent in files of older watchers. */
  readonly start?: string;
  readonly startedAt: string;
  /** rules: absent in files written by watchers before rules.d was a source. */
  readonly sources: { netfilter: string; firewalld: string; rules?: string };
  /**
   * Whose changes its `nft monitor` prints: nftables always; iptables only when
   * the iptables tools are iptables-nft (never iptables-legacy).
   */
  readonly hears?: { readonly nftables: boolean; readonly iptables: boolean };
  /**
   * ms: the reconcile's own time; outMs: from the first event of its burst to the
   * repair's end, the longest our rules can have been out before it (absent in
   * files written by older watchers).
   */
  lastRepair?: { readonly at: string; readonly why: string; readonly ms: number; readonly outMs?: number };
}

/**
 * The watcher, when this very process runs (pid and start time), its
 * `nft monitor` is up, and it hears both backends' changes: then every change
 * to the firewall reaches it, libvirt's rebuilds included.
 */
export function watcherHearingAll(stateDir: string): WatchState | undefined {
  const w = readJsonRecord(stateDir, WATCH_STATE_FILE, 64 * 1024) as Partial<WatchState> | undefined;
  if (!w || typeof w !== "object" || !Number.isInteger(w.pid) || typeof w.start !== "string") return undefined;
  if (w.sources?.netfilter !== "watching" || w.hears?.nftables !== true || w.hears.iptables !== true) return undefined;
  return isRunning({ pid: w.pid as number, start: w.start }) ? (w as WatchState) : undefined;
}
