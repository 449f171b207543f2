// A libvirt network as far as our rules care: bridge, forward mode, subnets,
// DHCP host entries, and which firewall backend libvirt used for it. Reads the
// hook's <hookData>, the status file's <networkstatus> and a bare <network>.
import { canonicalAddress, familyOf, isDeviceName, makeCidr, normalMac, prefixFromNetmask, type Cidr, type Family } from "../net/ip.js";
import { attr, checkName, child, children, parseXml, text, UNPRINTABLE, XmlError, type XmlNode } from "./xml.js";

export interface DhcpHost {
  readonly mac?: string;
  readonly name?: string;
  readonly address: string;
}

export interface NetworkSubnet {
  readonly family: Family;
  /** The host's own address on the bridge. */
  readonly gateway: string;
  readonly cidr: Cidr;
  readonly dhcpRanges: readonly { readonly start: string; readonly end: string }[];
  readonly dhcpHosts: readonly DhcpHost[];
}

export type ForwardMode = "nat" | "route" | "open" | "bridge" | "isolated" | string;

export interface NetworkInfo {
  readonly name: string;
  readonly bridge?: string;
  readonly forwardMode: ForwardMode;
  readonly subnets: readonly NetworkSubnet[];
  /** From <firewall name='fwRemoval' backend=...> in the status file. */
  readonly firewallBackend?: string;
}

export interface NetworkPort {
  readonly owner?: string;
  readonly mac?: string;
  readonly bridge?: string;
}

export interface NetworkHookData {
  readonly network: NetworkInfo;
  readonly port?: NetworkPort;
}

/** <hookData><network/>[<networkport/>]</hookData> as the network hook gets it. */
export function parseNetworkHookXml(xml: string): NetworkHookData {
  const doc = parseXml(xml);
  const hook = child(doc, "hookData");
  const netNode = child(hook, "network") ?? child(doc, "network");
  if (!netNode) throw new XmlError("no <network> element");
  const portNode = child(hook, "networkport");
  return { network: networkFromNode(netNode), ...(portNode ? { port: portFromNode(portNode) } : {}) };
}

/** /run/libvirt/network/NAME.xml */
export function parseNetworkStatusXml(xml: string): NetworkInfo {
  const doc = parseXml(withEmptyFirewallRecord(xml));
  const status = child(doc, "networkstatus");
  const netNode = child(status, "network") ?? child(doc, "network");
  if (!netNode) throw new XmlError("no <network> element");
  const backend = children(status, "firewall").map((f) => attr(f, "backend")).find(Boolean);
  return { ...networkFromNode(netNode), ...(backend ? { firewallBackend: backend } : {}) };
}

export function portFromNode(node: XmlNode): NetworkPort {
  const ownerName = text(child(node, "owner"), "name");
  const owner = ownerName && !UNPRINTABLE.test(ownerName) ? ownerName : undefined;
  const mac = normalMac(attr(child(node, "mac"), "address") ?? "");
  const bridge = device(attr(child(node, "plug"), "bridge"));
  return { ...(owner ? { owner } : {}), ...(mac ? { mac } : {}), ...(bridge ? { bridge } : {}) };
}

function networkFromNode(net: XmlNode): NetworkInfo {
  const name = checkName(text(net, "name"), "network");
  const forward = child(net, "forward");
  const forwardMode = forward ? attr(forward, "mode") ?? "nat" : "isolated";
  // The bridge name reaches iptables (-i/-o), nft (iifname "...") and ip: plain device names only.
  const bridge = device(attr(child(net, "bridge"), "name"));
  const subnets: NetworkSubnet[] = [];
  for (const ip of children(net, "ip")) {
    const subnet = subnetFromNode(ip);
    if (subnet) subnets.push(subnet);
  }
  return { name, forwardMode, ...(bridge ? { bridge } : {}), subnets };
}

function subnetFromNode(ip: XmlNode): NetworkSubnet | undefined {
  const gateway = canonicalAddress(attr(ip, "address") ?? "");
  if (!gateway) return undefined;
  const family = familyOf(gateway) as Family;
  const netmask = attr(ip, "netmask");
  const prefixText = attr(ip, "prefix");
  const prefix = prefixText !== undefined ? Number(prefixText) : netmask ? prefixFromNetmask(netmask) : family === 4 ? 24 : 64;
  const cidr = prefix === undefined ? undefined : makeCidr(gateway, prefix);
  if (!cidr) return undefined;
  const dhcp = child(ip, "dhcp");
  const dhcpRanges = children(dhcp, "range").flatMap((r) => {
    const start = canonicalAddress(attr(r, "start") ?? "");
    const end = canonicalAddress(attr(r, "end") ?? "");
    return start && end ? [{ start, end }] : [];
  });
  const dhcpHosts = children(dhcp, "host").flatMap((h): DhcpHost[] => {
    const address = canonicalAddress(attr(h, "ip") ?? "");
    if (!address) return [];
    const macText = attr(h, "mac");
    const mac = macText === undefined ? undefined : normalMac(macText);
    // A host entry whose MAC we cannot read must not turn into a by-name entry.
    if (macText !== undefined && !mac) return [];
    const name = attr(h, "name");
    return [{ address, ...(mac ? { mac } : {}), ...(name ? { name } : {}) }];
  });
  return { family, gateway, cidr, dhcpRanges, dhcpHosts };
}

const device = (name: string | undefined) => (name !== undefined && isDeviceName(name) ? name : undefined);

/**
 * The status file with its <firewall> element emptied. libvirt 11 records
 * there every firewall command it ran (~220 <item>s, 9 KB of a 10 KB file), of
 * which we read nothing but the element's backend attribute. The parser skips
 * the element's content anyway (stopNodes in xml.ts), but its scan for the
 * closing tag reads every tag inside (1.9 ms of an event that acts, cold;
 * issue 15); here two indexOf calls find it. Anything unexpected (no closing
 * tag, a second <firewall>, a '<' in the opening tag) leaves the text as is.
 */
export function withEmptyFirewallRecord(xml: string): string {
  const after = xml.lastIndexOf("</network>");
  const start = xml.indexOf("<firewall", after < 0 ? 0 : after);
  if (start < 0 || !/[\s>]/.test(xml[start + "<firewall".length] ?? "")) return xml;
  const open = xml.indexOf(">", start);
  if (open < 0 || xml[open - 1] === "/" || xml.lastIndexOf("<", open) !== start) return xml;
  const close = xml.indexOf("</firewall>", open);
  if (close < 0 || xml.indexOf("<firewall", open) !== xml.indexOf("<firewall", close)) return xml;
  return xml.slice(0, open + 1) + xml.slice(close);
}
