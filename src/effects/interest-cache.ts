// Most hook calls are events we ignore, decided from the event and which
// domains the rules name (RuleInterest) alone. Working that out means
// compiling rules.d: tokenizing, parsing, checking every address, and the
// compiler's share of the bundle being compiled by V8 at all. So the
// interest is kept in the state directory together with the exact rules.d
// text (names and contents) it was compiled from, and used only when the text
// just read is identical: an edited, added or removed file differs, and a
// stale or damaged cache is simply not used. It can make an event cheaper,
// never decide differently. (An exact comparison rather than a hash: loading
// node:crypto alone cost more than the comparison of any real rules.d.)
import { readJsonRecord, writeRecord } from "./state-dir.js";
import { join } from "node:path";
import type { SourceFile } from "../rules/source.js";
import type { RuleInterest } from "../plan/interest.js";

const FILE = "interest.json";

interface Stored {
  readonly rules: string;
  readonly anyRules: boolean;
  readonly domains: readonly string[];
  readonly clean: boolean;
}

/**
 * The interest, and whether compiling that text gave no diagnostic at all (a
 * hook that is covered before it compiles, hook/covered-early.ts, has then
 * no warning it would fail to report).
 */
export interface CachedInterest extends RuleInterest {
  readonly clean: boolean;
}

/** Names and contents, unambiguously delimited (a name cannot hold NUL; lengths are explicit). */
export function rulesKey(files: readonly SourceFile[]): string {
  return files.map((f) => `${f.path}\0${f.text.length}\0${f.text}`).join("\0");
}

export function readCachedInterest(stateDir: string, key: string): CachedInterest | undefined {
  const s = readJsonRecord(stateDir, FILE) as Stored | undefined;
  // Without `clean` it was written by an earlier release: stale, rewritten by this event.
  if (!s || typeof s !== "object" || s.rules !== key || typeof s.anyRules !== "boolean" || !Array.isArray(s.domains) || typeof s.clean !== "boolean") return undefined;
  return { anyRules: s.anyRules, domains: new Set(s.domains.filter((d) => typeof d === "string")), clean: s.clean };
}

export function writeCachedInterest(stateDir: string, key: string, interest: CachedInterest): void {
  const stored: Stored = { rules: key, anyRules: interest.anyRules, domains: [...interest.domains], clean: interest.clean };
  // Only an optimisation: unrecorded, the next event compiles the rules again.
  writeRecord(stateDir, FILE, JSON.stringify(stored) + "\n");
}
