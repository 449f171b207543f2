// A running domain as far as forwards and re-attach care: its name and its
// NICs. Reads both the hook's <domain> and the status file's <domstatus>.
import { isDeviceName, normalMac } from "../net/ip.js";
import { attr, child, children, checkName, parseXml, text, UNPRINTABLE, XmlError, type XmlNode } from "./xml.js";

export interface DomainInterface {
  /** Lower-case MAC: the stable identity of a NIC (taps are renamed, and absent on stop). */
  readonly mac: string;
  readonly type: string;
  /** <source network=...> for type='network'. */
  readonly network?: string;
  /** The bridge it is (or should be) plugged into. */
  readonly bridge?: string;
  /** The tap device, when the domain is running. */
  readonly tap?: string;
  readonly mtu?: number;
  readonly vlanTags?: readonly number[];
  readonly isolated?: boolean;
}

export interface DomainInfo {
  readonly name: string;
  readonly uuid?: string;
  readonly interfaces: readonly DomainInterface[];
}

export function parseDomainXml(xml: string): DomainInfo {
  const doc = parseXml(xml);
  const domain = child(doc, "domain") ?? child(child(doc, "domstatus"), "domain");
  if (!domain) throw new XmlError("no <domain> element");
  return domainFromNode(domain);
}

const DOMAIN_START = /<domain[\s>]/g;

/**
 * The qemu process a status file names (`<domstatus ... pid='N'>`), if it
 * names one. libvirt kills qemu before its `stopped` hook and removes the
 * status file only after `release`: in between, a file whose process is gone
 * describes a domain that is stopping, not one that runs.
 */
export function statusPid(xml: string): number | undefined {
  const m = /<domstatus\b[^>]*?\spid=['"](\d+)['"]/.exec(xml.slice(0, 4096));
  const pid = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * A status file (/run/libvirt/qemu/NAME.xml, <domstatus>): most of its bytes
 * are libvirt's private state (qemu's capability flags) around the <domain>
 * we read. Parsing only that element is about a third of the work, which
 * counts when a daemon restart makes every running guest's hook read every
 * guest's file. Anything unexpected about the text: the whole file, as before.
 */
export function parseDomainStatusXml(xml: string): DomainInfo {
  const root = xml.indexOf("<domstatus");
  DOMAIN_START.lastIndex = root < 0 ? 0 : root;
  const start = root < 0 ? -1 : DOMAIN_START.exec(xml)?.index ?? -1;
  const end = xml.lastIndexOf("</domain>");
  if (start > root && end > start) {
    try {
      return parseDomainXml(xml.slice(start, end + "</domain>".length));
    } catch {
      // Not what libvirt writes: let the whole document speak for itself.
    }
  }
  return parseDomainXml(xml);
}

export function domainFromNode(domain: XmlNode): DomainInfo {
  const name = checkName(text(domain, "name"), "domain");
  const interfaces: DomainInterface[] = [];
  for (const nic of children(child(domain, "devices"), "interface")) {
    // A NIC is known by its MAC; one we cannot read is one we cannot match.
    const mac = normalMac(attr(child(nic, "mac"), "address") ?? "");
    if (!mac) continue;
    const source = child(nic, "source");
    const actual = child(nic, "actual");
    // Device names reach iptables/nft/ip: one that is not a plain device name is dropped here.
    const bridge = device(attr(source, "bridge") ?? attr(child(actual, "source"), "bridge"));
    const network = attr(source, "network");
    const tap = device(attr(child(nic, "target"), "dev"));
    const mtu = Number(attr(child(nic, "mtu"), "size"));
    const tags = children(child(nic, "vlan") ?? child(actual, "vlan"), "tag")
      .map((t) => Number(attr(t, "id")))
      .filter((n) => Number.isInteger(n));
    const isolated = attr(child(nic, "port") ?? child(actual, "port"), "isolated") === "yes";
    interfaces.push({
      mac,
      type: attr(nic, "type") ?? "",
      ...(network && !hasControl(network) ? { network } : {}),
      ...(bridge ? { bridge } : {}),
      ...(tap ? { tap } : {}),
      ...(Number.isInteger(mtu) && mtu > 0 ? { mtu } : {}),
      ...(tags.length ? { vlanTags: tags } : {}),
      ...(isolated ? { isolated } : {}),
    });
  }
  const uuid = text(domain, "uuid");
  return { name, ...(uuid ? { uuid } : {}), interfaces };
}

const device = (name: string | undefined) => (name !== undefined && isDeviceName(name) ? name : undefined);
const hasControl = (s: string) => UNPRINTABLE.test(s);
