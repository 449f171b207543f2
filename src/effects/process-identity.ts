// A process as a pid and the time it started: a record naming a process (the
// lock's holder, the watcher behind the quiet record) is believed only while
// that very process runs, never a later one that reused its pid.
import { readFileSync } from "node:fs";

export interface ProcessIdentity {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot the process started. */
  readonly start: string;
}

let self: ProcessIdentity | undefined;

export function selfIdentity(): ProcessIdentity {
  self ??= { pid: process.pid, start: startTime(process.pid) ?? "0" };
  return self;
}

export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

export function isRunning(o: ProcessIdentity): boolean {
  const start = startTime(o.pid);
  return start !== undefined && start === o.start;
}
