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
import { firstFree } from "../libvirt/dhcp-host.js";

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
  return { forwards: byPrecedence(forwards), masquerades, accepts, states };
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

interface Resolved<I> {
  intents: I[];
  state: RuleState;
}

interface TargetAddress {
  family: Family;
  address: string;
  network?: NetworkInfo;
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

function fail(rule: ForwardRule | MasqueradeRule | AcceptRule, code: string, message: string, hint?: string): Resolved<never> {
  const diagnostic = error(code, rule.span, message, hint);
  return { intents: [], state: { rule, state: "failed", detail: message, diagnostic } };
}

const failure = (...args: Parameters<typeof fail>) => ({ failure: fail(...args).state });

/** The network a NIC is plugged into: by name (type='network') or by its bridge. */
function networkOfInterface(nic: DomainInfo["interfaces"][number], view: HostView): NetworkInfo | undefined {
  if (nic.network) return view.networks.get(nic.network);
  if (nic.bridge) return [...view.networks.values()].find((n) => n.bridge === nic.bridge);
  return undefined;
}

/**
 * A domain's fixed addresses: the DHCP <host> entries of its networks whose MAC
 * is one of its NICs (or, without a MAC, whose name is the domain's). Leases are
 * not used: a forward must not follow an address that can change under it.
 */
function domainAddresses(
  rule: ForwardRule,
  domain: DomainInfo,
  view: HostView,
  wanted: Set<Family>,
): { addresses: TargetAddress[] } | { failure: RuleState } {
  const target = rule.target as Extract<ForwardRule["target"], { kind: "domain" }>;
  const addresses: TargetAddress[] = [];
  const attached: { network: NetworkInfo; mac: string }[] = [];
  for (const nic of domain.interfaces) {
    const network = networkOfInterface(nic, view);
    if (!network) continue;
    if (target.network && network.name !== target.network) continue;
    attached.push({ network, mac: nic.mac });
    for (const subnet of network.subnets) {
      if (!wanted.has(subnet.family)) continue;
      for (const host of subnet.dhcpHosts) {
        const matches = host.mac ? host.mac === nic.mac : host.name === domain.name;
        if (matches && !addresses.some((a) => a.address === host.address)) {
          addresses.push({ family: subnet.family, address: host.address, network });
        }
      }
    }
  }
  if (addresses.length === 0) {
    // A NIC on a libvirt network that is down (net-destroy, or not started yet):
    // the forward waits for it, as it waits for a guest that is not running.
    const down = domain.interfaces.map((i) => i.network).find((n) => n !== undefined && !view.networks.has(n) && (!target.network || n === target.network));
    if (attached.length === 0 && down) {
      return { failure: { rule, state: "waiting", detail: `network "${down}" of domain "${domain.name}" is not active` } };
    }
    if (attached.length === 0) {
      if (target.network) {
        const nets = [...new Set(domain.interfaces.map((i) => networkOfInterface(i, view)?.name).filter(Boolean))];
        const near = closest(target.network, [...view.networks.keys()]);
        return failure(rule, "not-attached", `domain "${domain.name}" has no interface on network "${target.network}"${nets.length ? ` (it is on ${nets.join(", ")})` : ""}`, near && near !== target.network ? `did you mean ${domain.name}@${near}?` : `pick one of its networks: ${nets.map((n) => `${domain.name}@${n}`).join(", ") || "(none active)"}`);
      }
      return failure(rule, "not-attached", `domain "${domain.name}" has no interface on an active libvirt network`, "forward to an IP address instead, or attach the domain to a libvirt network");
    }
    const { network, mac } = attached[0] as { network: NetworkInfo; mac: string };
    const subnet = network.subnets.find((s) => s.family === 4 && wanted.has(4)) ?? network.subnets.find((s) => wanted.has(s.family));
    if (!subnet) {
      return failure(rule, "no-fixed-address", `network "${network.name}" has no ${[...wanted].map((f) => `IPv${f}`).join("/")} subnet, so "${domain.name}" has no address to forward to`, "give the network an <ip> with DHCP, or forward to an IP address");
    }
    const suggestion = firstFree(subnet);
    const hostXml = `<host mac='${mac}' name='${xmlAttr(domain.name)}' ip='${suggestion ?? "ADDRESS"}'/>`;
    const hostName = /^[A-Za-z0-9-]{1,63}$/.test(domain.name) ? ` ${domain.name}` : "";
    return failure(
      rule,
      "no-fixed-address",
      `domain "${domain.name}" has no fixed address on network "${network.name}" (no DHCP host entry for MAC ${mac})`,
      `declare one beside the forwards, for every host: host ${shellWord(network.name)} ${mac} ${suggestion ?? "ADDRESS"}${hostName}   (virt-hooks apply adds it to the network); or on this host only: virsh net-update ${shellWord(network.name)} add ip-dhcp-host ${xmlShellWord(hostXml)} --live --config   (then restart the guest's DHCP client, or the guest)`,
    );
  }
  for (const family of [4, 6] as const) {
    const same = addresses.filter((a) => a.family === family);
    if (same.length > 1) {
      const list = same.map((a) => `${a.network?.name}: ${a.address}`).join(", ");
      const nets = [...new Set(same.map((a) => a.network?.name))];
      return failure(
        rule,
        "ambiguous-target",
        `domain "${domain.name}" has several fixed IPv${family} addresses (${list})`,
        nets.length > 1 ? `say which network: ${nets.map((n) => `${domain.name}@${n}`).join(" or ")}` : `forward to one of the addresses directly: ${same.map((a) => a.address).join(" or ")}`,
      );
    }
  }
  return { addresses };
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

const xmlAttr = (s: string) => s.replace(/&/g, "&amp;").replace(/'/g, "&apos;").replace(/</g, "&lt;");

/**
 * The XML in double quotes, as virsh's own documentation writes it, whenever
 * nothing in it is special inside double quotes; otherwise fully quoted.
 */
function xmlShellWord(xml: string): string {
  return /^[^"$`\\!\n]*$/.test(xml) ? `"${xml}"` : shellWord(xml);
}

/** Quote a word for the admin's shell (for hints they copy and paste). */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
