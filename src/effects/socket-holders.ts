// Which processes hold given sockets (by inode, as /proc/net/* lists them):
// each process's descriptor table, read through /proc. Used to name who is
// listening on a forward's port (lint) and who has bound the earlier releases'
// lock name (effects/lock.ts). Bounded by the number of processes and their
// descriptors; a process that goes away meanwhile is skipped.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

export interface SocketHolder {
  readonly pid: number;
  /** Real uid (the first of /proc/PID/status's Uid: line). */
  readonly uid: number;
  readonly comm: string;
}

/** socket inode -> the processes holding it, for the inodes asked about. `first`: stop at one holder per inode. */
export function socketHolders(proc: string, inodes: ReadonlySet<string>, first = false): Map<string, SocketHolder[]> {
  const out = new Map<string, SocketHolder[]>();
  if (inodes.size === 0) return out;
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(join(proc, pid, "fd"));
    } catch {
      continue;
    }
    const held = new Set<string>();
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(join(proc, pid, "fd", fd));
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      if (inode && inodes.has(inode) && !(first && out.has(inode))) held.add(inode);
    }
    if (held.size === 0) continue;
    const holder = describe(proc, pid);
    for (const inode of held) out.set(inode, [...(out.get(inode) ?? []), holder]);
    if (first && out.size === inodes.size) break;
  }
  return out;
}

function describe(proc: string, pid: string): SocketHolder {
  const read = (f: string) => {
    try {
      return readFileSync(join(proc, pid, f), "utf8");
    } catch {
      return "";
    }
  };
  const uid = Number(/^Uid:\s+(\d+)/m.exec(read("status"))?.[1] ?? NaN);
  return { pid: Number(pid), uid, comm: read("comm").trim() || "?" };
}
