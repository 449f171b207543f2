// Keeping the last good rules. When a rule file (or rules.d itself) is
// refused by the trust check, the hook goes on with the text of that file as
// it was last accepted, so a wrong chmod cannot take every guest's forwards
// down, and an attacker's edit to a writable file is never applied. The
// accepted texts live in the state directory (tmpfs, root only, mode 0600),
// which must pass the same trust check before it is read or written.
import { mkdirSync, renameSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { basename, join } from "node:path";
import type { SourceFile } from "../rules/source.js";
import { byName, readRuleFiles, readTrusted, type RuleFiles } from "../effects/rules-files.js";
import { distrust, trustPolicy, type TrustPolicy } from "./ownership.js";

export const LAST_GOOD_FILE = "rules-last-good.json";
const MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024;

interface Snapshot {
  readonly at: string;
  readonly files: readonly SourceFile[];
}

/** The state directory, created root-only if missing; or why it cannot be trusted. */
export function trustedStateDir(stateDir: string, policy: TrustPolicy): string | undefined {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    return distrust(stateDir, statSync(stateDir), policy);
  } catch (e) {
    return `cannot use ${stateDir}: ${(e as Error).message}`;
  }
}

function load(stateDir: string, policy: TrustPolicy): Snapshot | { problem: string } | undefined {
  const path = join(stateDir, LAST_GOOD_FILE);
  const text = readTrusted(path, policy, MAX_SNAPSHOT_BYTES);
  if (typeof text !== "string") return text.problem.startsWith("cannot read") && text.problem.includes("ENOENT") ? undefined : text;
  try {
    const s = JSON.parse(text) as Snapshot;
    if (typeof s.at === "string" && Array.isArray(s.files) && s.files.every((f) => typeof f?.path === "string" && typeof f?.text === "string")) {
      return { at: s.at, files: s.files.map((f) => ({ path: f.path, text: f.text })) };
    }
  } catch {
    /* fall through */
  }
  return { problem: `${path}: not a snapshot this version wrote; ignored (it is rewritten at the next accepted read)` };
}

function save(stateDir: string, files: readonly SourceFile[], now: Date): void {
  const path = join(stateDir, LAST_GOOD_FILE);
  const tmp = join(stateDir, `.${LAST_GOOD_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify({ at: now.toISOString(), files }), { mode: 0o600 });
  chmodSync(tmp, 0o600); // whatever the umask
  renameSync(tmp, path);
}

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
  const stateProblem = trustedStateDir(stateDir, policy);
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
    try {
      save(stateDir, files, now);
    } catch (e) {
      problems.push(`cannot record the accepted rules in ${stateDir}: ${(e as Error).message}`);
    }
  }
  return { files, problems, refused: read.refused, dirRefused: false };
}
