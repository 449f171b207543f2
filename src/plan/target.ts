// A rule's target, as forwards, egress and map statements name it: a domain
// resolves to its fixed address (the DHCP host entry of its NIC's network),
// never a lease. Pure; shared by resolve.ts and egress.ts.
import type { Family } from "../net/ip.js";
import type { DomainInfo } from "../libvirt/domain.js";
import type { NetworkInfo } from "../libvirt/network.js";
import type { HostView } from "../host/view.js";
import { error } from "../rules/diagnostic.js";
import type { EgressRule, ForwardRule, ForwardTarget, Rule } from "../rules/model.js";
import { closest } from "../rules/parse.js";
import type { RuleState } from "./intents.js";
import { firstFree } from "../libvirt/dhcp-host.js";

export interface Resolved<I> {
  intents: I[];
  state: RuleState;
}

export interface TargetAddress {
  family: Family;
  address: string;
  network?: NetworkInfo;
}

export function fail(rule: Rule, code: string, message: string, hint?: string): Resolved<never> {
  const diagnostic = error(code, rule.span, message, hint);
  return { intents: [], state: { rule, state: "failed", detail: message, diagnostic } };
}

export const failure = (...args: Parameters<typeof fail>) => ({ failure: fail(...args).state });

/** The network a NIC is plugged into: by name (type='network') or by its bridge. */
export function networkOfInterface(nic: DomainInfo["interfaces"][number], view: HostView): NetworkInfo | undefined {
  if (nic.network) return view.networks.get(nic.network);
  if (nic.bridge) return [...view.networks.values()].find((n) => n.bridge === nic.bridge);
  return undefined;
}

/**
 * A domain's fixed addresses: the DHCP <host> entries of its networks whose MAC
 * is one of its NICs (or, without a MAC, whose name is the domain's). Leases are
 * not used: a forward must not follow an address that can change under it.
 */
export function domainAddresses(
  rule: ForwardRule | EgressRule,
  domain: DomainInfo,
  view: HostView,
  wanted: Set<Family>,
): { addresses: TargetAddress[] } | { failure: RuleState } {
  const target = rule.target as Extract<ForwardTarget, { kind: "domain" }>;
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
