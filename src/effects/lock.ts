// Serialises our changes across concurrent hook invocations (libvirt runs one
// reconnect per domain in parallel on a daemon restart), `apply`, the units
// and the watcher.
//
// The lock is a file in the state directory, which is root's alone all the way
// from / (effects/state-dir.ts): no other user can create, hold, replace or
// even open it. Earlier releases used a bound abstract unix socket, whose name
// anyone on the host could bind first, stalling every hook for 30 s (issue 25).
//
// Taking it is link(2) of a file that already holds our identity (pid and the
// process's start time, so a reused pid is not mistaken for the holder) to the
// lock's name: atomic, and the name never exists without its owner in it. A
// holder that died without releasing (kill -9) is seen at once: its pid is gone
// or started later. Removing such a dead holder's file is serialised by
// flock(1) on a second file, so that two waiters can never both remove one and
// then each take a lock of its own; this costs a child only on that rare path.
//
// While an upgrade replaces the executable, hooks of the earlier release may
// still be running: the holder also binds the earlier releases' abstract name.
// When that name is held by a root process it is waited for; when it is held
// by anyone else, that process is named in the log and ignored, never waited on.
import { closeSync, constants, linkSync, lstatSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { readRegularFile } from "./read-text.js";
import { socketHolders, type SocketHolder } from "./socket-holders.js";
import { recordDirProblem } from "./state-dir.js";
import { isRunning, selfIdentity, type ProcessIdentity } from "./process-identity.js";

export interface Lock {
  /** Idempotent: a lock handed from one step to the next may be released by both. */
  release(): Promise<void>;
  /** What the log should say about how it was taken (an earlier release's lock name held by someone else). */
  readonly notes: readonly string[];
}

export class LockTimeout extends Error {}

export interface LockOptions {
  /** One lock per purpose: the firewall's ("reconcile"), the fixed addresses'. */
  readonly purpose?: string;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

export async function acquireLock(stateDir: string, o: LockOptions = {}): Promise<Lock> {
  return (await acquireLockUnless(stateDir, () => false, o)) as Lock;
}

/**
 * The lock; or, as soon as `satisfied()` holds while we wait for it (asked
 * before every attempt but the first), undefined: a hook that learns its
 * work was done meanwhile need not queue behind the others to find that out.
 */
export async function acquireLockUnless(stateDir: string, satisfied: () => boolean, o: LockOptions = {}): Promise<Lock | undefined> {
  const purpose = o.purpose ?? "reconcile";
  const now = o.now ?? Date.now;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const deadline = now() + timeoutMs;
  const dirProblem = recordDirProblem(stateDir);
  // A state directory others may write cannot hold a lock others cannot touch:
  // go on unlocked (each firewall transaction is atomic on its own) and say so.
  if (dirProblem) return unlocked([`not locked: ${dirProblem}`]);
  const path = join(stateDir, `${purpose}.lock`);
  const me = identity();
  const mine = join(stateDir, `.${purpose}.lock.${process.pid}.${++attempts}`);
  try {
    writeIdentity(mine, me);
  } catch (e) {
    // /run full or read-only: no lock can be taken, and none may cost the firewall its reconcile.
    return unlocked([`not locked: cannot write ${mine}: ${(e as Error).message}`]);
  }
  let delay = 2;
  try {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0 && satisfied()) return undefined;
      try {
        linkSync(mine, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const holder = readHolder(path);
      if (holder && !alive(holder.owner)) await breakDead(path, holder);
      else {
        if (now() > deadline) throw new LockTimeout(`virt-hooks pid ${holder?.owner.pid ?? "?"} held the lock ${path} for more than ${timeoutMs} ms`);
        await sleep(delay);
        // At most 16 ms between attempts: in a restart storm every waiter's last
        // sleep delays its exit after the reconcile it waits for (bench/, issue 15).
        delay = Math.min(delay * 2, 16);
      }
    }
  } finally {
    unlinkQuietly(mine);
  }
  const notes: string[] = [];
  let legacy: (() => void) | undefined;
  try {
    legacy = await holdEarlierName(purpose === "reconcile" ? stateDir : `${stateDir}:${purpose}`, deadline, now, notes);
  } catch (e) {
    unlinkIfOurs(path, me);
    throw e;
  }
  let held = true;
  return {
    notes,
    release: async () => {
      if (!held) return;
      held = false;
      legacy?.();
      unlinkIfOurs(path, me);
    },
  };
}

/** Names each call's identity file apart: one process may wait for a lock it holds already (tests, or apply's two purposes). */
let attempts = 0;
const unlocked = (notes: string[]): Lock => ({ notes, release: async () => {} });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- who holds it -----------------------------------------------------------

type Owner = ProcessIdentity;

const identity = selfIdentity;
const alive = isRunning;

function writeIdentity(path: string, o: Owner): void {
  unlinkQuietly(path); // our own pid's leftover from a process that died before cleaning up
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, `${o.pid} ${o.start}\n`);
  } finally {
    closeSync(fd);
  }
}

interface Holder {
  readonly owner: Owner;
  readonly ino: number;
}

/** The lock file's owner, or undefined when it is gone meanwhile (try again). */
function readHolder(path: string): Holder | undefined {
  const r = readRegularFile(path, { maxBytes: 64, noFollow: true });
  if ("problem" in r) return undefined;
  const m = /^(\d+) (\d+)\n$/.exec(r.text);
  // A file that is not an identity (never written by us): treated as a dead holder's, so it is removed.
  return { owner: m ? { pid: Number(m[1]), start: m[2] as string } : { pid: 0, start: "" }, ino: r.stat.ino };
}

/**
 * Removes a dead holder's lock file, and only that one: under flock(1) on a
 * second file (every breaker queues there), the name must still be that very
 * file (inode) with that very owner. A live holder is never removed: only
 * breakers remove, one at a time, and only what they saw dead.
 */
async function breakDead(path: string, seen: Holder): Promise<void> {
  const guard = `${path}.break`;
  const fd = openSync(guard, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    if (!(await flockFd(fd))) return;
    const now = readHolder(path);
    if (now && now.ino === seen.ino && now.owner.pid === seen.owner.pid && now.owner.start === seen.owner.start) unlinkQuietly(path);
  } finally {
    closeSync(fd); // releases the flock(1) lock held on this open file
  }
}

/** flock(1) -x on our descriptor (fd 3 of the child; the lock stays with the open file after it exits). Bounded: 5 s. */
async function flockFd(fd: number): Promise<boolean> {
  // Loaded only here: a rare path (a holder killed with its lock held).
  const { spawnSync } = await import("node:child_process");
  for (const tool of ["/usr/bin/flock", "/bin/flock"]) {
    try {
      lstatSync(tool);
    } catch {
      continue;
    }
    const r = spawnSync(tool, ["-x", "-w", "5", "3"], { stdio: ["ignore", "ignore", "ignore", fd], timeout: 6_000, killSignal: "SIGKILL", env: { LC_ALL: "C" } });
    return r.status === 0;
  }
  return false;
}

function unlinkIfOurs(path: string, me: Owner): void {
  const h = readHolder(path);
  // Someone broke our lock (only possible if our pid looked dead): theirs now, not ours to remove.
  if (h && h.owner.pid === me.pid && h.owner.start === me.start) unlinkQuietly(path);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone already */
  }
}

// --- the earlier releases' lock --------------------------------------------

/**
 * Binds `\0virt-hooks:NAME` as earlier releases did, so that one of their hooks
 * still running during an upgrade waits for us, and we for it. Returns how to
 * let go of it, or undefined when it is held by someone who is not root (named
 * in `notes`, not waited for).
 */
async function holdEarlierName(name: string, deadline: number, now: () => number, notes: string[]): Promise<(() => void) | undefined> {
  const address = `\0virt-hooks:${name}`;
  let unnamed = 0;
  for (let delay = 2; ; delay = Math.min(delay * 2, 16)) {
    const bound = bindAbstract(address);
    if (bound !== "in-use") return bound;
    const holders = holdersOf(address.slice(1));
    if (holders.length > 0 && holders.every((h) => h.uid !== 0)) {
      notes.push(`the lock name earlier releases used is bound by ${holders.map((h) => `pid ${h.pid} (uid ${h.uid}, ${JSON.stringify(h.comm)})`).join(", ")}: not root, so not virt-hooks; ignored`);
      return undefined;
    }
    // Bound, yet no process holds it: released this instant, or kept alive where
    // no descriptor table shows it (in flight in a socket's queue). An earlier
    // release's hook always shows: after a few looks, it is not one.
    if (holders.length === 0 && ++unnamed >= 3) {
      notes.push(`the lock name earlier releases used is bound, by no process that can be named: not virt-hooks; ignored`);
      return undefined;
    }
    if (now() > deadline) throw new LockTimeout(`an earlier release's virt-hooks (pid ${holders.map((h) => h.pid).join(", ")}) held its lock for too long`);
    await sleep(delay);
  }
}

interface PipeHandle {
  bind(address: string): number;
  close(): void;
  unref?(): void;
}
interface PipeWrap {
  Pipe: new (type: number) => PipeHandle;
  constants: { SERVER: number };
}

const UV_EADDRINUSE = -98;
let pipeWrap: PipeWrap | null | undefined;

/** Bound (how to close it), "in-use", or undefined when this Node cannot bind one (nothing to exclude, then). */
function bindAbstract(address: string): (() => void) | "in-use" | undefined {
  if (pipeWrap === undefined) {
    pipeWrap = null;
    try {
      const b = (process as unknown as { binding(name: string): Partial<PipeWrap> }).binding("pipe_wrap");
      if (typeof b.Pipe === "function" && typeof b.constants?.SERVER === "number") pipeWrap = b as PipeWrap;
    } catch {
      // Not this Node: earlier releases' hooks cannot be excluded, and an upgrade is the only time that matters.
    }
  }
  const wrap = pipeWrap;
  if (!wrap) return undefined;
  const handle = new wrap.Pipe(wrap.constants.SERVER);
  handle.unref?.();
  const err = handle.bind(address);
  if (err === 0) return () => handle.close(); // uv_close closes the descriptor at once
  handle.close();
  return err === UV_EADDRINUSE ? "in-use" : undefined;
}

/** Who has the abstract socket `@NAME` open: its inode(s) from /proc/net/unix, then the processes (socket-holders.ts). */
function holdersOf(name: string, proc = "/proc"): SocketHolder[] {
  let table: string;
  try {
    table = readFileSync(join(proc, "net", "unix"), "latin1");
  } catch {
    return [];
  }
  const inodes = new Set<string>();
  for (const line of table.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f.slice(7).join(" ") === `@${name}`) inodes.add(f[6] as string);
  }
  return [...socketHolders(proc, inodes).values()].flat();
}
