// The whole path, not just the last hop. Whoever can write ANY directory on
// the way from / to a file can swap that file (or a directory above it) for
// their own between our check and our use: a rule file under a user's
// directory, or a per-guest script symlinked there, is that user's code run
// as root (issue 25). So every directory from / down to the object is checked,
// and a symbolic link is followed and its target's whole path checked too.
//
// The rule for each directory is distrust()'s (owned by an allowed owner, not
// writable by group or others), with one exception every Unix host needs: a
// sticky directory owned by root (/tmp, /var/tmp) is writable by all, yet
// nobody but an entry's owner can rename or delete that entry; so it passes
// when what we reach through it is itself owned by an allowed owner.
import { lstatSync, readlinkSync, type Stats } from "node:fs";
import { dirname, isAbsolute, resolve, sep } from "node:path";
import { distrust, type TrustPolicy } from "./ownership.js";

const S_ISVTX = 0o1000;
/** As the kernel's MAXSYMLINKS: a loop of links is refused, not followed forever. */
const MAX_LINKS = 40;

export interface TrustedPath {
  /** The path with every symbolic link resolved: the one to open. */
  readonly real: string;
  /** lstat of `real` (never a link). */
  readonly stat: Stats;
}

export interface Untrusted {
  readonly problem: string;
  /** Nothing there (ENOENT/ENOTDIR on the way): an answer, not a refusal. */
  readonly missing?: boolean;
}

export type Lstat = (path: string) => Stats;
export type Readlink = (path: string) => string;

/**
 * Walks `path` from / and returns where it really leads, or why it must not be
 * trusted (the first component that fails, with the fix). The object itself is
 * checked like the directories above it: an allowed owner, not writable by
 * group or others.
 */
export function trustWholePath(path: string, policy: TrustPolicy, fs: { lstat: Lstat; readlink: Readlink } = { lstat: lstatSync, readlink: readlinkSync }): TrustedPath | Untrusted {
  if (!isAbsolute(path)) return { problem: `${path}: refused: not an absolute path` };
  let pending = path.split(sep).filter(Boolean);
  let at: string = sep;
  let links = 0;
  // The directory we stand in: its verdict decides whether the entry we step to may be trusted.
  let parent = fs.lstat(sep);
  const root = distrust(sep, parent, policy);
  if (root) return { problem: root };
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === ".") continue;
    if (name === "..") {
      at = dirname(at);
      parent = fs.lstat(at);
      continue;
    }
    const next = at === sep ? `${sep}${name}` : `${at}${sep}${name}`;
    let st: Stats;
    try {
      st = fs.lstat(next);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return { problem: `cannot stat ${next}: ${(e as Error).message}`, ...(code === "ENOENT" || code === "ENOTDIR" ? { missing: true } : {}) };
    }
    const stickyShared = (parent.mode & S_ISVTX) !== 0 && parent.uid === 0;
    if (st.isSymbolicLink()) {
      // A link's own mode means nothing; who owns it matters where the directory is shared.
      if (stickyShared && !policy.owners.includes(st.uid)) return { problem: `${next}: refused: a symbolic link owned by uid ${st.uid} in a directory everyone may write; the hook runs as root. Fix: replace it with root's own` };
      if (++links > MAX_LINKS) return { problem: `${path}: refused: too many levels of symbolic links` };
      const target = fs.readlink(next);
      // The target is walked from / (absolute) or from the link's directory, and checked all the way.
      pending = [...target.split(sep).filter(Boolean), ...pending];
      if (isAbsolute(target)) {
        at = sep;
        parent = fs.lstat(sep);
      }
      continue;
    }
    const why = distrust(next, st, policy);
    if (why) {
      // /tmp and the like: shared, but an entry owned by an allowed owner cannot be swapped by others.
      const onlyShared = st.isDirectory() && (st.mode & S_ISVTX) !== 0 && st.uid === 0 && (st.mode & 0o022) !== 0;
      if (!(onlyShared && pending.length > 0)) return { problem: why };
    }
    at = next;
    parent = st;
  }
  return { real: at === sep ? sep : resolve(at), stat: parent };
}
