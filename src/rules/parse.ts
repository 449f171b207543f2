// Statement parser: one line -> one rule or diagnostics. Pure; reading files is
// the caller's business. Grammar (version 1):
//   forward PROTO [HOSTADDR:]PORT[-PORT] to TARGET[:PORT[-PORT]] [from CIDR[,CIDR...]] [in IFACE]
//   masquerade NETWORK
//   accept FROM to TO [PROTO [PORT[-PORT]]]
//   set on-error warn|block
//   set reattach on|off
//   set backend auto|iptables|nftables
//   uplink NETWORK IFACE
//   route NETWORK DEST via GATEWAY          (DEST a CIDR, an address or "default")
//   host NETWORK MAC IP [NAME]              (a DHCP host entry: the guest's fixed address)
//   egress from ADDRESS for TARGET          (the guest's new outbound connections leave from ADDRESS)
//   map ADDRESS to TARGET                   (1:1 NAT: egress, and every port of ADDRESS to the guest)
import { familyOf, parseCidr, canonicalAddress, makeCidr, normalMac, type Cidr } from "../net/ip.js";
import { HOSTNAME } from "../libvirt/dhcp-host.js";
import { error, shown, type Diagnostic } from "./diagnostic.js";
import type { AcceptRule, EgressRule, Endpoint, ForwardRule, ForwardTarget, HostRule, MasqueradeRule, PortRange, Proto, RouteRule, UplinkRule } from "./model.js";
import type { Span } from "./source.js";
import { anyQuoted, firstUnquoted, lastUnquoted, slice, type Line, type Word } from "./tokenize.js";

export type Statement =
  | ForwardRule
  | MasqueradeRule
  | AcceptRule
  | UplinkRule
  | RouteRule
  | HostRule
  | EgressRule
  | { readonly kind: "set"; readonly span: Span; readonly key: SettingKey; readonly value: string };

export type ParseResult = { ok: true; statement: Statement } | { ok: false; diagnostics: Diagnostic[] };

// Thrown to unwind a statement's parse and caught in parseLine. Not an Error:
// capturing a stack trace per bad line made a file of junk cost seconds.
class ParseError {
  constructor(readonly diagnostic: Diagnostic) {}
}

const fail = (code: string, span: Span, message: string, hint?: string): never => {
  throw new ParseError(error(code, span, message, hint));
};

const KEYWORDS = ["forward", "masquerade", "accept", "set", "uplink", "route", "host", "egress", "map"] as const;

export function parseLine(line: Line): ParseResult {
  if (line.problem) {
    const span = { file: line.span.file, start: line.problem.offset, end: line.problem.offset + 1 };
    return { ok: false, diagnostics: [error("syntax", span, line.problem.message, 'close the quote: "name with spaces"')] };
  }
  try {
    return { ok: true, statement: parseStatement(line) };
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, diagnostics: [e.diagnostic] };
    throw e;
  }
}

function parseStatement(line: Line): Statement {
  const [head, ...rest] = line.words as [Word, ...Word[]];
  switch (anyQuoted(head) ? "" : head.text) {
    case "forward":
      return parseForward(line.span, head, rest);
    case "masquerade":
      return parseMasquerade(line.span, head, rest);
    case "accept":
      return parseAccept(line.span, head, rest);
    case "set":
      return parseSet(line.span, head, rest);
    case "uplink":
      return parseUplink(line.span, head, rest);
    case "route":
      return parseRoute(line.span, head, rest);
    case "host":
      return parseHost(line.span, head, rest);
    case "egress":
      return parseEgress(line.span, head, rest);
    case "map":
      return parseMap(line.span, head, rest);
    default: {
      const near = closest(head.text, KEYWORDS);
      return fail(
        "unknown-statement",
        head.span,
        `unknown statement ${shown(head.text)}`,
        near ? `did you mean "${near}"? Statements are: ${KEYWORDS.join(", ")}` : `statements are: ${KEYWORDS.join(", ")}`,
      );
    }
  }
}

/** A cursor over the words after the keyword, with "expected X" errors. */
class Words {
  private i = 0;
  constructor(private readonly words: readonly Word[], private readonly after: Span) {}
  peek(): Word | undefined {
    return this.words[this.i];
  }
  next(what: string, hint?: string): Word {
    const w = this.words[this.i];
    if (!w) {
      const prev = this.words[this.i - 1]?.span ?? this.after;
      fail("syntax", { file: prev.file, start: prev.end, end: prev.end + 1 }, `expected ${what} here`, hint);
    }
    this.i++;
    return w as Word;
  }
  keyword(kw: string, hint?: string): void {
    const w = this.next(`"${kw}"`, hint);
    if (w.text !== kw || anyQuoted(w)) fail("syntax", w.span, `expected "${kw}", found ${shown(w.text)}`, hint);
  }
  done(): boolean {
    return this.i >= this.words.length;
  }
}

const FORWARD_USAGE = "forward PROTO [HOSTADDR:]PORT[-PORT] to TARGET[:PORT[-PORT]] [from CIDR[,CIDR...]] [in IFACE]";

function parseForward(lineSpan: Span, head: Word, rest: Word[]): ForwardRule {
  const w = new Words(rest, head.span);
  const protos = parseProtos(w.next("a protocol (tcp, udp or tcp,udp)", FORWARD_USAGE));
  const listen = w.next("the host port, e.g. 8080 or 203.0.113.5:8080", FORWARD_USAGE);
  const { address: hostAddress, ports: hostPorts } = parseListen(listen);
  w.keyword("to", FORWARD_USAGE);
  const targetWord = w.next("the target: a domain name or an address, e.g. devstack:22", FORWARD_USAGE);
  const { target, ports: targetPorts } = parseTarget(targetWord);
  let from: Cidr[] | undefined;
  let inInterface: string | undefined;
  while (!w.done()) {
    const opt = w.next("an option");
    if (opt.text === "from" && !anyQuoted(opt)) {
      if (from) fail("syntax", opt.span, `"from" given twice`, "list all sources once, separated by commas: from 10.0.0.0/8,192.0.2.7");
      from = parseCidrList(w.next("a source address or CIDR list, e.g. 10.0.0.0/8,192.0.2.7"));
    } else if (opt.text === "in" && !anyQuoted(opt)) {
      if (inInterface !== undefined) fail("syntax", opt.span, `"in" given twice`, "a forward takes one ingress interface");
      inInterface = parseInterface(w.next("an interface name, e.g. eth0"));
    } else {
      fail("syntax", opt.span, `unexpected ${shown(opt.text)}`, `options after the target are "from CIDR[,CIDR...]" and "in IFACE"`);
    }
  }
  if (targetPorts && targetPorts.last - targetPorts.first !== 0 && targetPorts.last - targetPorts.first !== hostPorts.last - hostPorts.first) {
    fail(
      "port-count",
      targetWord.span,
      `the target has ${targetPorts.last - targetPorts.first + 1} ports but the host side has ${hostPorts.last - hostPorts.first + 1}`,
      "give the target one port, or exactly as many ports as the host side (they map 1:1)",
    );
  }
  if (hostAddress && target.kind === "address" && hostAddress.family !== target.family) {
    fail("family-mismatch", targetWord.span, `the host address is IPv${hostAddress.family} but the target is IPv${target.family}`, "forward IPv4 to IPv4 and IPv6 to IPv6");
  }
  const fromFamilies = new Set((from ?? []).map((c) => c.family));
  const family = hostAddress?.family ?? (target.kind === "address" ? target.family : undefined);
  if (family && from && !fromFamilies.has(family)) {
    fail("family-mismatch", rest[rest.length - 1]?.span ?? lineSpan, `no source in "from" is IPv${family}, so this forward would never match`, `add an IPv${family} source, or remove "from"`);
  }
  return {
    kind: "forward",
    span: lineSpan,
    protos,
    ...(hostAddress ? { hostAddress } : {}),
    hostPorts,
    target,
    ...(targetPorts ? { targetPorts } : {}),
    from: from ?? [],
    ...(inInterface !== undefined ? { inInterface } : {}),
  };
}

function parseProtos(word: Word): Proto[] {
  const parts = word.text.split(",");
  const protos: Proto[] = [];
  for (const p of parts) {
    if (p !== "tcp" && p !== "udp") {
      const near = closest(p, ["tcp", "udp"]);
      fail("unknown-protocol", word.span, `unknown protocol ${shown(p)}`, `use tcp, udp or tcp,udp${near ? ` (did you mean "${near}"?)` : ""}`);
    }
    if (protos.includes(p as Proto)) fail("unknown-protocol", word.span, `protocol ${shown(p)} given twice`, "use tcp, udp or tcp,udp");
    protos.push(p as Proto);
  }
  return protos;
}

function parsePortRange(word: Word): PortRange {
  const m = /^(\d+)(?:-(\d+))?$/.exec(word.text);
  if (!m || anyQuoted(word)) {
    return fail("bad-port", word.span, `${shown(word.text)} is not a port or port range`, "write a port (1-65535) or a range such as 8000-8010");
  }
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  for (const p of [first, last]) {
    if (p < 1 || p > 65535) fail("bad-port", word.span, `port ${p} is out of range`, "ports are 1 to 65535");
  }
  if (last < first) fail("bad-port", word.span, `the range ${first}-${last} is reversed`, `write it low to high: ${last}-${first}`);
  return { first, last };
}

function parseAddress(word: Word, what: string): { address: string; family: 4 | 6 } {
  const text = word.text;
  const family = familyOf(text);
  if (!family) return fail("bad-address", word.span, `${shown(text)} is not an IP address`, `write ${what} as 192.0.2.10 or [2001:db8::10]`);
  return { address: canonicalAddress(text) as string, family };
}

/** `[HOSTADDR:]PORT[-PORT]`; IPv6 host addresses in brackets. */
function parseListen(word: Word): { address?: { address: string; family: 4 | 6 }; ports: PortRange } {
  if (word.text.startsWith("[")) {
    const close = word.text.indexOf("]");
    if (close < 0) fail("bad-address", word.span, "missing ] after the IPv6 address", "write [2001:db8::1]:8080");
    const address = parseAddress(slice(word, 1, close), "the host address");
    if (address.family !== 6) fail("bad-address", word.span, "brackets are only for IPv6 addresses", "write an IPv4 address without brackets: 192.0.2.1:8080");
    if (word.text[close + 1] !== ":") fail("syntax", word.span, "expected :PORT after the IPv6 address", "write [2001:db8::1]:8080");
    return { address, ports: parsePortRange(slice(word, close + 2)) };
  }
  const colon = word.text.lastIndexOf(":");
  if (colon < 0) return { ports: parsePortRange(word) };
  const addrWord = slice(word, 0, colon);
  if (familyOf(addrWord.text) === 6) fail("bad-address", word.span, "an IPv6 host address needs brackets", `write [${addrWord.text}]:${plain(word.text.slice(colon + 1), "PORT")}`);
  return { address: parseAddress(addrWord, "the host address"), ports: parsePortRange(slice(word, colon + 1)) };
}

/** `ADDRESS[:PORTS]`, `[V6][:PORTS]` or `NAME[@NETWORK][:PORTS]`; quoted names are always names. */
function parseTarget(word: Word): { target: ForwardTarget; ports?: PortRange } {
  if (word.text.startsWith("[") && !word.quoted[0]) {
    const close = word.text.indexOf("]");
    if (close < 0) fail("bad-address", word.span, "missing ] after the IPv6 address", "write [2001:db8::10]:22");
    const address = parseAddress(slice(word, 1, close), "the target");
    if (close + 1 === word.text.length) return { target: { kind: "address", ...address } };
    if (word.text[close + 1] !== ":") fail("syntax", word.span, "expected :PORT after the IPv6 address", "write [2001:db8::10]:22");
    return { target: { kind: "address", ...address }, ports: parsePortRange(slice(word, close + 2)) };
  }
  const colon = lastUnquoted(word, ":");
  const nameAndNet = colon < 0 ? word : slice(word, 0, colon);
  const ports = colon < 0 ? undefined : parsePortRange(slice(word, colon + 1));
  if (!anyQuoted(nameAndNet)) {
    if (familyOf(nameAndNet.text) === 4) return { target: { kind: "address", address: canonicalAddress(nameAndNet.text) as string, family: 4 }, ...(ports ? { ports } : {}) };
    if (familyOf(nameAndNet.text) === 6 || nameAndNet.text.includes(":")) {
      fail("bad-address", word.span, "an IPv6 target needs brackets", `write [${plain(nameAndNet.text, "ADDRESS")}]${ports ? ":PORT" : ""}`);
    }
    if (/^\d+(\.\d+){1,3}$/.test(nameAndNet.text)) {
      fail("bad-address", nameAndNet.span, `${shown(nameAndNet.text)} is not a valid IPv4 address`, `fix the address, or quote it if it is a domain's name: "${nameAndNet.text}"`);
    }
  }
  const at = firstUnquoted(nameAndNet, "@");
  const name = at < 0 ? nameAndNet : slice(nameAndNet, 0, at);
  const network = at < 0 ? undefined : slice(nameAndNet, at + 1);
  checkName(name, "domain");
  if (network) checkName(network, "network");
  return {
    target: { kind: "domain", name: name.text, ...(network ? { network: network.text } : {}), span: nameAndNet.span },
    ...(ports ? { ports } : {}),
  };
}

/** C0 and C1 controls, DEL, line separators, bidi embeddings, overrides and isolates. */
export const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function checkName(word: Word, what: string): void {
  if (word.text.length === 0) fail("syntax", word.span, `empty ${what} name`, `write the ${what}'s name as libvirt shows it`);
  if (word.text.includes("/")) fail("bad-name", word.span, `a libvirt ${what} name cannot contain "/"`, `check the name with: virsh ${what === "domain" ? "list --all" : "net-list --all"}`);
  // Control characters could smuggle line breaks into a firewall transaction
  // or a log line; bidi overrides reorder what the admin reads (Trojan Source).
  if (UNPRINTABLE.test(word.text)) fail("bad-name", word.span, `the ${what} name contains a control character`, "remove it");
}

/** The statement's NETWORK word, checked as a libvirt name. */
function nextNetwork(w: Words, usage: string): Word {
  const net = w.next("a network name", usage);
  checkName(net, "network");
  return net;
}

function parseCidrList(word: Word): Cidr[] {
  const cidrs: Cidr[] = [];
  let from = 0;
  for (const part of word.text.split(",")) {
    const piece = slice(word, from, from + part.length);
    from += part.length + 1;
    const text = part.startsWith("[") && part.includes("]") ? part.replace(/^\[([^\]]*)\]/, "$1") : part;
    const cidr = parseCidr(text);
    if (!cidr) fail("bad-address", piece.span, `${shown(part)} is not an address or CIDR`, "write e.g. 10.0.0.0/8 or 2001:db8::/32, separated by commas without spaces");
    cidrs.push(cidr as Cidr);
  }
  return cidrs;
}

function parseInterface(word: Word): string {
  // Linux interface names: at most 15 bytes, no "/", no whitespace; iptables's "+" wildcard allowed.
  if (!/^[A-Za-z0-9_.:@+-]{1,15}$/.test(word.text) || word.text === "." || word.text === "..") {
    fail("bad-interface", word.span, `${shown(word.text)} is not a valid interface name`, "interface names are at most 15 characters, without spaces or /; see: ip -br link");
  }
  return word.text;
}

function parseMasquerade(lineSpan: Span, head: Word, rest: Word[]): MasqueradeRule {
  const w = new Words(rest, head.span);
  const net = w.next("a network name", "masquerade NETWORK   (e.g. masquerade route)");
  checkName(net, "network");
  const extra = w.peek();
  if (extra) fail("syntax", extra.span, `unexpected ${shown(extra.text)}`, "masquerade takes one network name; write one statement per network");
  return { kind: "masquerade", span: lineSpan, network: net.text };
}

const UPLINK_USAGE = "uplink NETWORK IFACE   (e.g. uplink route eth0)";

function parseUplink(lineSpan: Span, head: Word, rest: Word[]): UplinkRule {
  const w = new Words(rest, head.span);
  const net = nextNetwork(w, UPLINK_USAGE);
  const ifaceWord = w.next("the host interface to enslave into the network's bridge, e.g. eth0", UPLINK_USAGE);
  const iface = parseInterface(ifaceWord);
  if (iface.includes("+")) fail("bad-interface", ifaceWord.span, `an uplink is one interface, not a pattern (${shown(iface)})`, "name the interface exactly; see: ip -br link");
  if (iface === "lo") fail("bad-interface", ifaceWord.span, "the loopback interface cannot be a bridge port", "name the host's network interface; see: ip -br link");
  const extra = w.peek();
  if (extra) fail("syntax", extra.span, `unexpected ${shown(extra.text)}`, "uplink takes one network and one interface; write one statement per interface");
  return { kind: "uplink", span: lineSpan, network: net.text, iface, ifaceSpan: ifaceWord.span };
}

const ROUTE_USAGE = "route NETWORK DEST via GATEWAY   (DEST a CIDR or default, e.g. route route default via 192.168.1.1)";

/** An address or CIDR, optionally in brackets (IPv6 as in forward rules). */
function bareAddress(word: Word): string {
  return word.text.startsWith("[") && word.text.endsWith("]") ? word.text.slice(1, -1) : word.text;
}

function parseRoute(lineSpan: Span, head: Word, rest: Word[]): RouteRule {
  const w = new Words(rest, head.span);
  const net = nextNetwork(w, ROUTE_USAGE);
  const destWord = w.next("the destination: a CIDR such as 10.0.0.0/8, or default", ROUTE_USAGE);
  let dest: Cidr | undefined;
  const isDefault = destWord.text === "default" && !anyQuoted(destWord);
  if (!isDefault) {
    dest = anyQuoted(destWord) ? undefined : parseCidr(bareAddress(destWord));
    if (!dest) fail("bad-address", destWord.span, `${shown(destWord.text)} is not a CIDR or "default"`, "write e.g. 10.0.0.0/8, 2001:db8::/32 or default");
  }
  w.keyword("via", ROUTE_USAGE);
  const gwWord = w.next("the gateway's address, e.g. 192.168.1.1", ROUTE_USAGE);
  const gwText = bareAddress(gwWord);
  const family = anyQuoted(gwWord) ? undefined : familyOf(gwText);
  if (!family) return fail("bad-address", gwWord.span, `${shown(gwWord.text)} is not an IP address`, "the gateway is one address, e.g. 192.168.1.1 or fe80::1");
  const extra = w.peek();
  if (extra) fail("syntax", extra.span, `unexpected ${shown(extra.text)}`, ROUTE_USAGE);
  if (dest && dest.family !== family) {
    fail("family-mismatch", gwWord.span, `the destination is IPv${dest.family} but the gateway is IPv${family}`, "route IPv4 via an IPv4 gateway and IPv6 via an IPv6 one (two statements for both)");
  }
  const cidr = dest ?? (makeCidr(family === 4 ? "0.0.0.0" : "::", 0) as Cidr);
  return { kind: "route", span: lineSpan, network: net.text, dest: cidr, isDefault: isDefault || cidr.prefix === 0, gateway: canonicalAddress(gwText) as string, family };
}

const HOST_USAGE = "host NETWORK MAC IP [NAME]   (e.g. host default 52:54:00:12:34:56 192.168.122.20 web)";

/**
 * `host NETWORK MAC IP [NAME]`: what `virt-hooks host add` takes, as a rule.
 * Only what the words alone can tell is checked here; the subnet, the DHCP
 * ranges and entries already in the network are checked against the network
 * itself where it is converged (plan/fixed-addresses.ts).
 */
function parseHost(lineSpan: Span, head: Word, rest: Word[]): HostRule {
  const w = new Words(rest, head.span);
  const net = nextNetwork(w, HOST_USAGE);
  const macWord = w.next("the guest NIC's MAC address, e.g. 52:54:00:12:34:56", HOST_USAGE);
  const mac = anyQuoted(macWord) ? undefined : normalMac(macWord.text);
  if (!mac) return fail("bad-address", macWord.span, `${shown(macWord.text)} is not a MAC address`, "write it as 52:54:00:12:34:56; a guest's: virsh domiflist DOMAIN");
  if (parseInt(mac.slice(0, 2), 16) & 1) fail("bad-address", macWord.span, `${mac} is a multicast MAC address, which no NIC has`, "use the guest NIC's address: virsh domiflist DOMAIN");
  const ipWord = w.next("the fixed address, e.g. 192.168.122.20", HOST_USAGE);
  const ipText = bareAddress(ipWord);
  const family = anyQuoted(ipWord) ? undefined : familyOf(ipText);
  if (!family) return fail("bad-address", ipWord.span, `${shown(ipWord.text)} is not an IP address`, "write e.g. 192.168.122.20 or [fd00::20]");
  const nameWord = w.peek() ? w.next("a host name") : undefined;
  if (nameWord && !HOSTNAME.test(nameWord.text)) fail("bad-name", nameWord.span, `${shown(nameWord.text)} is not a host name`, "letters, digits and hyphens (dots between labels), e.g. web-1");
  const extra = w.peek();
  if (extra) fail("syntax", extra.span, `unexpected ${shown(extra.text)}`, HOST_USAGE);
  const address = canonicalAddress(ipText) as string;
  if (family === 6 && !nameWord) {
    fail("syntax", ipWord.span, "an IPv6 host entry needs a NAME: libvirt's dnsmasq matches IPv6 clients by name (or DUID), not MAC", `host ${plain(net.text, "NETWORK")} ${mac} [${address}] NAME`);
  }
  return { kind: "host", span: lineSpan, network: net.text, mac, address, family, ...(nameWord ? { name: nameWord.text } : {}) };
}

const EGRESS_USAGE = "egress from ADDRESS for TARGET   (e.g. egress from 203.0.113.5 for mail; TARGET a domain, NAME@NETWORK or an address)";
const MAP_USAGE = "map ADDRESS to TARGET   (e.g. map 203.0.113.6 to mail: every port of 203.0.113.6 to mail, and mail leaves from it)";

/** The host address of egress/map: one address, IPv6 with or without brackets (no port can follow). */
function egressAddress(word: Word, usage: string): { address: string; family: 4 | 6 } {
  const text = bareAddress(word);
  const family = anyQuoted(word) ? undefined : familyOf(text);
  if (!family) {
    if (!anyQuoted(word) && /^[\d.]+\/\d+$|^[0-9a-f:]*:[0-9a-f:]*\/\d+$/i.test(text)) {
      return fail("bad-address", word.span, `${shown(word.text)} is a subnet: a guest leaves from one address`, usage);
    }
    if (!anyQuoted(word) && /:\d+$/.test(text) && familyOf(text.replace(/:\d+$/, "")) === 4) {
      return fail("bad-address", word.span, `${shown(word.text)} has a port: egress and map take every port of the address`, `${usage}; for one port use forward`);
    }
    return fail("bad-address", word.span, `${shown(word.text)} is not an IP address`, usage);
  }
  const address = canonicalAddress(text) as string;
  const special = family === 4 ? /^(0\.|127\.|22[4-9]\.|2[3-5]\d\.)/.test(address) : /^(::1?$|ff)/.test(address);
  if (special) fail("bad-address", word.span, `${address} is a ${family === 4 && address.startsWith("127.") || address === "::1" ? "loopback" : "multicast, broadcast or unspecified"} address: no packet can leave from it`, "use one of the host's public (or uplink) addresses; ip -br addr shows them");
  return { address, family };
}

/** TARGET of egress/map: what a forward's target may be, without ports. */
function egressTarget(word: Word, usage: string, address: { family: 4 | 6 }): EgressRule["target"] {
  const { target, ports } = parseTarget(word);
  if (ports) fail("syntax", word.span, "egress and map take the guest, not a port", `${usage}; for one port use forward`);
  if (target.kind === "address" && target.family !== address.family) {
    fail("family-mismatch", word.span, `the host address is IPv${address.family} but the target is IPv${target.family}`, "a guest leaves IPv4 from an IPv4 address and IPv6 from an IPv6 one");
  }
  return target;
}

function parseEgress(lineSpan: Span, head: Word, rest: Word[]): EgressRule {
  const w = new Words(rest, head.span);
  w.keyword("from", EGRESS_USAGE);
  const addrWord = w.next("the host address the guest leaves from, e.g. 203.0.113.5", EGRESS_USAGE);
  const address = egressAddress(addrWord, EGRESS_USAGE);
  w.keyword("for", EGRESS_USAGE);
  const target = egressTarget(w.next("the guest: a domain name, NAME@NETWORK or an address", EGRESS_USAGE), EGRESS_USAGE, address);
  const extra = w.peek();
  if (extra) fail("syntax", extra.span, `unexpected ${shown(extra.text)}`, `${EGRESS_USAGE}; one guest per statement`);
  return { kind: "egress", span: lineSpan, address, addressSpan: addrWord.span, target };
}

function parseMap(lineSpan: Span, head: Word, rest: Word[]): EgressRule {
  const w = new Words(rest, head.span);
  const addrWord = w.next("the host address to map, e.g. 203.0.113.6", MAP_USAGE);
  const address = egressAddress(addrWord, MAP_USAGE);
  w.keyword("to", MAP_USAGE);
  const target = egressTarget(w.next("the guest: a domain name, NAME@NETWORK or an address", MAP_USAGE), MAP_USAGE, address);
  const extra = w.peek();
  if (extra) fail("syntax", extra.span, `unexpected ${shown(extra.text)}`, `${MAP_USAGE}; an address maps to one guest`);
  return { kind: "map", span: lineSpan, address, addressSpan: addrWord.span, target };
}

const ACCEPT_USAGE = "accept FROM to TO [PROTO [PORT[-PORT]]], FROM and TO each a network name or a CIDR";

function parseEndpoint(word: Word): Endpoint {
  if (!anyQuoted(word)) {
    const cidr = parseCidr(word.text);
    if (cidr) return { kind: "cidr", cidr };
    if (/^[\d.:/]+$/.test(word.text)) fail("bad-address", word.span, `${shown(word.text)} is not a valid address or CIDR`, "write e.g. 192.168.100.0/24");
  }
  checkName(word, "network");
  return { kind: "network", name: word.text, span: word.span };
}

function parseAccept(lineSpan: Span, head: Word, rest: Word[]): AcceptRule {
  const w = new Words(rest, head.span);
  const from = parseEndpoint(w.next("where connections come from: a network name or a CIDR", ACCEPT_USAGE));
  w.keyword("to", ACCEPT_USAGE);
  const to = parseEndpoint(w.next("where they go: a network name or a CIDR", ACCEPT_USAGE));
  let protos: Proto[] = [];
  let ports: PortRange | undefined;
  if (!w.done()) protos = parseProtos(w.next("a protocol"));
  if (!w.done()) ports = parsePortRange(w.next("a port"));
  const extra = w.peek();
  if (extra) fail("syntax", extra.span, `unexpected ${shown(extra.text)}`, ACCEPT_USAGE);
  if (from.kind === "cidr" && to.kind === "cidr" && from.cidr.family !== to.cidr.family) {
    fail("family-mismatch", lineSpan, "FROM and TO are of different IP families", "accept IPv4 to IPv4 and IPv6 to IPv6");
  }
  return { kind: "accept", span: lineSpan, from, to, protos, ...(ports ? { ports } : {}) };
}

/** Each setting and the values it takes; the first value is the default. */
export const SETTINGS = {
  "on-error": ["warn", "block"],
  reattach: ["on", "off"],
  backend: ["auto", "iptables", "nftables"],
} as const;

export type SettingKey = keyof typeof SETTINGS;

function parseSet(lineSpan: Span, head: Word, rest: Word[]): Statement {
  const usage = Object.entries(SETTINGS).map(([k, v]) => `set ${k} ${v.join("|")}`).join("   or   ");
  const w = new Words(rest, head.span);
  const key = w.next("a setting name", usage);
  if (!(key.text in SETTINGS)) {
    const near = closest(key.text, Object.keys(SETTINGS));
    fail("unknown-setting", key.span, `unknown setting ${shown(key.text)}`, `${near ? `did you mean "${near}"? ` : ""}settings are: ${usage}`);
  }
  const allowed = SETTINGS[key.text as SettingKey] as readonly string[];
  const value = w.next("a value", `set ${key.text} ${allowed.join("|")}`);
  if (!allowed.includes(value.text)) {
    const hint =
      key.text === "on-error"
        ? "set on-error warn   (log and carry on) or   set on-error block   (refuse to start a guest whose rules fail)"
        : `set ${key.text} ${allowed.join("|")}`;
    fail("bad-setting", value.span, `${key.text} is ${allowed.map((a) => `"${a}"`).join(" or ")}, not ${shown(value.text)}`, hint);
  }
  const extra = w.peek();
  if (extra) fail("syntax", extra.span, `unexpected ${shown(extra.text)}`, `set ${key.text} ${allowed.join("|")}`);
  return { kind: "set", span: lineSpan, key: key.text as SettingKey, value: value.text };
}

/** Rule text echoed in a hint meant to be copied: only when it is plain, else a placeholder. */
const plain = (text: string, placeholder: string) => (/^[A-Za-z0-9.:%-]{1,64}$/.test(text) ? text : placeholder);

/** The closest candidate within edit distance 2 (for "did you mean"). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) { best = c; bestDistance = d; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] as number;
}
