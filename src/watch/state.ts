// What the watcher records for `virt-hooks status` (in the state directory).
export const WATCH_STATE_FILE = "watch.json";

export interface WatchState {
  readonly pid: number;
  readonly startedAt: string;
  readonly sources: { netfilter: string; firewalld: string };
  lastRepair?: { readonly at: string; readonly why: string; readonly ms: number };
}
