// Reads rules.d: every "*.rules" file, in byte order of the names. Anything
// else (examples, editor backups, dotfiles) is ignored on purpose.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SourceFile } from "../rules/source.js";

/** Rule files larger than this are refused: rules.d is hand-written text. */
export const MAX_RULE_FILE_BYTES = 1024 * 1024;

export interface RuleFiles {
  readonly files: SourceFile[];
  /** Problems reading (not parsing) the directory or a file. */
  readonly problems: string[];
}

export function readRuleFiles(dir: string): RuleFiles {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { files: [], problems: code === "ENOENT" ? [] : [`cannot read ${dir}: ${(e as Error).message}`] };
  }
  const ruleNames = names
    .filter((n) => n.endsWith(".rules") && !n.startsWith("."))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const files: SourceFile[] = [];
  const problems: string[] = [];
  for (const name of ruleNames) {
    const path = join(dir, name);
    try {
      const buf = readFileSync(path);
      if (buf.length > MAX_RULE_FILE_BYTES) {
        problems.push(`${path}: ${buf.length} bytes is more than the ${MAX_RULE_FILE_BYTES} a rule file may have; skipped`);
        continue;
      }
      files.push({ path, text: buf.toString("utf8") });
    } catch (e) {
      problems.push(`cannot read ${path}: ${(e as Error).message}`);
    }
  }
  return { files, problems };
}
