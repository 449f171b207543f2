// Rule files -> one RuleSet plus diagnostics. Statements that fail to parse are
// dropped (and reported); everything else survives, so one typo costs one rule,
// never the whole host's forwards.
import { error, warning, type Diagnostic } from "./diagnostic.js";
import { defaultSettings, type AcceptRule, type ForwardRule, type MasqueradeRule, type RuleSet, type Settings, type OnError } from "./model.js";
import { parseLine, type SettingKey, type Statement } from "./parse.js";
import type { SourceFile, Span } from "./source.js";
import { splitLines } from "./tokenize.js";

export interface Compiled {
  readonly rules: RuleSet;
  readonly diagnostics: readonly Diagnostic[];
}

export function compileRules(files: readonly SourceFile[]): Compiled {
  const diagnostics: Diagnostic[] = [];
  const statements: Statement[] = [];
  for (const file of files) {
    for (const line of splitLines(file)) {
      const result = parseLine(line);
      if (result.ok) statements.push(result.statement);
      else diagnostics.push(...result.diagnostics);
    }
  }
  const forwards: ForwardRule[] = [];
  const masquerades: MasqueradeRule[] = [];
  const accepts: AcceptRule[] = [];
  const set = new Map<SettingKey, { value: string; span: Span }>();
  for (const s of statements) {
    switch (s.kind) {
      case "forward":
        forwards.push(s);
        break;
      case "masquerade": {
        const earlier = masquerades.find((m) => m.network === s.network);
        if (earlier) diagnostics.push(warning("duplicate", s.span, `network "${s.network}" is already masqueraded by an earlier rule`, "remove one of the two"));
        else masquerades.push(s);
        break;
      }
      case "accept":
        accepts.push(s);
        break;
      case "set": {
        const earlier = set.get(s.key);
        if (earlier && earlier.value !== s.value) {
          diagnostics.push(error("conflicting-setting", s.span, `${s.key} is set to "${s.value}" here but to "${earlier.value}" earlier`, `keep one \`set ${s.key}\` line`, earlier.span));
        } else {
          set.set(s.key, { value: s.value, span: s.span });
        }
        break;
      }
    }
  }
  const conflicts = findConflicts(forwards);
  diagnostics.push(...conflicts.map((c) => c.diagnostic));
  const kept = forwards.filter((f) => !conflicts.some((c) => c.rule === f));
  const onError = set.get("on-error")?.value as OnError | undefined;
  const reattach = set.get("reattach")?.value;
  const backend = set.get("backend")?.value as Settings["backend"] | undefined;
  const settings: Settings = {
    ...defaultSettings,
    ...(onError ? { onError } : {}),
    ...(reattach ? { reattach: reattach === "on" } : {}),
    ...(backend ? { backend } : {}),
  };
  return { rules: { forwards: kept, masquerades, accepts, settings }, diagnostics };
}

/**
 * Two forwards that catch the same packets: same protocol, overlapping ports,
 * the same host address (or one of them "any of the host's addresses"), and the
 * same source and interface limits. Forwards that differ in `from`/`in` are a
 * deliberate split and are allowed (the first listed wins where they overlap).
 * The later rule of a conflict is dropped, so what is applied is what the
 * earlier rule says on every backend.
 */
function findConflicts(forwards: readonly ForwardRule[]): { rule: ForwardRule; diagnostic: Diagnostic }[] {
  const out: { rule: ForwardRule; diagnostic: Diagnostic }[] = [];
  const family = (f: ForwardRule) => f.hostAddress?.family ?? (f.target.kind === "address" ? f.target.family : undefined);
  const limits = (f: ForwardRule) => `${f.from.map((c) => `${c.address}/${c.prefix}`).sort().join(",")}|${f.inInterface ?? ""}`;
  for (let i = 0; i < forwards.length; i++) {
    const b = forwards[i] as ForwardRule;
    for (let j = 0; j < i; j++) {
      const a = forwards[j] as ForwardRule;
      const proto = a.protos.find((p) => b.protos.includes(p));
      if (!proto) continue;
      if (a.hostPorts.last < b.hostPorts.first || b.hostPorts.last < a.hostPorts.first) continue;
      const fa = family(a);
      const fb = family(b);
      if (fa && fb && fa !== fb) continue;
      if (a.hostAddress && b.hostAddress && a.hostAddress.address !== b.hostAddress.address) continue;
      if (limits(a) !== limits(b)) continue;
      const where = b.hostAddress && a.hostAddress ? `${b.hostAddress.address} ` : a.hostAddress || b.hostAddress ? "an overlapping host address " : "";
      out.push({
        rule: b,
        diagnostic: error(
          "conflict",
          b.span,
          `this forward claims ${proto} ${where}port${b.hostPorts.first === b.hostPorts.last ? ` ${b.hostPorts.first}` : `s ${b.hostPorts.first}-${b.hostPorts.last}`}, which an earlier forward already claims`,
          "give one of them another host port or a specific host address",
          a.span,
        ),
      });
      break;
    }
  }
  return out;
}
