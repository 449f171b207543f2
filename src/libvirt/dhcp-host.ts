// A network's DHCP host entries (fixed addresses) as `virt-hooks host add` and
// the `host` rule both check them: which <ip> an address belongs to, whether
// libvirt's dnsmasq could hand it to someone else, and the <host/> XML virsh
// takes. Pure; shared by the admin command (cli/host-cmd.ts) and the planner
// of declared entries (plan/fixed-addresses.ts), so both refuse the same things.
import { cidrContains, fromBig, toBig, type Family } from "../net/ip.js";
import type { DhcpHost, NetworkInfo, NetworkSubnet } from "./network.js";
import type { Lease } from "./leases.js";
import { escapeLine } from "../text/escape.js";

export const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const xmlAttr = (v: string) => v.replace(/&/g, "&amp;").replace(/'/g, "&apos;").replace(/</g, "&lt;").replace(/"/g, "&quot;");

/** `<host mac='…' name='…' ip='…'/>`, the form virsh net-update takes. */
export function hostXml(h: DhcpHost): string {
  return `<host${h.mac ? ` mac='${xmlAttr(h.mac)}'` : ""}${h.name ? ` name='${xmlAttr(h.name)}'` : ""} ip='${xmlAttr(h.address)}'/>`;
}

export const sameHost = (a: DhcpHost, b: DhcpHost) => a.address === b.address && a.mac === b.mac && a.name === b.name;

export const subnetText = (s: NetworkSubnet) => `${s.cidr.address}/${s.cidr.prefix}`;

export const inRange = (s: NetworkSubnet, address: string) =>
  s.dhcpRanges.find((r) => toBig(r.start, s.family) <= toBig(address, s.family) && toBig(address, s.family) <= toBig(r.end, s.family));

/**
 * The first address of the subnet a host entry could take: not the network's,
 * broadcast, gateway, given to an entry or leased; outside the DHCP ranges if
 * any is, else inside (a network whose range spans its whole subnet, as
 * libvirt's stock `default` does).
 */
export function firstFree(s: NetworkSubnet, alsoTaken: readonly string[] = [], leases: readonly { readonly ip: string }[] = []): string | undefined {
  const base = toBig(s.cidr.address, s.family);
  const size = 1n << BigInt((s.family === 4 ? 32 : 128) - s.cidr.prefix);
  let inside: string | undefined;
  for (let i = 1n; i < size - (s.family === 4 ? 1n : 0n) && i < 65536n; i++) {
    const a = fromBig(base + i, s.family);
    if (a === s.gateway || s.dhcpHosts.some((h) => h.address === a) || alsoTaken.includes(a) || leases.some((l) => l.ip === a)) continue;
    if (!inRange(s, a)) return a;
    inside ??= a;
  }
  return inside;
}

/** The entry libvirt would store: IPv4 matched by MAC, IPv6 by name (libvirt refuses a MAC in an IPv6 entry). */
export function entryOf(mac: string, address: string, family: Family, name?: string): DhcpHost {
  return { address, ...(family === 4 ? { mac } : {}), ...(name !== undefined ? { name } : {}) };
}

export interface EntryProblem {
  readonly message: string;
  /** What to do instead, without the "pick another address" verb (callers phrase it). */
  readonly hint: string;
}

export type Placement = { readonly subnet: NetworkSubnet; readonly parentIndex: number } | { readonly problem: EntryProblem };

/**
 * Where an entry for `address` goes in `net` (the <ip> it belongs to, as
 * virsh's --parent-index counts them), or why it cannot go there: outside
 * every subnet, the network/broadcast address, the host's own address, or
 * leased by dnsmasq to another MAC.
 */
export function placeEntry(net: NetworkInfo, address: string, family: Family, o: { readonly mac?: string; readonly leases?: readonly Lease[] } = {}): Placement {
  const parentIndex = net.subnets.findIndex((s) => s.family === family && cidrContains(s.cidr, address));
  const subnet = net.subnets[parentIndex];
  if (!subnet) {
    const own = net.subnets.filter((s) => s.family === family).map(subnetText);
    return {
      problem: {
        message: `${address} is not inside network "${net.name}"'s ${own.length ? `subnet${own.length > 1 ? "s" : ""} ${own.join(", ")}` : `IPv${family} addresses (it has none)`}`,
        hint: own.length ? `pick an address inside ${own.join(" or ")}` : `virsh net-dumpxml ${net.name} shows the network's addresses`,
      },
    };
  }
  const free = firstFree(subnet, [], o.leases);
  const pick = `pick another address${free ? ` (the first free one is ${free})` : ""}`;
  const broadcast = family === 4 && subnet.cidr.prefix < 31 && address === fromBig(toBig(subnet.cidr.address, 4) + (1n << BigInt(32 - subnet.cidr.prefix)) - 1n, 4);
  if (address === subnet.cidr.address || broadcast) return { problem: { message: `${address} is the network or broadcast address of ${subnetText(subnet)}`, hint: pick } };
  if (address === subnet.gateway) return { problem: { message: `${address} is the host's own address on network "${net.name}"`, hint: pick } };
  // Inside a DHCP range is fine: dnsmasq never leases an address a host entry
  // reserves to anyone else. Unless someone else holds a lease on it now.
  const range = inRange(subnet, address);
  const holder = range && o.mac !== undefined ? o.leases?.find((l) => l.ip === address && l.mac !== undefined && l.mac !== o.mac) : undefined;
  if (range && holder) {
    return { problem: { message: `${address} is inside the network's DHCP range ${range.start}-${range.end} and dnsmasq has leased it to ${holder.mac}${holder.hostname ? ` (${escapeLine(holder.hostname)})` : ""}`, hint: pick } };
  }
  return { subnet, parentIndex };
}

/** Entries of `subnet` that claim what `entry` claims (its MAC, its address or its name) without being it. */
export function clashesWith(subnet: NetworkSubnet, entry: DhcpHost): DhcpHost[] {
  return subnet.dhcpHosts.filter(
    (h) => !sameHost(h, entry) && ((entry.mac !== undefined && h.mac === entry.mac) || h.address === entry.address || (entry.name !== undefined && h.name === entry.name)),
  );
}
