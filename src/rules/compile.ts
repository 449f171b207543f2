// Rule files -> one RuleSet plus diagnostics. Statements that fail to parse are
// dropped (and reported); everything else survives, so one typo costs one rule,
// never the whole host's forwards.
import { error, shown, warning, type Diagnostic } from "./diagnostic.js";
import { defaultSettings, type AcceptRule, type EgressRule, type ForwardRule, type HostRule, type MasqueradeRule, type RouteRule, type RuleSet, type Settings, type OnError, type UplinkRule } from "./model.js";
import { parseLine, type SettingKey, type Statement } from "./parse.js";
import type { SourceFile, Span } from "./source.js";
import { splitLines } from "./tokenize.js";

export interface Compiled {
  readonly rules: RuleSet;
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * No real host has thousands of rules; the cap keeps a runaway (generated or
 * corrupted) rules.d from costing every hook call seconds. What is beyond it is
 * not applied, and the first statement beyond it says so.
 */
export const MAX_STATEMENTS = 10_000;

/** Past this many problems in one file, the rest are counted, not listed: one log line each would flood the journal. */
export const MAX_DIAGNOSTICS_PER_FILE = 50;

export function compileRules(files: readonly SourceFile[]): Compiled {
  const diagnostics: Diagnostic[] = [];
  const statements: Statement[] = [];
  let capped = false;
  for (const file of files) {
    if (capped) break;
    let shown = 0;
    let hidden = 0;
    let firstHidden: Span | undefined;
    for (const line of splitLines(file)) {
      if (statements.length >= MAX_STATEMENTS) {
        diagnostics.push(error("too-many-rules", line.span, `more than ${MAX_STATEMENTS} statements in rules.d; this one and all after it are ignored`, "merge rules (port ranges, tcp,udp, CIDR lists) or remove unused files"));
        capped = true;
        break;
      }
      const result = parseLine(line);
      if (result.ok) statements.push(result.statement);
      else if (shown < MAX_DIAGNOSTICS_PER_FILE) {
        diagnostics.push(...result.diagnostics);
        shown++;
      } else {
        hidden++;
        firstHidden ??= line.span;
      }
    }
    if (hidden > 0) {
      diagnostics.push(error("too-many-errors", firstHidden, `${hidden} more statement(s) in this file have errors and are not listed`, `fix the ones listed, then run: virt-hooks check`));
    }
  }
  const forwards: ForwardRule[] = [];
  const masquerades: MasqueradeRule[] = [];
  const accepts: AcceptRule[] = [];
  const uplinks: UplinkRule[] = [];
  const routes: RouteRule[] = [];
  const hosts: HostRule[] = [];
  const egress: EgressRule[] = [];
  const set = new Map<SettingKey, { value: string; span: Span }>();
  for (const s of statements) {
    switch (s.kind) {
      case "forward":
        forwards.push(s);
        break;
      case "masquerade": {
        const earlier = masquerades.find((m) => m.network === s.network);
        if (earlier) diagnostics.push(warning("duplicate", s.span, `network ${shown(s.network)} is already masqueraded by an earlier rule`, "remove one of the two"));
        else masquerades.push(s);
        break;
      }
      case "accept":
        accepts.push(s);
        break;
      case "uplink": {
        // One interface can be a port of one bridge only.
        const earlier = uplinks.find((u) => u.iface === s.iface);
        if (!earlier) uplinks.push(s);
        else if (earlier.network === s.network) diagnostics.push(warning("duplicate", s.span, `${shown(s.iface)} is already the uplink of network ${shown(s.network)}`, "remove one of the two"));
        else diagnostics.push(error("conflict", s.ifaceSpan, `${shown(s.iface)} is already the uplink of network ${shown(earlier.network)}: an interface can be a port of one bridge only`, "keep one of the two uplink statements", earlier.span));
        break;
      }
      case "route": {
        // Two routes to one destination would replace each other on every event.
        const earlier = routes.find((r) => r.family === s.family && r.dest.address === s.dest.address && r.dest.prefix === s.dest.prefix);
        if (!earlier) routes.push(s);
        else if (earlier.network === s.network && earlier.gateway === s.gateway) diagnostics.push(warning("duplicate", s.span, "the same route is declared by an earlier rule", "remove one of the two"));
        else diagnostics.push(error("conflict", s.span, `a route to ${s.isDefault ? "default" : `${s.dest.address}/${s.dest.prefix}`} is already declared (via ${earlier.gateway} on network ${shown(earlier.network)})`, "keep one route per destination", earlier.span));
        break;
      }
      case "host": {
        const earlier = hosts.find((h) => h.network === s.network && h.family === s.family && ((s.family === 4 && h.mac === s.mac) || h.address === s.address || (s.name !== undefined && h.name === s.name)));
        if (!earlier) hosts.push(s);
        else if (earlier.mac === s.mac && earlier.address === s.address && earlier.name === s.name) diagnostics.push(warning("duplicate", s.span, "the same fixed address is declared by an earlier rule", "remove one of the two"));
        else {
          const what = earlier.mac === s.mac ? `MAC ${s.mac}` : earlier.address === s.address ? `${s.address}` : `the name ${shown(s.name ?? "")}`;
          diagnostics.push(error("conflict", s.span, `${what} already has a fixed address on network ${shown(s.network)} (${earlier.mac} ${earlier.address}${earlier.name ? ` ${earlier.name}` : ""}): one NIC, one address, one name per network`, "keep one of the two host statements", earlier.span));
        }
        break;
      }
      case "egress":
      case "map":
        egress.push(s);
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
  const dropped = new Set<ForwardRule | EgressRule>(conflicts.map((c) => c.rule));
  const egressConflicts = findEgressConflicts(egress, forwards.filter((f) => !dropped.has(f)));
  diagnostics.push(...egressConflicts.map((c) => c.diagnostic));
  for (const c of egressConflicts) dropped.add(c.rule);
  const kept = forwards.filter((f) => !dropped.has(f));
  const keptEgress = egress.filter((e) => !dropped.has(e));
  const onError = set.get("on-error")?.value as OnError | undefined;
  const reattach = set.get("reattach")?.value;
  const backend = set.get("backend")?.value as Settings["backend"] | undefined;
  const settings: Settings = {
    ...defaultSettings,
    ...(onError ? { onError } : {}),
    ...(reattach ? { reattach: reattach === "on" } : {}),
    ...(backend ? { backend } : {}),
  };
  return { rules: { forwards: kept, masquerades, accepts, uplinks, routes, hosts, egress: keptEgress, settings }, diagnostics };
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
  // Each forward is compared only with the earlier ones that share its
  // from/in limits and could share its host address: one list per host
  // address plus one for "any address", instead of every earlier forward
  // (which made thousands of forwards take seconds).
  type Entry = { readonly index: number; readonly rule: ForwardRule; readonly family?: number };
  interface Group {
    readonly all: Entry[];
    readonly anyAddress: Entry[];
    readonly byAddress: Map<string, Entry[]>;
  }
  const groups = new Map<string, Group>();
  const family = (f: ForwardRule) => f.hostAddress?.family ?? (f.target.kind === "address" ? f.target.family : undefined);
  const limits = (f: ForwardRule) => `${f.from.map((c) => `${c.address}/${c.prefix}`).sort().join(",")}|${f.inInterface ?? ""}`;
  const clashes = (a: Entry, b: Entry): boolean => {
    if (a.rule.hostPorts.last < b.rule.hostPorts.first || b.rule.hostPorts.last < a.rule.hostPorts.first) return false;
    if (!a.rule.protos.some((p) => b.rule.protos.includes(p))) return false;
    if (a.family && b.family && a.family !== b.family) return false;
    return !(a.rule.hostAddress && b.rule.hostAddress && a.rule.hostAddress.address !== b.rule.hostAddress.address);
  };
  const firstClash = (list: readonly Entry[] | undefined, b: Entry) => list?.find((a) => clashes(a, b));
  forwards.forEach((rule, index) => {
    const b: Entry = { index, rule, family: family(rule) };
    const key = limits(rule);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { all: [], anyAddress: [], byAddress: new Map() }));
    // The earliest clashing forward, as a scan over all earlier ones would find.
    const found = rule.hostAddress
      ? [firstClash(group.byAddress.get(rule.hostAddress.address), b), firstClash(group.anyAddress, b)]
      : [firstClash(group.all, b)];
    const a = found.filter((e): e is Entry => e !== undefined).sort((x, y) => x.index - y.index)[0]?.rule;
    group.all.push(b);
    if (rule.hostAddress) {
      const list = group.byAddress.get(rule.hostAddress.address);
      if (list) list.push(b);
      else group.byAddress.set(rule.hostAddress.address, [b]);
    } else group.anyAddress.push(b);
    if (!a) return;
    const proto = a.protos.find((p) => rule.protos.includes(p));
    const where = rule.hostAddress && a.hostAddress ? `${rule.hostAddress.address} ` : a.hostAddress || rule.hostAddress ? "an overlapping host address " : "";
    out.push({
      rule,
      diagnostic: error(
        "conflict",
        rule.span,
        `this forward claims ${proto} ${where}port${rule.hostPorts.first === rule.hostPorts.last ? ` ${rule.hostPorts.first}` : `s ${rule.hostPorts.first}-${rule.hostPorts.last}`}, which an earlier forward already claims`,
        "give one of them another host port or a specific host address",
        a.span,
      ),
    });
  });
  return out;
}

const targetKey = (t: EgressRule["target"]) => (t.kind === "address" ? `address ${t.address}` : `domain ${t.name}@${t.network ?? ""}`);
const targetText = (t: EgressRule["target"]) => (t.kind === "address" ? t.address : `${shown(t.name)}${t.network !== undefined ? `@${shown(t.network)}` : ""}`);

/**
 * What egress and map statements may not share, decided from the text alone
 * (the same target reached two ways is caught when resolved, plan/egress.ts):
 * - a mapped address belongs to one guest: a second map of it, an egress from
 *   it, or a forward naming it as host address would split its inbound ports;
 * - a guest leaves from one address: two statements for one target.
 * Several guests may share an egress address: the kernel's NAT keeps their
 * flows apart by source port, as libvirt's masquerade does for a whole network.
 * The later statement is dropped, as for conflicting forwards.
 */
function findEgressConflicts(egress: readonly EgressRule[], forwards: readonly ForwardRule[]): { rule: EgressRule | ForwardRule; diagnostic: Diagnostic }[] {
  const out: { rule: EgressRule | ForwardRule; diagnostic: Diagnostic }[] = [];
  const maps = new Map<string, EgressRule>();
  const byAddress = new Map<string, EgressRule>();
  const byTarget = new Map<string, EgressRule>();
  for (const e of egress) {
    const mapped = maps.get(e.address.address);
    const sameTarget = byTarget.get(`${e.address.family} ${targetKey(e.target)}`);
    const user = byAddress.get(e.address.address);
    if (mapped) {
      out.push({ rule: e, diagnostic: error("conflict", e.addressSpan, `${e.address.address} is already mapped 1:1 to ${targetText(mapped.target)}: every port of it goes to that guest`, e.kind === "map" ? "map each address to one guest; give this one another address" : `let this guest leave from another address (several guests may share an egress address that is not mapped)`, mapped.span) });
      continue;
    }
    if (e.kind === "map" && user) {
      out.push({ rule: e, diagnostic: error("conflict", e.addressSpan, `${e.address.address} is already the egress address of ${targetText(user.target)}: a mapped address belongs to one guest`, "map another address, or drop the earlier egress statement", user.span) });
      continue;
    }
    if (sameTarget) {
      out.push({ rule: e, diagnostic: error("conflict", e.span, `${targetText(e.target)} already leaves from ${sameTarget.address.address} (an earlier ${sameTarget.kind} statement): a guest leaves from one address per IP family`, "keep one of the two statements", sameTarget.span) });
      continue;
    }
    if (e.kind === "map") maps.set(e.address.address, e);
    byAddress.set(e.address.address, e);
    byTarget.set(`${e.address.family} ${targetKey(e.target)}`, e);
  }
  for (const f of forwards) {
    const m = f.hostAddress && maps.get(f.hostAddress.address);
    if (!m) continue;
    // Whichever comes later in rules.d is dropped.
    const later = compareSpans(f.span, m.span) > 0 ? f : m;
    const earlier = later === f ? m : f;
    out.push({ rule: later, diagnostic: error("conflict", later.span, `${m.address.address} is mapped 1:1 to ${targetText(m.target)} and a forward names it as its host address`, `forward from another address, or leave the host address out (a forward without one does not catch a mapped address)`, earlier.span) });
  }
  return out;
}

function compareSpans(a: Span, b: Span): number {
  return a.file === b.file ? a.start - b.start : a.file.path < b.file.path ? -1 : a.file.path > b.file.path ? 1 : 0;
}
