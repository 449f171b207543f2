// What every fuzz case must satisfy, shared by the fuzz tests: plain
// functions that throw with the offending text (cheaper than expect() in a
// loop of thousands).
import type { Compiled } from "../../../src/rules/compile.js";
import { formatDiagnostic, type Diagnostic } from "../../../src/rules/diagnostic.js";
import type { IptablesRuleset } from "../../../src/render/iptables.js";
import type { NftTable } from "../../../src/render/nftables.js";
import type { Plan } from "../../../src/plan/intents.js";

export function check(ok: unknown, what: string, detail?: unknown): asserts ok {
  if (!ok) throw new Error(`${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)?.slice(0, 2000)}`}`);
}

/** Every code a diagnostic may carry (README "Errors" table, plus the resolver's). */
export const KNOWN_CODES = new Set([
  "syntax", "unknown-statement", "unknown-protocol", "bad-port", "port-count", "bad-address", "family-mismatch",
  "bad-interface", "bad-name", "unknown-setting", "bad-setting", "conflicting-setting", "conflict", "duplicate",
  "too-many-rules", "too-many-errors",
  "not-attached", "no-fixed-address", "ambiguous-target", "no-address", "no-subnet", "nftables-backend", "mixed-backends",
]);

// Whatever could break, forge or visually reorder a log line.
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

export function checkDiagnostic(d: Diagnostic): void {
  check(d.severity === "error" || d.severity === "warning", "severity", d.severity);
  check(KNOWN_CODES.has(d.code), "unknown diagnostic code", d.code);
  check(d.message.length > 0 && d.message.length < 2000, "message length", d.message.length);
  // One log line per problem: nothing from the input may break or forge a line.
  check(!CONTROL.test(d.message), "control character in a message", d.message);
  check(!d.hint || !CONTROL.test(d.hint), "control character in a hint", d.hint);
  if (d.span) {
    check(d.span.start >= 0 && d.span.start <= d.span.end && d.span.end <= d.span.file.text.length + 1, "span out of the file", [d.span.start, d.span.end, d.span.file.text.length]);
  }
  const first = formatDiagnostic(d).split("\n")[0] as string;
  check(/^(.*:\d+:\d+: )?(error|warning): .+ \[[a-z-]+\]$/s.test(first), "diagnostic line shape", first);
}

export function checkCompiled(c: Compiled): void {
  for (const d of c.diagnostics) checkDiagnostic(d);
  const port = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  for (const f of c.rules.forwards) {
    check(f.protos.length > 0 && f.protos.every((p) => p === "tcp" || p === "udp"), "protos", f.protos);
    check(port(f.hostPorts.first) && port(f.hostPorts.last) && f.hostPorts.first <= f.hostPorts.last, "host ports", f.hostPorts);
    if (f.targetPorts) {
      const t = f.targetPorts;
      check(port(t.first) && port(t.last) && t.first <= t.last, "target ports", t);
      check(t.first === t.last || t.last - t.first === f.hostPorts.last - f.hostPorts.first, "port count", [f.hostPorts, t]);
    }
    if (f.target.kind === "domain") {
      check(f.target.name.length > 0 && !CONTROL.test(f.target.name) && !f.target.name.includes("/"), "domain name", f.target.name);
      check(f.target.network === undefined || (f.target.network.length > 0 && !CONTROL.test(f.target.network)), "network name", f.target.network);
    }
    check(f.inInterface === undefined || /^[A-Za-z0-9_.:@+-]{1,15}$/.test(f.inInterface), "interface", f.inInterface);
  }
  for (const m of c.rules.masquerades) check(m.network.length > 0 && !CONTROL.test(m.network), "masquerade network", m.network);
  for (const e of c.rules.egress) {
    check(/^[0-9a-f.:]+$/.test(e.address.address) && (e.address.family === 4) === !e.address.address.includes(":"), "egress address", e.address);
    if (e.target.kind === "address") check(e.target.family === e.address.family, "egress family", e);
    else check(e.target.name.length > 0 && !CONTROL.test(e.target.name) && !e.target.name.includes("/"), "egress domain name", e.target.name);
  }
  // A mapped address belongs to one guest, and no forward names it.
  const mapped = c.rules.egress.filter((e) => e.kind === "map").map((e) => e.address.address);
  check(new Set(mapped).size === mapped.length, "an address mapped twice", mapped);
  check(!c.rules.egress.some((e) => e.kind === "egress" && mapped.includes(e.address.address)), "egress from a mapped address");
  check(!c.rules.forwards.some((f) => f.hostAddress && mapped.includes(f.hostAddress.address)), "forward to a mapped address");
}

export function checkPlan(plan: Plan): void {
  for (const s of plan.states) if (s.state === "failed") checkDiagnostic(s.diagnostic);
  // One translation per guest address and family.
  const guests = plan.egress.map((e) => `${e.family} ${e.guestAddress}`);
  check(new Set(guests).size === guests.length, "a guest leaving from two addresses", guests);
}

// iptables-restore splits a rule into words on blanks, with "..." grouping.
const IPT_WORD = /^[A-Za-z0-9_.:/,!+=@[\]-]+$/;
const SAFE_STRING = /^[A-Za-z0-9 _.:/@+=,-]*$/;

export function checkIptables(rs: IptablesRuleset): void {
  for (const r of rs.rules) {
    check(/^VIRT_HOOKS_(PRE|OUT|POST|FWD|SNAT)$/.test(r.chain), "chain name", r.chain);
    check(!CONTROL.test(r.spec), "control character in an iptables rule", r.spec);
    check(r.spec.split('"').length % 2 === 1, "unbalanced quote in an iptables rule", r.spec);
    for (const word of r.spec.match(/"[^"]*"|[^ ]+/g) ?? []) {
      if (word.startsWith('"')) check(SAFE_STRING.test(word.slice(1, -1)), "unsafe quoted iptables word", word);
      else check(IPT_WORD.test(word), "unsafe iptables word", [word, r.spec]);
    }
  }
}

// Outside strings, a table holds only nft's own syntax: no quote, no newline inside a rule, no comment sign.
const NFT_TEXT = /^[A-Za-z0-9_.:/,!+=@{}|;[\]\- \t]*$/;

export function checkNft(t: NftTable): void {
  let depth = 0;
  for (const line of t.body.split("\n")) {
    const strings = line.match(/"[^"]*"/g) ?? [];
    for (const s of strings) check(SAFE_STRING.test(s.slice(1, -1)), "unsafe nft string", [s, line]);
    const rest = line.replace(/"[^"]*"/g, "");
    check(NFT_TEXT.test(rest), "unexpected character in nft text", line);
    for (const ch of rest) depth += ch === "{" ? 1 : ch === "}" ? -1 : 0;
    check(depth >= 0, "nft braces", line);
  }
  check(depth === 0, "nft braces unbalanced", t.body.slice(0, 500));
  for (const l of t.lines) check(!/[\r\n]/.test(l), "nft line", l);
}

/** Each `ip -batch` line: exactly one known command on plain device names. Returns how many lines it checked. */
export function checkIpBatch(batch: string): number {
  const lines = batch.split("\n").filter(Boolean);
  for (const line of lines) {
    check(/^link set dev [A-Za-z0-9_.:@-]{1,15} (master [A-Za-z0-9_.:@-]{1,15}|mtu \d+|type bridge_slave isolated on|up)$/.test(line), "ip batch line", line);
  }
  return lines.length;
}

/** Runs fn, returns its duration in ms. */
export function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}
