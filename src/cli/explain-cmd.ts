// virt-hooks explain DOMAIN: every rule that concerns a guest, and how its
// target resolves — which NIC and MAC, which network, which DHCP host entry,
// what dnsmasq leased, and the firewall rules that would be rendered. For a
// guest that is not running, what would happen if it started now.
import { join } from "node:path";
import type { Paths } from "../config/paths.js";
import { parseDomainXml, type DomainInfo } from "../libvirt/domain.js";
import { correctView } from "../host/view.js";
import { cidrContains } from "../net/ip.js";
import type { Plan } from "../plan/intents.js";
import { resolvePlan } from "../plan/resolve.js";
import { renderIptables } from "../render/iptables.js";
import { renderNft } from "../render/nftables.js";
import { formatDiagnostic } from "../rules/diagnostic.js";
import type { Rule } from "../rules/model.js";
import { closest } from "../rules/parse.js";
import { leaseReader } from "../effects/lease-reader.js";
import { resolveNics, type NicResolution } from "../status/target.js";
import { originKey } from "../status/counters.js";
import { loadContext } from "../converge/context.js";
import { planHosts } from "../converge/host-entries.js";
import { withDeclaredHosts, type HostEntryState } from "../plan/fixed-addresses.js";
import { readTextIfAny } from "../effects/read-text.js";
import { ruleText } from "./json.js";
import { readHostFacts } from "../lint/facts.js";
import type { CliIo } from "./io.js";
import { escapeLine } from "../text/escape.js";

export const EXPLAIN_EXIT = { ok: 0, unknown: 4 } as const;

export async function runExplain(paths: Paths, io: CliIo, name: string): Promise<number> {
  const ctx = loadContext(paths, { lint: false });
  const running = ctx.view.domains.get(name);
  const defPath = join(paths.qemuConfigDir, `${name}.xml`);
  let defined: DomainInfo | undefined;
  if (!running && /^[^/\0]+$/.test(name)) {
    const xml = readTextIfAny(defPath);
    try {
      defined = xml ? parseDomainXml(xml) : undefined;
    } catch (e) {
      io.err(`${defPath}: ${(e as Error).message}\n`);
    }
  }
  const domain = running ?? defined;
  const rulesNaming = ctx.compiled.rules.forwards.filter((f) => f.target.kind === "domain" && f.target.name === name);
  if (!domain) {
    const known = readHostFacts(paths, ctx.view, ctx.compiled.rules).domains ?? [...ctx.view.domains.keys()];
    const near = closest(name, known);
    io.out(`domain ${name}: not running and not defined on this host${near ? ` (did you mean "${near}"?)` : ""}\n`);
    for (const f of rulesNaming) io.out(`  ${originKey(f.span)}  ${ruleText(f)}  (waits for a domain of this name)\n`);
    return EXPLAIN_EXIT.unknown;
  }

  // Not running: resolve as if it started now, from its definition.
  const view = running ? ctx.view : correctView(ctx.view, [{ kind: "domain-up", domain }]);
  const leasesOf = leaseReader(paths.dnsmasqDir);
  const nics = resolveNics(domain, withDeclaredHosts(view, ctx.compiled.rules.hosts), leasesOf);
  const hostStates = planHosts(paths, ctx.compiled.rules.hosts, ctx.view).plan.states;
  const now = resolvePlan(ctx.compiled.rules, ctx.view);
  const plan = running ? now : resolvePlan(ctx.compiled.rules, view);
  const out: string[] = [];
  out.push(
    running
      ? `domain ${name}: running (${join(paths.libvirtRunDir, "qemu", `${name}.xml`)})`
      : `domain ${name}: defined, not running (${defPath}); below: what its start would do now`,
  );
  for (const nic of nics) out.push(...nicLines(nic, hostStates));
  if (nics.length === 0) out.push("  no network interfaces");

  const concerned = concerning(ctx.compiled.rules, name, nics);
  out.push("", concerned.length ? "rules:" : "rules: none concern this domain");
  for (const rule of concerned) {
    const i = plan.states.findIndex((s) => s.rule === rule);
    const s = plan.states[i];
    const before = now.states[i];
    if (!s) continue;
    out.push(`  ${originKey(rule.span)}  ${ruleText(rule)}`);
    const state = !running && before && before.state !== s.state ? `${before.state} now; on start: ${s.state}` : s.state;
    out.push(`    ${state}: ${s.detail}`);
    if (s.state === "failed") out.push(...formatDiagnostic(s.diagnostic).split("\n").slice(1).map((l) => `    ${l.trim()}`));
    for (const l of rendered(plan, rule, ctx.backend.backend)) out.push(`    ${l}`);
  }
  io.out(out.join("\n") + "\n");
  return EXPLAIN_EXIT.ok;
}

function nicLines(nic: NicResolution, hosts: readonly HostEntryState[]): string[] {
  const where = nic.network
    ? `network ${nic.network} (${nic.networkActive ? `active${nic.bridge ? `, bridge ${nic.bridge}` : ""}` : "not active"})`
    : nic.bridge
      ? `bridge ${nic.bridge} (no libvirt network)`
      : "no libvirt network";
  const lines = [`  nic ${nic.mac} type ${nic.type || "?"}${nic.tap ? ` tap ${nic.tap}` : ""} on ${where}`];
  if (nic.network && nic.networkActive) {
    if (nic.fixed.length === 0) lines.push(`    fixed address: none (no DHCP host entry for ${nic.mac})`);
    for (const f of nic.fixed) {
      const declared = hosts.find((h) => h.rule.network === nic.network && h.rule.address === f.address);
      const by = declared ? `declared at ${originKey(declared.rule.span)}, ${declared.state === "live" ? "in the network" : `${declared.state}: ${declared.detail}`}; ` : "";
      lines.push(`    fixed address ${f.address} (${by}DHCP host entry matched by ${f.matchedBy === "mac" ? "MAC" : "name"})`);
    }
  }
  for (const l of nic.leases) {
    const differs = nic.fixed.length > 0 && !nic.fixed.some((f) => f.address === l.ip) ? "  (differs from the fixed address)" : "";
    const expires = l.expiry ? `, expires ${new Date(l.expiry * 1000).toISOString().replace(".000Z", "Z")}` : "";
    // The guest's choice: kept on its line here (the sink escapes the rest).
    lines.push(`    lease ${l.ip}${l.hostname ? ` hostname ${escapeLine(l.hostname)}` : ""}${expires}${differs}`);
  }
  if (nic.bridge && nic.leases.length === 0 && nic.networkActive) lines.push("    lease: none in dnsmasq's status file");
  return lines;
}

/** Forwards naming it or one of its addresses; masquerades and accepts of its networks or addresses. */
function concerning(rules: { forwards: readonly Rule[]; masquerades: readonly Rule[]; accepts: readonly Rule[]; egress: readonly Rule[] }, name: string, nics: readonly NicResolution[]): Rule[] {
  const addresses = nics.flatMap((n) => [...n.fixed.map((f) => f.address), ...n.leases.map((l) => l.ip)]);
  const networks = new Set(nics.flatMap((n) => (n.network ? [n.network] : [])));
  const out: Rule[] = [];
  for (const r of [...rules.forwards, ...rules.masquerades, ...rules.accepts, ...rules.egress]) {
    if ((r.kind === "egress" || r.kind === "map") && ((r.target.kind === "domain" && r.target.name === name) || (r.target.kind === "address" && addresses.includes(r.target.address)))) out.push(r);
    if (r.kind === "forward" && ((r.target.kind === "domain" && r.target.name === name) || (r.target.kind === "address" && addresses.includes(r.target.address)))) out.push(r);
    if (r.kind === "masquerade" && networks.has(r.network)) out.push(r);
    if (r.kind === "accept" && [r.from, r.to].some((e) => (e.kind === "network" ? networks.has(e.name) : addresses.some((a) => cidrContains(e.cidr, a))))) out.push(r);
  }
  return out.sort((a, b) => a.span.file.path.localeCompare(b.span.file.path) || a.span.start - b.span.start);
}

function rendered(plan: Plan, rule: Rule, backend: "iptables" | "nftables"): string[] {
  const only: Plan = {
    forwards: plan.forwards.filter((f) => f.rule === rule),
    masquerades: plan.masquerades.filter((m) => m.rule === rule),
    accepts: plan.accepts.filter((a) => a.rule === rule),
    egress: plan.egress.filter((e) => e.rule === rule),
    states: [],
  };
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    if (backend === "iptables") {
      for (const r of renderIptables(only, family).rules) out.push(`${family === 4 ? "iptables" : "ip6tables"} -t ${r.table} -A ${r.chain} ${r.spec}`);
    } else {
      const t = renderNft(only, family);
      for (const l of t.lines) out.push(`nft ${t.nftFamily} virt_hooks ${l}`);
    }
  }
  return out;
}

