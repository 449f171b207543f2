// What the watcher records for `virt-hooks status` (in the state directory).
export const WATCH_STATE_FILE = "watch.json";

export interface WatchState {
  readonly pid: number;
  readonly startedAt: string;
  /** rules: absent in files written by watchers before rules.d was a source. */
  readonly sources: { netfilter: string; firewalld: string; rules?: string };
  /**
   * ms: the reconcile's own time; outMs: from the first event of its burst to the
   * repair's end, the longest our rules can have been out before it (absent in
   * files written by older watchers).
   */
  lastRepair?: { readonly at: string; readonly why: string; readonly ms: number; readonly outMs?: number };
}
