// What a domain's XML says that virt-hooks acts on (its name and uuid, and per
// NIC the type, MAC, network, bridge, tap, MTU, VLAN tags and isolation: the
// fields of domain.ts's DomainInfo), read from the text without the XML
// parser, to answer one question before the parser is loaded: does a guest's
// status file (/run/libvirt/qemu/NAME.xml) already say everything the XML of
// its `reconnect` hook says?
//
// Not byte for byte: libvirt formats the hook's XML from the live definition
// on its own (two spaces less indentation than inside <domstatus>, the
// network's bridge on <source> rather than in <actual>, no status-only
// attributes such as websocketGenerated); measured on libvirt 11.3 (test/
// fixtures/libvirt-11.3/reconnect-status/). So both texts are reduced to those
// facts by this one reader and compared.
//
// Only libvirt's own formatting is recognised (single-quoted attributes; names
// without markup, entities or quotes). Anything else is "not recognised" and
// the hook takes its full path: this reader may only ever say "the same",
// never guess.

import { MAC, NAME, UUID } from "./plain-format.js";

const DEV = "[A-Za-z0-9_.:@-]{1,15}";

const DOMAIN_OPEN = /<domain[\s>]/g;
const ONE = (re: string) => new RegExp(re);
const NAME_EL = ONE(`<name>(${NAME})</name>`);
const UUID_EL = ONE(`<uuid>(${UUID})</uuid>`);
const NIC_OPEN = /<interface type='([a-z]{1,20})'[^>]*>/g;

/**
 * The <domain> element of a domain status file, as parseDomainStatusXml cuts
 * it out of <domstatus>.
 */
export function domainElement(statusText: string): string | undefined {
  const root = statusText.indexOf("<domstatus");
  if (root < 0) return undefined;
  DOMAIN_OPEN.lastIndex = root;
  const start = DOMAIN_OPEN.exec(statusText)?.index ?? -1;
  const end = statusText.lastIndexOf("</domain>");
  return start > root && end > start ? statusText.slice(start, end + "</domain>".length) : undefined;
}

/** The facts, in a canonical text, or undefined when the text is not libvirt's plain formatting. */
export function domainFactsOfText(xml: string): string | undefined {
  const devices = xml.indexOf("<devices>");
  if (!xml.trimStart().startsWith("<domain") || devices < 0) return undefined;
  const head = xml.slice(0, devices);
  const name = NAME_EL.exec(head)?.[1];
  if (name === undefined) return undefined;
  const uuid = UUID_EL.exec(head)?.[1] ?? "";
  const nics: string[] = [];
  NIC_OPEN.lastIndex = devices;
  for (let m = NIC_OPEN.exec(xml); m; m = NIC_OPEN.exec(xml)) {
    const end = xml.indexOf("</interface>", m.index);
    if (end < 0) return undefined;
    const nic = nicFacts(m[1] as string, xml.slice(m.index + m[0].length, end));
    if (nic === undefined) return undefined;
    nics.push(nic);
    NIC_OPEN.lastIndex = end;
  }
  // Every <interface> must have been read: one in another formatting is a doubt.
  if (nics.length !== (xml.slice(devices).match(/<interface[\s>/]/g) ?? []).length) return undefined;
  return JSON.stringify([name, uuid, nics]);
}

/** Whether the status file's <domain> says all that `xml` says (the same facts). */
export function statusHoldsDomain(statusText: string, xml: string): boolean {
  const element = domainElement(statusText);
  if (element === undefined) return false;
  if (element === xml.trim()) return true;
  const held = domainFactsOfText(element);
  return held !== undefined && held === domainFactsOfText(xml);
}

function nicFacts(type: string, body: string): string | undefined {
  const actualAt = body.indexOf("<actual ");
  const actualEnd = body.indexOf("</actual>");
  const actual = actualAt >= 0 && actualEnd > actualAt ? body.slice(actualAt, actualEnd) : "";
  const own = actual ? body.slice(0, actualAt) + body.slice(actualEnd) : body;
  const macs = [...own.matchAll(new RegExp(`<mac address='(${MAC})'`, "g"))];
  if (macs.length !== 1) return undefined;
  const source = /<source [^>]*>/.exec(own)?.[0] ?? "";
  const network = ONE(`\\snetwork='(${NAME})'`).exec(source)?.[1] ?? "";
  // As domain.ts reads it: <source bridge=…>, else <actual><source bridge=…>.
  const bridgeRe = ONE(`\\sbridge='(${DEV})'`);
  const bridge = bridgeRe.exec(source)?.[1] ?? bridgeRe.exec(/<source [^>]*>/.exec(actual)?.[0] ?? "")?.[1] ?? "";
  const tap = ONE(`<target dev='(${DEV})'`).exec(own)?.[1] ?? "";
  const mtu = /<mtu size='(\d{1,6})'/.exec(own)?.[1] ?? "";
  // VLAN and isolation: the NIC's own, else its network's (in <actual>), as domain.ts reads them.
  const vlanOf = (t: string) => [...t.matchAll(/<tag id='(\d{1,4})'/g)].map((x) => x[1]).join(",");
  const vlan = vlanOf(own) || vlanOf(actual);
  const isolatedOf = (t: string) => /<port isolated='(yes|no)'/.exec(t)?.[1] ?? "";
  const isolated = isolatedOf(own) || isolatedOf(actual);
  // A value in another formatting (double quotes, an entity) would be read as absent: a doubt.
  if (/\s(?:network|bridge|dev|address|size|id|isolated)="/.test(body) || body.includes("&")) return undefined;
  return [type, (macs[0] as RegExpMatchArray)[1], network, bridge, tap, mtu, vlan, isolated].join("|");
}
