// egress and map statements -> EgressIntents. Pure, like resolve.ts: the
// target resolves as a forward's does (a domain's fixed address, NAME@NETWORK,
// or an address), so the translation exists exactly while the guest runs here
// and follows it to another host with the same rules.d.
import { cidrContains, makeCidr, type Cidr, type Family } from "../net/ip.js";
import type { HostView } from "../host/view.js";
import type { EgressRule } from "../rules/model.js";
import { positionOf } from "../rules/source.js";
import { basename } from "node:path";
import type { EgressIntent, RuleState } from "./intents.js";
import { domainAddresses, fail, type TargetAddress } from "./target.js";

/**
 * Never rewritten, like libvirt's own masquerade leaves them: multicast and
 * broadcast (DHCP, mDNS) would otherwise leave "from" a public address.
 */
const LOCAL_ONLY: Record<Family, readonly Cidr[]> = {
  4: [makeCidr("224.0.0.0", 24) as Cidr, makeCidr("255.255.255.255", 32) as Cidr],
  6: [makeCidr("ff00::", 8) as Cidr],
};

export function resolveEgress(rules: readonly EgressRule[], view: HostView): { intents: EgressIntent[]; states: RuleState[] } {
  const intents: EgressIntent[] = [];
  const states: RuleState[] = [];
  for (const rule of rules) {
    const r = resolveOne(rule, view, intents);
    if (r.intent) intents.push(r.intent);
    states.push(r.state);
  }
  return { intents, states };
}

/** Every active libvirt network's subnet of the family: the guest's own, other networks, accept peers. */
export function libvirtSubnets(view: HostView, family: Family): Cidr[] {
  const seen = new Map<string, Cidr>();
  for (const n of view.networks.values()) for (const s of n.subnets) if (s.family === family) seen.set(`${s.cidr.address}/${s.cidr.prefix}`, s.cidr);
  return [...[...seen.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.prefix - b.prefix)), ...LOCAL_ONLY[family]];
}

function resolveOne(rule: EgressRule, view: HostView, earlier: readonly EgressIntent[]): { intent?: EgressIntent; state: RuleState } {
  const family = rule.address.family;
  const address = rule.address.address;
  // A fleet shares one rules.d: an address another host owns waits here, as a
  // `host` statement for a network this host lacks does.
  if (view.localAddresses && !view.localAddresses.has(address)) {
    return { state: { rule, state: "waiting", detail: `${address} is not an address of this host` } };
  }
  let target: TargetAddress;
  if (rule.target.kind === "address") {
    const t = rule.target;
    const network = [...view.networks.values()].find((n) => n.subnets.some((s) => cidrContains(s.cidr, t.address)));
    target = { family: t.family, address: t.address, ...(network ? { network } : {}) };
  } else {
    const domain = view.domains.get(rule.target.name);
    if (!domain) return { state: { rule, state: "waiting", detail: `domain "${rule.target.name}" is not running` } };
    const found = domainAddresses(rule, domain, view, new Set([family]));
    if ("failure" in found) return { state: found.failure };
    const mine = found.addresses.find((a) => a.family === family);
    if (!mine) return { state: fail(rule, "no-address", `domain "${domain.name}" has no fixed IPv${family} address to leave from ${address}`, `give it one (a host statement), or use an IPv${family === 4 ? 6 : 4} host address`).state };
    target = mine;
  }
  const other = earlier.find((i) => i.family === family && i.guestAddress === target.address);
  if (other) {
    return {
      state: fail(rule, "conflict", `${target.address} already leaves from ${other.hostAddress} (the ${other.rule.kind} statement at ${basename(other.rule.span.file.path)}:${positionOf(other.rule.span.file, other.rule.span.start).line}): a guest leaves from one address per IP family`, "keep one of the two statements").state,
    };
  }
  const intent: EgressIntent = {
    rule,
    family,
    guestAddress: target.address,
    hostAddress: address,
    inbound: rule.kind === "map",
    excluded: libvirtSubnets(view, family),
    hairpinSources: rule.kind === "map" && target.network ? target.network.subnets.filter((s) => s.family === family).map((s) => s.cidr) : [],
  };
  const detail = rule.kind === "map" ? `${address} ⇄ ${target.address} (every port in, new connections out)` : `${target.address} leaves from ${address}`;
  return { intent, state: { rule, state: "live", detail } };
}
