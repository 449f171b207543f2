// The --json shapes of check, plan and status (docs/json.md, version 1). Every
// field is always present (null when it does not apply), so consumers can rely
// on the shape; new fields may be added, none removed or changed within a version.
import { positionOf, type Span } from "../rules/source.js";
import type { Diagnostic } from "../rules/diagnostic.js";
import type { HostRule, Rule } from "../rules/model.js";
import type { HostEntryState } from "../plan/fixed-addresses.js";
import type { RuleState } from "../plan/intents.js";
import type { FamilySync } from "../apply/iptables-backend.js";
import type { DriftItem } from "../status/drift.js";
import type { RuleStatus } from "../status/report.js";
import { originKey } from "../status/counters.js";

export const JSON_VERSION = 1;

export const jsonText = (value: unknown) => JSON.stringify(value, null, 2) + "\n";

function place(span: Span | undefined) {
  if (!span) return { file: null, line: null, column: null };
  const p = positionOf(span.file, span.start);
  return { file: span.file.path, line: p.line, column: p.column };
}

export function diagnosticJson(d: Diagnostic) {
  return {
    severity: d.severity,
    code: d.code,
    message: d.message,
    hint: d.hint ?? null,
    ...place(d.span),
    related: d.related ? place(d.related) : null,
  };
}

/** Problems that are not about a rule (unreadable files): diagnostics without a place. */
export const problemJson = (message: string) => ({ severity: "error", code: "read", message, hint: null, file: null, line: null, column: null, related: null });

/** The statement as written, comments and surrounding space dropped. */
export function ruleText(rule: Rule | HostRule): string {
  const raw = rule.span.file.text.slice(rule.span.start, rule.span.end);
  return raw.replace(/\s+#.*$/, "").trim();
}

export function ruleJson(rule: Rule | HostRule) {
  const p = place(rule.span);
  return { origin: originKey(rule.span), file: p.file, line: p.line, kind: rule.kind, text: ruleText(rule) };
}

export function stateJson(s: RuleState, targets: readonly string[]) {
  return { ...ruleJson(s.rule), state: s.state, detail: s.detail, targets };
}

export function statusRuleJson(r: RuleStatus) {
  return {
    ...ruleJson(r.rule),
    state: r.state,
    detail: r.detail,
    targets: r.targets,
    domain: r.domain ?? null,
    mac: r.mac ?? null,
    network: r.network ?? null,
    lease:
      r.lease === undefined || r.lease === null
        ? null
        : { ip: r.lease.ip, mac: r.lease.mac ?? null, hostname: r.lease.hostname ?? null, expiry: r.lease.expiry ?? null, differs: r.lease.differs },
    counters: r.counters ? { connections: r.counters.connections, packets: r.counters.packets, bytes: r.counters.bytes, note: r.counters.note ?? null } : null,
  };
}

/** A `host` statement: its entry and whether the network holds it (check, plan/apply, status). */
export function hostJson(s: HostEntryState) {
  return { ...ruleJson(s.rule), state: s.state, detail: s.detail, network: s.rule.network, mac: s.rule.mac, ip: s.rule.address, name: s.rule.name ?? null };
}

export function driftJson(d: DriftItem) {
  return { family: d.family, backend: d.backend, kind: d.kind, where: d.where, detail: d.detail, origin: d.origin ?? null };
}

export function familyJson(f: FamilySync) {
  return {
    family: f.family,
    backend: f.backend,
    inSync: !f.error && f.transaction === undefined,
    added: f.added,
    removed: f.removed,
    transaction: f.transaction ?? null,
    error: f.error ?? null,
  };
}
