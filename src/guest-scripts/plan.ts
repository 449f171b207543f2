// Per-guest scripts: which executables under
//   <hooks>/qemu.d/<domain>/<op>/<subop>/      and
//   <hooks>/network.d/<network>/<op>/<subop>/
// run for one event, in what order, and what libvirt lets their outcome mean.
// Pure: the directory listing and its stats come in (effects/guest-scripts-run.ts
// reads them), so the whole contract is testable as tables.
//
// The layout is the GPU-passthrough "hook helper"'s, which admins already
// use: libvirt itself runs only the files directly inside qemu.d/ and
// network.d/ (for every guest and event); these per-object directories are
// run by us, as the main hook. Like the hook helper, <subop> may also be a
// single executable file instead of a directory.
import type { HookEvent } from "../libvirt/event.js";
import { distrust, type TrustPolicy } from "../trust/ownership.js";

/** What the planner needs of a stat (of the target, symlinks followed). */
export interface StatLike {
  readonly kind: "file" | "directory" | "other";
  readonly mode: number;
  readonly uid: number;
}

/** A path and its stat, or why it could not be stat'ed. */
export interface Probed {
  readonly path: string;
  readonly stat?: StatLike;
  /** A missing path is no error: `stat` and `error` both absent. */
  readonly error?: string;
}

export interface ScriptEntry {
  readonly name: string;
  readonly path: string;
  readonly stat?: StatLike;
  readonly error?: string;
  /** For a symbolic link: the directory holding its target, which must be trusted too. */
  readonly targetDir?: Probed;
}

export interface ScriptListing {
  /** <driver>.d, <object>, <op>: the directories above the scripts, outermost first. */
  readonly dirs: readonly Probed[];
  /** <subop>: a directory of scripts, or one script. */
  readonly leaf: Probed;
  /** The leaf directory's entries (any order) when it is a directory. */
  readonly entries?: readonly ScriptEntry[];
}

export interface ScriptPlan {
  /** Scripts to run, in byte order of their names. */
  readonly scripts: readonly string[];
  /** The four arguments libvirt passed, passed on unchanged. */
  readonly argv: readonly [string, string, string, string];
  /** migrate/restore: stdout replaces the domain XML and chains from script to script. */
  readonly filter: boolean;
  /** A failing (or refused) script refuses the event: only where libvirt lets a hook veto. */
  readonly vetoes: boolean;
  /** Paths refused by the trust check, each line naming the path and the fix. A refusal vetoes like a failure. */
  readonly refused: readonly string[];
  /** Entries left out on purpose and worth telling the admin about (not executable). */
  readonly skipped: readonly string[];
}

/**
 * Events where a hook's non-zero exit refuses the operation and nothing worse
 * (libvirt-facts.md). Never reconnect (libvirt kills the running guest),
 * stopped, release, port-deleted (logged and ignored by libvirt anyway),
 * updated (the update is already live).
 */
const VETOING: Readonly<Record<string, readonly string[]>> = {
  qemu: ["prepare", "start", "started", "migrate", "restore"],
  network: ["start", "started", "port-created"],
};

/** The only events whose stdout libvirt reads (as the replacement domain XML). */
const FILTERS: Readonly<Record<string, readonly string[]>> = { qemu: ["migrate", "restore"] };

export const vetoes = (e: Pick<HookEvent, "driver" | "op">) => VETOING[e.driver]?.includes(e.op) ?? false;
export const isFilter = (e: Pick<HookEvent, "driver" | "op">) => FILTERS[e.driver]?.includes(e.op) ?? false;

/** A name usable as one path component: never "", ".", "..", a "/" or a NUL. */
const component = (s: string) => s !== "" && s !== "." && s !== ".." && !/[/\0]/.test(s);

/**
 * The per-object directory (<hooks>/<driver>.d/<object>), or undefined when the
 * event can have no scripts: another driver, or a name that is no single path
 * component. Its absence is the hot path: one failed stat, nothing else.
 */
export function objectDir(hooksDir: string, e: Pick<HookEvent, "driver" | "object" | "op" | "subop">): string | undefined {
  if (e.driver !== "qemu" && e.driver !== "network") return undefined;
  if (![e.object, e.op, e.subop].every(component)) return undefined;
  return `${hooksDir}/${e.driver}.d/${e.object}`;
}

/** The paths the effect must probe for an event, outermost first, then the leaf. */
export function scriptPaths(hooksDir: string, e: HookEvent): { dirs: string[]; leaf: string } | undefined {
  const object = objectDir(hooksDir, e);
  if (!object) return undefined;
  return { dirs: [`${hooksDir}/${e.driver}.d`, object, `${object}/${e.op}`], leaf: `${object}/${e.op}/${e.subop}` };
}

export const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Dotfiles and editor or package-manager leftovers are never run (an editor's `x~` keeps x's mode). */
const LEFTOVER = /^\.|~$|\.(?:dpkg-(?:old|new|dist|tmp)|rpm(?:new|save|orig)|swp|bak|orig)$/;

/** Names that would forge log lines. */
const CONTROL = /[\x00-\x1f\x7f]/;

export function planScripts(e: HookEvent, listing: ScriptListing, policy: TrustPolicy): ScriptPlan {
  const base = {
    argv: [e.object, e.op, e.subop, e.extra] as const,
    filter: isFilter(e),
    vetoes: vetoes(e),
  };
  const none = (refused: string[] = [], skipped: string[] = []): ScriptPlan => ({ ...base, scripts: [], refused, skipped });

  // Every directory above a script must be root's alone: whoever can rename
  // entries in it can swap the script for their own between check and run.
  for (const dir of [...listing.dirs, listing.leaf]) {
    if (dir.error) return none([`${dir.path}: ${dir.error}`]);
    if (!dir.stat) return none();
    if (dir === listing.leaf) break;
    if (dir.stat.kind !== "directory") return none();
    const why = distrust(dir.path, dir.stat, policy);
    if (why) return none([why]);
  }
  const leaf = listing.leaf.stat;
  if (!leaf) return none();
  if (leaf.kind === "file") {
    // The hook helper's other form: <subop> is itself the one script.
    const one = checkScript({ name: listing.leaf.path.slice(listing.leaf.path.lastIndexOf("/") + 1), path: listing.leaf.path, stat: leaf }, policy);
    return one.run ? { ...base, scripts: [listing.leaf.path], refused: [], skipped: [] } : none(one.refused ? [one.refused] : [], one.skipped ? [one.skipped] : []);
  }
  if (leaf.kind !== "directory") return none();
  const why = distrust(listing.leaf.path, leaf, policy);
  if (why) return none([why]);

  const scripts: string[] = [];
  const refused: string[] = [];
  const skipped: string[] = [];
  for (const entry of [...(listing.entries ?? [])].sort((a, b) => byteOrder(a.name, b.name))) {
    const c = checkScript(entry, policy);
    if (c.run) scripts.push(entry.path);
    if (c.refused) refused.push(c.refused);
    if (c.skipped) skipped.push(c.skipped);
  }
  return { ...base, scripts, refused, skipped };
}

function checkScript(entry: ScriptEntry, policy: TrustPolicy): { run: boolean; refused?: string; skipped?: string } {
  if (LEFTOVER.test(entry.name)) return { run: false };
  if (CONTROL.test(entry.name)) return { run: false, refused: `${JSON.stringify(entry.path)}: refused: the file name contains a control character. Fix: rename it` };
  if (entry.error) return { run: false, refused: `${entry.path}: refused: ${entry.error}` };
  const st = entry.stat;
  if (!st || st.kind === "directory") return { run: false }; // a vanished entry, a subdirectory: as libvirt
  if (st.kind !== "file") return { run: false, skipped: `${entry.path}: skipped: not a regular file` };
  if ((st.mode & 0o111) === 0) return { run: false, skipped: `${entry.path}: skipped: not executable (chmod +x to run it)` };
  const why = distrust(entry.path, st, policy);
  if (why) return { run: false, refused: why };
  if (entry.targetDir) {
    const dir = entry.targetDir;
    if (dir.error || !dir.stat) return { run: false, refused: `${entry.path}: refused: cannot check the directory of its target ${dir.path}${dir.error ? `: ${dir.error}` : ""}` };
    const whyDir = distrust(dir.path, dir.stat, policy);
    if (whyDir) return { run: false, refused: `${entry.path} links into ${whyDir}` };
  }
  return { run: true };
}
