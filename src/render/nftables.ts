// Plan -> our own nftables table for one family, written so that the packet
// cost of forwards does not grow with their number: unrestricted forwards are
// elements of DNAT maps (one lookup), their accepts and hairpins elements of
// sets. Forwards limited by `from`/`in` are rules (they need those matches).
//
// libvirt's own table rejects new inbound connections to NAT guests and an
// accept elsewhere cannot override that (docs/libvirt-facts.md), so our
// forward chain marks packets it wants through, and ONE rule at the top of
// libvirt's `forward` chain accepts marked packets (see nft-transaction.ts).
import { formatCidr, type Family } from "../net/ip.js";
import type { AcceptIntent, EgressIntent, ForwardIntent, MasqueradeIntent, Plan } from "../plan/intents.js";
import type { PortRange, Proto } from "../rules/model.js";
import { positionOf, type Span } from "../rules/source.js";
import { basename } from "node:path";

export const NFT_TABLE = "virt_hooks";
/** The packet-mark bit that tells libvirt's forward chain "virt-hooks accepts this". */
export const NFT_ACCEPT_MARK = 0x10000000;
export const NFT_LIBVIRT_TABLE = "libvirt_network";
export const NFT_LIBVIRT_RULE_COMMENT = "virt-hooks";

/** Above this many ports, a forward's 1:1 map is not expanded into elements. */
export const MAX_EXPANDED_PORTS = 4096;

export interface NftTable {
  readonly family: Family;
  /** "ip" or "ip6". */
  readonly nftFamily: "ip" | "ip6";
  /** The table's full definition, for `table ... { }` in the transaction. */
  readonly body: string;
  /** Whether it holds anything at all. */
  readonly empty: boolean;
  /** One line per element/rule, for reporting what changed. */
  readonly lines: readonly string[];
  /**
   * Hash sets and maps (no interval flag: their elements list as written):
   * set name -> element key (a map element's part before " : ") -> FILE:LINE
   * of the first rule that put it there. status compares them with the kernel.
   */
  readonly keyedElements: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

const mark = `meta mark set meta mark | 0x${NFT_ACCEPT_MARK.toString(16)}`;

function comment(span: Span): string {
  const text = `virt-hooks ${basename(span.file.path)}:${positionOf(span.file, span.start).line}`.replace(/[^A-Za-z0-9 _.:/@+=,-]/g, "_");
  return `comment "${text.slice(-120)}"`;
}

const nftRange = (r: PortRange) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`);

export function renderNft(plan: Plan, family: Family): NftTable {
  const nftFamily = family === 4 ? "ip" : "ip6";
  const addrType = family === 4 ? "ipv4_addr" : "ipv6_addr";
  const addr = family === 4 ? "ip" : "ip6";
  const loopback = family === 4 ? "127.0.0.0/8" : "::1";
  const dnatByAddress: string[] = [];
  const dnatLocal: string[] = [];
  // Split by shape: single ports go into a hash set (one lookup whatever its
  // size), ranges need an interval set, whose lookup grows with its elements
  // (bench/: 1,000 forwards in one interval set cost a quarter of the
  // connection rate). Both are looked up for every forwarded packet.
  const acceptPorts = new Set<string>();
  const acceptRanges = new Set<string>();
  const origins = new Map<string, Map<string, string>>();
  const originOf = (set: string, key: string, span: Span) => {
    const m = origins.get(set) ?? new Map<string, string>();
    origins.set(set, m);
    if (!m.has(key)) m.set(key, `${basename(span.file.path)}:${positionOf(span.file, span.start).line}`);
  };
  const hairpin = new Set<string>();
  const pre: string[] = [];
  const out: string[] = [];
  const post: string[] = [];
  const fwd: string[] = [];

  const forwards = plan.forwards.filter((f) => f.family === family);
  for (const f of forwards) {
    const tgt = (p: number) => `${f.targetAddress} . ${targetPort(f, p)}`;
    const targetRange = targetRangeOf(f);
    for (const proto of f.protos) {
      const acceptKey = `${f.targetAddress} . ${proto} . ${nftRange(targetRange)}`;
      if (targetRange.first === targetRange.last) {
        acceptPorts.add(acceptKey);
        originOf("accept_dnat", acceptKey, f.rule.span);
      } else acceptRanges.add(acceptKey);
      for (const s of f.hairpinSources) hairpin.add(`${formatCidr(s)} . ${f.targetAddress}`);
      const restricted = f.from.length > 0 || f.inInterface !== undefined || portCount(f.hostPorts) > MAX_EXPANDED_PORTS;
      if (!restricted) {
        for (let p = f.hostPorts.first; p <= f.hostPorts.last; p++) {
          if (f.hostAddress) {
            dnatByAddress.push(`${f.hostAddress} . ${proto} . ${p} : ${tgt(p)}`);
            originOf("dnat_addr", `${f.hostAddress} . ${proto} . ${p}`, f.rule.span);
          } else {
            dnatLocal.push(`${proto} . ${p} : ${tgt(p)}`);
            originOf("dnat_local", `${proto} . ${p}`, f.rule.span);
          }
        }
        continue;
      }
      const src = f.from.length ? `${addr} saddr { ${f.from.map(formatCidr).join(", ")} } ` : "";
      const iif = f.inInterface !== undefined ? `iifname "${f.inInterface}" ` : "";
      const dst = f.hostAddress ? `${addr} daddr ${f.hostAddress} ` : "fib daddr type local ";
      const match = `${proto} dport ${nftRange(f.hostPorts)}`;
      const action = dnatAction(f, proto);
      pre.push(`${src}${iif}${dst}${match} counter ${action} ${comment(f.rule.span)}`);
      if (f.inInterface === undefined) {
        const odst = f.hostAddress ? `${addr} daddr ${f.hostAddress} ` : `${addr} daddr != ${loopback} fib daddr type local `;
        out.push(`${src}${odst}${match} counter ${action} ${comment(f.rule.span)}`);
      }
    }
  }
  // After the hairpins (unshifted below) and before `masquerade`, as on iptables.
  const egress = (plan.egress ?? []).filter((x) => x.family === family);
  for (const e of egress) renderEgress(e, addr, post, fwd);
  for (const m of plan.masquerades.filter((x) => x.subnet.family === family)) renderMasquerade(m, addr, post, fwd);
  for (const a of plan.accepts.filter((x) => x.from.family === family)) renderAccept(a, addr, post, fwd);

  const lines: string[] = [];
  const sets: string[] = [];
  const declare = (kind: "map" | "set", name: string, type: string, elements: Iterable<string>, flags?: string) => {
    const list = [...new Set(elements)];
    if (list.length === 0) return false;
    lines.push(...list.map((e) => `${name} ${e}`));
    sets.push(`\t${kind} ${name} {\n\t\ttype ${type}\n${flags ? `\t\tflags ${flags}\n` : ""}\t\telements = { ${list.join(",\n\t\t\t")} }\n\t}`);
    return true;
  };
  const hasAddrMap = declare("map", "dnat_addr", `${addrType} . inet_proto . inet_service : ${addrType} . inet_service`, dnatByAddress);
  const hasLocalMap = declare("map", "dnat_local", `inet_proto . inet_service : ${addrType} . inet_service`, dnatLocal);
  const acceptSets = [
    declare("set", "accept_dnat", `${addrType} . inet_proto . inet_service`, acceptPorts) && "accept_dnat",
    declare("set", "accept_dnat_ranges", `${addrType} . inet_proto . inet_service`, acceptRanges, "interval") && "accept_dnat_ranges",
  ].filter((x): x is string => x !== false);
  const hasHairpin = declare("set", "hairpin", `${addrType} . ${addrType}`, hairpin, "interval");

  // No counter on map rules: it would count every packet reaching the lookup.
  // Restricted (more specific) forwards first, then the maps: the same
  // precedence the plan gives both backends.
  if (hasAddrMap) {
    pre.push(`dnat to ${addr} daddr . meta l4proto . th dport map @dnat_addr`);
    out.push(`dnat to ${addr} daddr . meta l4proto . th dport map @dnat_addr`);
  }
  if (hasLocalMap) {
    pre.push(`fib daddr type local dnat to meta l4proto . th dport map @dnat_local`);
    out.push(`${addr} daddr != ${loopback} fib daddr type local dnat to meta l4proto . th dport map @dnat_local`);
  }
  // A mapped address is the guest's whole: ahead of every forward (a forward
  // naming that address is refused when compiling).
  const mapped = egress.filter((e) => e.inbound).map((e) => `${addr} daddr ${e.hostAddress} counter dnat to ${e.family === 6 ? `[${e.guestAddress}]` : e.guestAddress} ${comment(e.rule.span)}`);
  pre.unshift(...mapped);
  out.unshift(...mapped);
  if (hasHairpin) post.unshift(`ct status dnat ${addr} saddr . ${addr} daddr @hairpin counter masquerade`);
  // Both directions are marked: a drop-policy forward chain of someone else's
  // (Docker's FORWARD) that accepts our mark then passes the replies too.
  fwd.unshift(
    ...acceptSets.flatMap((set) => [
      `ct status dnat ${addr} daddr . meta l4proto . th dport @${set} counter ${mark}`,
      `ct status dnat ct direction reply ${addr} saddr . meta l4proto . th sport @${set} counter ${mark}`,
    ]),
  );

  const chain = (name: string, hook: string, type: string, priority: string, rules: string[]) => {
    lines.push(...rules.map((r) => `${name} ${r}`));
    return `\tchain ${name} {\n\t\ttype ${type} hook ${hook} priority ${priority}; policy accept;\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}`;
  };
  const chains = [
    chain("prerouting", "prerouting", "nat", "dstnat", pre),
    chain("output", "output", "nat", "-100", out),
    // Before libvirt's guest_nat (srcnat): the first NAT binding of a flow wins.
    chain("postrouting", "postrouting", "nat", "srcnat - 1", post),
    // Before libvirt's forward chain (filter): marks what it should accept.
    chain("forward", "forward", "filter", "filter - 1", fwd),
  ];
  const body = `table ${nftFamily} ${NFT_TABLE} {\n${[...sets, ...chains].join("\n")}\n}\n`;
  return { family, nftFamily, body, empty: lines.length === 0, lines, keyedElements: origins };
}

const portCount = (r: PortRange) => r.last - r.first + 1;

function targetRangeOf(f: ForwardIntent): PortRange {
  if (!f.targetPorts) return f.hostPorts;
  return f.targetPorts;
}

function targetPort(f: ForwardIntent, hostPort: number): number {
  if (!f.targetPorts) return hostPort;
  if (f.targetPorts.first === f.targetPorts.last) return f.targetPorts.first;
  return f.targetPorts.first + (hostPort - f.hostPorts.first);
}

/** The DNAT statement of a forward rendered as a rule (not a map element). */
function dnatAction(f: ForwardIntent, proto: Proto): string {
  const a = f.family === 6 ? `[${f.targetAddress}]` : f.targetAddress;
  if (!f.targetPorts) return `dnat to ${a}`;
  if (f.targetPorts.first === f.targetPorts.last) return `dnat to ${a}:${f.targetPorts.first}`;
  // 1:1 shift of a range: an anonymous map from each host port to its target.
  const pairs: string[] = [];
  for (let p = f.hostPorts.first; p <= f.hostPorts.last && pairs.length < MAX_EXPANDED_PORTS; p++) pairs.push(`${p} : ${f.targetAddress} . ${targetPort(f, p)}`);
  return `dnat to ${proto} dport map { ${pairs.join(", ")} }`;
}

function renderMasquerade(m: MasqueradeIntent, addr: string, post: string[], fwd: string[]): void {
  const c = comment(m.rule.span);
  const subnet = formatCidr(m.subnet);
  const local = m.subnet.family === 4 ? ["224.0.0.0/24", "255.255.255.255"] : ["ff00::/8"];
  for (const d of local) post.push(`${addr} saddr ${subnet} ${addr} daddr ${d} return ${c}`);
  post.push(`${addr} saddr ${subnet} ${addr} daddr != ${subnet} counter masquerade ${c}`);
  const o = m.bridge ? `oifname "${m.bridge}" ` : "";
  const i = m.bridge ? `iifname "${m.bridge}" ` : "";
  fwd.push(`${addr} daddr ${subnet} ${o}ct state established,related counter ${mark} ${c}`);
  fwd.push(`${addr} saddr ${subnet} ${i}counter ${mark} ${c}`);
}

function renderAccept(a: AcceptIntent, addr: string, post: string[], fwd: string[]): void {
  const c = comment(a.rule.span);
  const base = `${addr} saddr ${formatCidr(a.from)} ${addr} daddr ${formatCidr(a.to)} `;
  const protos = a.protos.length ? a.protos : [undefined];
  for (const proto of protos) {
    const ports = proto ? (a.ports ? `${proto} dport ${nftRange(a.ports)} ` : `meta l4proto ${proto} `) : "";
    const i = a.fromBridge ? `iifname "${a.fromBridge}" ` : "";
    const o = a.toBridge ? `oifname "${a.toBridge}" ` : "";
    fwd.push(`${base}${i}${o}${ports}counter ${mark} ${c}`);
    // A null SNAT binding: libvirt's masquerade of FROM's network then leaves this flow alone.
    if (a.keepSource) post.push(`${base}${o}${ports}counter snat to ${addr} saddr ${c}`);
  }
}

/**
 * egress: the guest's new connections leave from its address. Our postrouting
 * chain runs at srcnat - 1, before libvirt's guest_nat (srcnat): nat sees only
 * a flow's first packet and its first binding is the flow's, so libvirt's
 * masquerade never sees it. Destinations in a libvirt network (the guest's
 * own, others, accept peers), multicast and broadcast are left alone.
 * map: besides, every port of the address goes to the guest (DNAT rules are
 * put first in prerouting/output by renderNft), accepted and hairpinned.
 */
function renderEgress(e: EgressIntent, addr: string, post: string[], fwd: string[]): void {
  const c = comment(e.rule.span);
  if (e.inbound) {
    const dnatFrom = `ct status dnat ct original ${addr} daddr ${e.hostAddress}`;
    // Both directions, as for forwards (a drop-policy chain of someone else's that accepts our mark passes replies too).
    fwd.push(`${dnatFrom} counter ${mark} ${c}`);
    for (const s of e.hairpinSources) post.push(`${dnatFrom} ${addr} saddr ${formatCidr(s)} ${addr} daddr ${e.guestAddress} counter masquerade ${c}`);
  }
  const excluded = e.excluded.map(formatCidr).join(", ");
  post.push(`${addr} saddr ${e.guestAddress} ${addr} daddr != { ${excluded} } counter snat to ${e.hostAddress} ${c}`);
}
