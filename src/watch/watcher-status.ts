// What `virt-hooks status` says of the watcher: read from its state file,
// with the recorded PID checked for life (a crashed watcher leaves the file).
import { readJsonRecord } from "../effects/state-dir.js";
import { readQuiet } from "../effects/quiet-record.js";
import { WATCH_STATE_FILE, type WatchState } from "../effects/watch-record.js";

export interface WatcherStatus {
  readonly running: boolean;
  readonly state?: WatchState;
  /** Since when its quiet record vouches for the firewall (effects/quiet-record.ts); absent when it does not. */
  readonly quietSince?: string;
}

export function readWatcherStatus(stateDir: string, alive: (pid: number) => boolean = pidAlive): WatcherStatus {
  // Believed only from a trusted state directory (effects/state-dir.ts).
  const state = readJsonRecord(stateDir, WATCH_STATE_FILE) as WatchState | undefined;
  if (!state || typeof state !== "object") return { running: false };
  const running = typeof state.pid === "number" && alive(state.pid);
  const quiet = running ? readQuiet(stateDir) : undefined;
  return { running, state, ...(quiet && quiet.watcher.pid === state.pid ? { quietSince: quiet.since } : {}) };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One line for the status screen. Pure. */
export function watcherLine(w: WatcherStatus): string {
  if (!w.running) return "watcher: not running (systemctl enable --now virt-hooks-watch); until it runs, virt-hooks-apply.timer repairs within a minute";
  const s = w.state as WatchState;
  const sources = `netfilter ${s.sources.netfilter}, firewalld ${s.sources.firewalld}`;
  const r = s.lastRepair;
  const out = r?.outMs !== undefined ? `, ${r.outMs} ms after the first event` : "";
  const last = r ? `; last repair ${r.at}${out}: ${r.why} (reconcile ${r.ms} ms)` : "; no repair needed since it started";
  const quiet = w.quietSince ? `; no change heard since it verified at ${w.quietSince}` : "";
  return `watcher: running (pid ${s.pid}): ${sources}${last}${quiet}`;
}
