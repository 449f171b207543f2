// Rules + what libvirt runs -> the plan. Pure: every input is explicit, so the
// same rules and host always give the same plan, and tests need no root.
import { cidrContains, formatCidr, type Cidr, type Family } from "../net/ip.js";
import type { DomainInfo } from "../libvirt/domain.js";
import type { NetworkInfo } from "../libvirt/network.js";
import type { HostView } from "../host/view.js";
import { error, warning } from "../rules/diagnostic.js";
import { formatPorts, type AcceptRule, type Endpoint, type ForwardRule, type MasqueradeRule, type RuleSet } from "../rules/model.js";
import { closest } from "../rules/parse.js";
import type { AcceptIntent, ForwardIntent, MasqueradeIntent, Plan, RuleState } from "./intents.js";
import { withDeclaredHosts } from "./fixed-addresses.js";
import { domainAddresses, fail, type Resolved, type TargetAddress } from "./target.js";
import { resolveEgress } from "./egress.js";

export { shellWord } from "./target.js";

export function resolvePlan(rules: RuleSet, seen: HostView): Plan {
  // Declared fixed addresses count as there: the same rules.d resolves on every host (plan/fixed-addresses.ts).
  const view = withDeclaredHosts(seen, rules.hosts);
  const forwards: ForwardIntent[] = [];
  const masquerades: MasqueradeIntent[] = [];
  const accepts: AcceptIntent[] = [];
  const states: RuleState[] = [];
  for (const rule of rules.forwards) {
    const r = resolveForward(rule, view);
    forwards.push(...r.intents);
    states.push(r.state);
  }
  for (const rule of rules.masquerades) {
    const r = resolveMasquerade(rule, view);
    masquerades.push(...r.intents);
    states.push(r.state);
  }
  for (const rule of rules.accepts) {
    const r = resolveAccept(rule, view);
    accepts.push(...r.intents);
    states.push(r.state);
  }
  const egress = resolveEgress(rules.egress, view);
  states.push(...egress.states);
  return { forwards: byPrecedence(forwards), masquerades, accepts, egress: egress.intents, states };
}

/**
 * Where forwards overlap (allowed when their `from`/`in` limits differ), the
 * more specific one wins, on every backend: limited by source or interface
 * first, then those for one host address, then "any of the host's addresses";
 * file order within each group. (nftables keeps unrestricted forwards in maps,
 * which have no order, so this is the one order both backends can honour.)
 */
function byPrecedence(forwards: ForwardIntent[]): ForwardIntent[] {
  const rank = (f: ForwardIntent) => (f.from.length > 0 || f.inInterface !== undefined ? 0 : f.hostAddress ? 1 : 2);
  return forwards.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map((x) => x.f);
}


function resolveForward(rule: ForwardRule, view: HostView): Resolved<ForwardIntent> {
  const wanted = wantedFamilies(rule);
  let targets: TargetAddress[];
  if (rule.target.kind === "address") {
    const t = rule.target;
    const network = [...view.networks.values()].find((n) => n.subnets.some((s) => cidrContains(s.cidr, t.address)));
    targets = [{ family: t.family, address: t.address, ...(network ? { network } : {}) }];
  } else {
    const domain = view.domains.get(rule.target.name);
    if (!domain) {
      return { intents: [], state: { rule, state: "waiting", detail: `domain "${rule.target.name}" is not running` } };
    }
    const found = domainAddresses(rule, domain, view, wanted);
    if ("failure" in found) return { intents: [], state: found.failure };
    targets = found.addresses;
  }
  const intents = targets
    .filter((t) => wanted.has(t.family))
    .map((t): ForwardIntent => {
      const hairpinSources = t.network ? t.network.subnets.filter((s) => s.family === t.family).map((s) => s.cidr) : [];
      return {
        rule,
        family: t.family,
        protos: rule.protos,
        ...(rule.hostAddress ? { hostAddress: rule.hostAddress.address } : {}),
        hostPorts: rule.hostPorts,
        targetAddress: t.address,
        ...(rule.targetPorts ? { targetPorts: rule.targetPorts } : {}),
        from: rule.from.filter((c) => c.family === t.family),
        ...(rule.inInterface !== undefined ? { inInterface: rule.inInterface } : {}),
        hairpinSources,
      };
    });
  if (intents.length === 0) {
    const fams = [...wanted].map((f) => `IPv${f}`).join(" or ");
    return fail(rule, "no-address", `the target has no ${fams} address that matches this forward`, "check the host address and \"from\" families against the target's address");
  }
  const detail = intents.map((i) => `${i.targetAddress}${i.targetPorts ? `:${formatPorts(i.targetPorts)}` : ""}`).join(", ");
  return { intents, state: { rule, state: "live", detail: `→ ${detail}` } };
}

/** The IP families a forward may use, from its host address and sources. */
function wantedFamilies(rule: ForwardRule): Set<Family> {
  if (rule.hostAddress) return new Set([rule.hostAddress.family]);
  if (rule.target.kind === "address") return new Set([rule.target.family]);
  if (rule.from.length > 0) return new Set(rule.from.map((c) => c.family));
  return new Set<Family>([4, 6]);
}

function resolveMasquerade(rule: MasqueradeRule, view: HostView): Resolved<MasqueradeIntent> {
  const network = view.networks.get(rule.network);
  if (!network) return { intents: [], state: { rule, state: "waiting", detail: `network "${rule.network}" is not active` } };
  if (network.forwardMode === "nat") {
    return { intents: [], state: { rule, state: "live", detail: "libvirt already masquerades this NAT network; nothing to add" } };
  }
  if (network.subnets.length === 0) {
    return fail(rule, "no-subnet", `network "${network.name}" has no <ip> subnet to masquerade`, "give the network an <ip address=… prefix=…> (virsh net-edit)");
  }
  const intents = network.subnets.map((s): MasqueradeIntent => ({ rule, subnet: s.cidr, ...(network.bridge ? { bridge: network.bridge } : {}) }));
  return { intents, state: { rule, state: "live", detail: `masquerading ${intents.map((i) => formatCidr(i.subnet)).join(", ")}` } };
}

interface EndpointSide {
  cidrs: Cidr[];
  bridge?: string;
  network?: NetworkInfo;
}

function endpointSide(endpoint: Endpoint, view: HostView): EndpointSide | { waiting: string } {
  if (endpoint.kind === "cidr") return { cidrs: [endpoint.cidr] };
  const network = view.networks.get(endpoint.name);
  if (!network) return { waiting: `network "${endpoint.name}" is not active` };
  return { cidrs: network.subnets.map((s) => s.cidr), ...(network.bridge ? { bridge: network.bridge } : {}), network };
}

function resolveAccept(rule: AcceptRule, view: HostView): Resolved<AcceptIntent> {
  const from = endpointSide(rule.from, view);
  const to = endpointSide(rule.to, view);
  for (const side of [from, to]) if ("waiting" in side) return { intents: [], state: { rule, state: "waiting", detail: side.waiting } };
  const f = from as EndpointSide;
  const t = to as EndpointSide;
  const keepSource = f.network?.forwardMode === "nat" && t.network !== undefined;
  const intents: AcceptIntent[] = [];
  for (const fc of f.cidrs) {
    for (const tc of t.cidrs) {
      if (fc.family !== tc.family) continue;
      intents.push({
        rule,
        from: fc,
        ...(f.bridge ? { fromBridge: f.bridge } : {}),
        to: tc,
        ...(t.bridge ? { toBridge: t.bridge } : {}),
        protos: rule.protos,
        ...(rule.ports ? { ports: rule.ports } : {}),
        keepSource,
      });
    }
  }
  if (intents.length === 0) return fail(rule, "family-mismatch", "FROM and TO share no IP family", "accept IPv4 to IPv4 and IPv6 to IPv6");
  return { intents, state: { rule, state: "live", detail: intents.map((i) => `${formatCidr(i.from)} → ${formatCidr(i.to)}`).join(", ") } };
}

/** Warnings about the host as a whole: networks on different firewall backends (a switch half done). */
export function hostWarnings(view: HostView) {
  const by = new Map<string, string[]>();
  for (const n of view.networks.values()) if (n.firewallBackend) by.set(n.firewallBackend, [...(by.get(n.firewallBackend) ?? []), n.name]);
  if (by.size < 2) return [];
  const list = [...by.entries()].map(([b, nets]) => `${b}: ${nets.join(", ")}`).join("; ");
  return [warning("mixed-backends", undefined, `libvirt's networks use different firewall backends (${list})`, "restart libvirtd (or virtnetworkd) so every network uses the firewall_backend of /etc/libvirt/network.conf")];
}

