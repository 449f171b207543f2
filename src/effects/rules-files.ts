// Reads rules.d: every "*.rules" file, in byte order of the names. Anything
// else (examples, editor backups, dotfiles) is ignored on purpose. The
// directory and each file must pass the trust check (trust/ownership.ts):
// what does not is refused, named, and left out.
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import type { SourceFile } from "../rules/source.js";
import { distrust, trustPolicy, type TrustPolicy } from "../trust/ownership.js";

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
    dirProblem = distrust(dir, statSync(dir), policy);
  } catch (e) {
    dirProblem = `cannot stat ${dir}: ${(e as Error).message}`;
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
    const read = readTrusted(path, policy);
    if (typeof read === "string") files.push({ path, text: read });
    else {
      problems.push(read.problem);
      refused.push(path);
    }
  }
  return { files, problems, refused, dirRefused: false };
}

/**
 * The file's text, checked on the descriptor it is read from (no window
 * between check and read), or why not.
 */
export function readTrusted(path: string, policy: TrustPolicy, maxBytes = MAX_RULE_FILE_BYTES): string | { problem: string } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    return { problem: `cannot read ${path}: ${(e as Error).message}` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { problem: `${path}: refused: not a regular file` };
    const why = distrust(path, st, policy);
    if (why) return { problem: why };
    if (st.size > maxBytes) return { problem: `${path}: refused: ${st.size} bytes is more than the ${maxBytes} it may have` };
    const buf = Buffer.alloc(st.size + 1);
    let got = 0;
    for (let n; got < buf.length && (n = readSync(fd, buf, got, buf.length - got, got)) > 0; ) got += n;
    if (got > maxBytes) return { problem: `${path}: refused: more than the ${maxBytes} bytes it may have` };
    return buf.subarray(0, got).toString("utf8");
  } catch (e) {
    return { problem: `cannot read ${path}: ${(e as Error).message}` };
  } finally {
    closeSync(fd);
  }
}
