// Keeping the last good rules. When a rule file (or rules.d itself) is
// refused by the trust check, the hook goes on with the text of that file as
// it was last accepted, so a wrong chmod cannot take every guest's forwards
// down, and an attacker's edit to a writable file is never applied. The
// accepted texts live in the state directory (tmpfs, root only, mode 0600),
// which must pass the same trust check before it is read or written.
import { basename, join } from "node:path";
import type { SourceFile } from "../rules/source.js";
import { byName, readRuleFiles, type RuleFiles } from "./rules-files.js";
import { readRecordAt, recordDirProblem, writeRecordAt } from "./state-dir.js";
import { trustPolicy, type TrustPolicy } from "../trust/ownership.js";

export const LAST_GOOD_FILE = "rules-last-good.json";
const MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024;

interface Snapshot {
  readonly at: string;
  readonly files: readonly SourceFile[];
}

function load(stateDir: string, policy: TrustPolicy): Snapshot | { problem: string } | undefined {
  const path = join(stateDir, LAST_GOOD_FILE);
  const read = readRecordAt(path, MAX_SNAPSHOT_BYTES, policy);
  if ("missing" in read) return undefined;
  if ("problem" in read) return read;
  try {
    const s = JSON.parse(read.text) as Snapshot;
    if (typeof s.at === "string" && Array.isArray(s.files) && s.files.every((f) => typeof f?.path === "string" && typeof f?.text === "string")) {
      return { at: s.at, files: s.files.map((f) => ({ path: f.path, text: f.text })) };
    }
  } catch {
    /* fall through */
  }
  return { problem: `${path}: not a snapshot this version wrote; ignored (it is rewritten at the next accepted read)` };
}

const save = (stateDir: string, files: readonly SourceFile[], now: Date, policy: TrustPolicy): string | undefined =>
  writeRecordAt(join(stateDir, LAST_GOOD_FILE), JSON.stringify({ at: now.toISOString(), files }), { policy });

const same = (a: readonly SourceFile[], b: readonly SourceFile[]) =>
  a.length === b.length && a.every((f, i) => f.path === b[i]?.path && f.text === b[i]?.text);

/**
 * rules.d as the hook should use it: the accepted files as they are, each
 * refused one as it was last accepted (or left out if it never was), and the
 * snapshot brought up to date. Problems name every refusal and its fix.
 */
export function readRulesKeepingLastGood(rulesDir: string, stateDir: string, policy: TrustPolicy = trustPolicy(), now = new Date()): RuleFiles {
  const read = readRuleFiles(rulesDir, policy);
  const problems = [...read.problems];
  const stateProblem = recordDirProblem(stateDir, policy);
  if (stateProblem) {
    // Never read rules from a place others could have written them to.
    problems.push(stateProblem, `so the last accepted rules are neither kept nor used`);
    return { ...read, problems };
  }
  const loaded = load(stateDir, policy);
  if (loaded && "problem" in loaded) problems.push(loaded.problem);
  const snapshot = loaded && !("problem" in loaded) ? loaded : undefined;
  const previous = new Map((snapshot?.files ?? []).map((f) => [f.path, f]));

  const kept: SourceFile[] = [];
  if (read.dirRefused) {
    // The directory cannot be trusted: nothing in it, or missing from it, can.
    kept.push(...previous.values());
    if (kept.length) problems.push(`using the rules last accepted at ${snapshot?.at} (${kept.length} file(s)) until ${rulesDir} is fixed`);
    return { files: kept.sort((a, b) => byName(basename(a.path), basename(b.path))), problems, refused: read.refused, dirRefused: true };
  }
  for (const path of read.refused) {
    const last = previous.get(path);
    if (last) {
      kept.push(last);
      problems.push(`${path}: using its last accepted version (from ${snapshot?.at}) until it is fixed`);
    } else {
      problems.push(`${path}: never accepted, so none of its rules apply until it is fixed`);
    }
  }
  const files = [...read.files, ...kept].sort((a, b) => byName(basename(a.path), basename(b.path)));
  if (!snapshot || !same(snapshot.files, files)) {
    const unsaved = save(stateDir, files, now, policy);
    if (unsaved) problems.push(`cannot record the accepted rules: ${unsaved}`);
  }
  return { files, problems, refused: read.refused, dirRefused: false };
}
