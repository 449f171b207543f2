// The trust boundary. libvirt runs the hook as root, so whoever can write
// rules.d, a rule file or our state directory decides what root writes into
// the firewall. Each of them must be owned by root and not writable by group
// or others; anything else is refused with a line that names the path and the
// exact fix (the same rule as sshd's StrictModes and sudoers).
import type { Stats } from "node:fs";

export interface TrustPolicy {
  /** uids that may own what we read. */
  readonly owners: readonly number[];
}

/**
 * As root (every hook call: libvirt runs hooks as root) only root may own our
 * inputs. A non-root development run (`virt-hooks check` by a user, tests)
 * acts with that user's rights only, so files the user owns cannot raise
 * anyone's privileges: they are accepted besides root's. Group and other
 * write permission is refused either way.
 */
export function trustPolicy(euid: number = process.geteuid?.() ?? 0): TrustPolicy {
  return { owners: euid === 0 ? [0] : [0, euid] };
}

/** Why `path` must not be trusted, with the fix; undefined when it may be. */
export function distrust(path: string, st: Pick<Stats, "uid" | "mode">, policy: TrustPolicy): string | undefined {
  const problems: string[] = [];
  const fixes: string[] = [];
  if (!policy.owners.includes(st.uid)) {
    problems.push(`owned by uid ${st.uid}, not root`);
    fixes.push(`chown root: ${shellWord(path)}`);
  }
  const writable = st.mode & 0o022;
  if (writable) {
    const who = writable === 0o022 ? "group and others" : writable === 0o020 ? "its group" : "others";
    problems.push(`writable by ${who} (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")})`);
    fixes.push(`chmod go-w ${shellWord(path)}`);
  }
  if (problems.length === 0) return undefined;
  return `${path}: refused: ${problems.join(" and ")}; the hook runs as root, so whoever can write this controls the host's firewall. Fix: ${fixes.join(" && ")}`;
}

// The fix is pasted into a root shell: quote the path unless it is plain.
// (Not resolve.ts's shellWord: the hook loads this on every call, and the
// planner only for the events it acts on.)
const shellWord = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
