// Reads rules.d: every "*.rules" file, in byte order of the names. Anything
// else (examples, editor backups, dotfiles) is ignored on purpose. The
// directory and each file must pass the trust check (trust/ownership.ts):
// what does not is refused, named, and left out.
import { lstatSync, readdirSync, type Stats } from "node:fs";
import { join } from "node:path";
import type { SourceFile } from "../rules/source.js";
import { distrust, trustPolicy, type TrustPolicy } from "../trust/ownership.js";
import { trustWholePath } from "../trust/whole-path.js";
import { readRegularFile } from "./read-text.js";

/** Rule files larger than this are refused: rules.d is hand-written text. */
export const MAX_RULE_FILE_BYTES = 1024 * 1024;

export interface RuleFiles {
  readonly files: SourceFile[];
  /** Problems reading (not parsing) the directory or a file. */
  readonly problems: string[];
  /** Rule files that exist but were refused (untrusted, unreadable or too large). */
  readonly refused: string[];
  /** The directory itself was refused: every file in it is. */
  readonly dirRefused: boolean;
}

export const byName = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export function readRuleFiles(dir: string, policy: TrustPolicy = trustPolicy()): RuleFiles {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { files: [], problems: code === "ENOENT" ? [] : [`cannot read ${dir}: ${(e as Error).message}`], refused: [], dirRefused: code !== "ENOENT" };
  }
  const ruleNames = names.filter((n) => n.endsWith(".rules") && !n.startsWith(".")).sort(byName);
  const problems: string[] = [];
  const refused: string[] = [];
  let dirProblem: string | undefined;
  try {
    // Every directory from / down: whoever can write /etc/libvirt can swap rules.d itself.
    const where = trustWholePath(dir, policy);
    dirProblem = "problem" in where ? where.problem : where.stat.isDirectory() ? undefined : `${dir}: refused: not a directory`;
  } catch (e) {
    dirProblem = `cannot check ${dir}: ${(e as Error).message}`;
  }
  if (dirProblem) return { files: [], problems: [dirProblem], refused: ruleNames.map((n) => join(dir, n)), dirRefused: true };
  const files: SourceFile[] = [];
  for (const name of ruleNames) {
    const path = join(dir, name);
    // A name is printed in every diagnostic: one with a line break would forge log lines.
    if (/[\x00-\x1f\x7f]/.test(name)) {
      problems.push(`${JSON.stringify(path)}: refused: the file name contains a control character. Fix: rename it`);
      refused.push(path);
      continue;
    }
    const read = readTrusted(path, policy, MAX_RULE_FILE_BYTES, true);
    if (typeof read === "string") files.push({ path, text: read });
    else {
      problems.push(read.problem);
      refused.push(path);
    }
  }
  return { files, problems, refused, dirRefused: false };
}

/**
 * The file's text, or why not. Every directory from / to it is root's alone
 * (trust/whole-path.ts; skipped when the caller has just checked its directory
 * and the file is no symbolic link), the file is opened without following a
 * link, non-blocking, and checked again on the very descriptor it is read
 * from: what is read is what was checked.
 */
export function readTrusted(path: string, policy: TrustPolicy, maxBytes = MAX_RULE_FILE_BYTES, dirChecked = false): string | { problem: string; missing?: boolean } {
  let real = path;
  let checked: Stats | undefined;
  let isLink = false;
  try {
    isLink = lstatSync(path).isSymbolicLink();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    return { problem: `cannot read ${path}: ${(e as Error).message}`, ...(code === "ENOENT" || code === "ENOTDIR" ? { missing: true } : {}) };
  }
  if (!dirChecked || isLink) {
    const where = trustWholePath(path, policy);
    if ("problem" in where) return where;
    real = where.real;
    checked = where.stat;
  }
  const r = readRegularFile(real, {
    maxBytes,
    noFollow: true,
    check: (st) => (checked && (st.dev !== checked.dev || st.ino !== checked.ino) ? `${path}: refused: it was replaced while it was checked` : distrust(path, st, policy)),
  });
  return "text" in r ? r.text : r;
}
