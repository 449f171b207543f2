// Plan -> iptables rules for one address family, as iptables-save would print
// them (so the text we apply is also the text we can compare with the kernel).
// Values are validated before they get here; comments are sanitised anyway,
// because file names are free text.
import { formatCidr, type Cidr, type Family } from "../net/ip.js";
import type { AcceptIntent, EgressIntent, ForwardIntent, MasqueradeIntent, Plan } from "../plan/intents.js";
import { formatPorts, type PortRange } from "../rules/model.js";
import { positionOf, type Span } from "../rules/source.js";
import { basename } from "node:path";
import { SNAT_CHAIN, type Table } from "./chains.js";

export interface IptablesRule {
  readonly table: Table;
  readonly chain: string;
  /** Everything after "-A CHAIN", as iptables-save prints it. */
  readonly spec: string;
}

export interface IptablesRuleset {
  readonly family: Family;
  readonly rules: readonly IptablesRule[];
}

const host = (address: string, family: Family) => `${address}/${family === 4 ? 32 : 128}`;
const loopback = (family: Family) => (family === 4 ? "127.0.0.0/8" : "::1/128");
const ipt = (r: PortRange) => (r.first === r.last ? `${r.first}` : `${r.first}:${r.last}`);

/** A comment naming the rule's file (in rules.d) and line, restricted to characters that need no quoting care. */
export function originComment(span: Span): string {
  const text = `virt-hooks ${basename(span.file.path)}:${positionOf(span.file, span.start).line}`.replace(/[^A-Za-z0-9 _.:/@+=,-]/g, "_");
  return `-m comment --comment "${text.length > 250 ? `...${text.slice(-247)}` : text}"`;
}

export function renderIptables(plan: Plan, family: Family): IptablesRuleset {
  const rules: IptablesRule[] = [];
  const add = (table: Table, chain: string, parts: (string | undefined | false)[]) =>
    rules.push({ table, chain, spec: parts.filter((p): p is string => typeof p === "string" && p.length > 0).join(" ") });

  const egress = (plan.egress ?? []).filter((x) => x.family === family);
  // A mapped address is the guest's whole: ahead of every forward (a forward
  // naming that address is refused when compiling).
  for (const e of egress) if (e.inbound) renderMapInbound(e, add);
  for (const a of plan.accepts.filter((x) => x.from.family === family)) renderAccept(a, add);
  for (const f of plan.forwards.filter((x) => x.family === family)) renderForward(f, add);
  // After the accepts' null bindings and the hairpins, before `masquerade`:
  // an egress guest of a routed network leaves from its own address, not the
  // host's uplink one.
  renderEgress(egress, add);
  for (const m of plan.masquerades.filter((x) => x.subnet.family === family)) renderMasquerade(m, add);
  return { family, rules };
}

type Add = (table: Table, chain: string, parts: (string | undefined | false)[]) => void;

function renderForward(f: ForwardIntent, add: Add): void {
  const comment = originComment(f.rule.span);
  const family = f.family;
  const targetPorts = f.targetPorts;
  // DNAT destination: keep the port when unchanged; one port for many->one; 1:1 shift otherwise.
  const addr = family === 6 ? `[${f.targetAddress}]` : f.targetAddress;
  // Without a port, ip6tables-save prints the address bare: render it so, or inSync never holds.
  let to = f.targetAddress;
  let forwardPorts = f.hostPorts;
  if (targetPorts && !(targetPorts.first === f.hostPorts.first && targetPorts.last === f.hostPorts.last)) {
    if (targetPorts.first === targetPorts.last) {
      to = `${addr}:${targetPorts.first}`;
    } else {
      to = `${addr}:${formatPorts(targetPorts)}/${f.hostPorts.first}`;
    }
    forwardPorts = targetPorts;
  }
  const sources: (Cidr | undefined)[] = f.from.length ? [...f.from] : [undefined];
  for (const proto of f.protos) {
    const dport = `-m ${proto} --dport ${ipt(f.hostPorts)}`;
    for (const src of sources) {
      const s = src && `-s ${formatCidr(src)}`;
      // From outside, and from guests through the host's address (hairpin).
      add("nat", "VIRT_HOOKS_PRE", [
        s,
        f.hostAddress && `-d ${host(f.hostAddress, family)}`,
        f.inInterface && `-i ${f.inInterface}`,
        `-p ${proto}`,
        !f.hostAddress && "-m addrtype --dst-type LOCAL",
        dport,
        comment,
        `-j DNAT --to-destination ${to}`,
      ]);
      // The host's own connections to its addresses. Not loopback: DNAT from
      // 127/8 needs route_localnet, a host-wide sysctl we do not flip.
      if (f.inInterface === undefined) {
        add("nat", "VIRT_HOOKS_OUT", [
          s,
          f.hostAddress ? `-d ${host(f.hostAddress, family)}` : `! -d ${loopback(family)}`,
          `-p ${proto}`,
          !f.hostAddress && "-m addrtype --dst-type LOCAL",
          dport,
          comment,
          `-j DNAT --to-destination ${to}`,
        ]);
      }
      // Accept exactly the DNAT'd flow, ahead of libvirt's REJECT for NAT guests.
      add("filter", "VIRT_HOOKS_FWD", [
        s,
        `-d ${host(f.targetAddress, family)}`,
        f.inInterface && `-i ${f.inInterface}`,
        `-p ${proto}`,
        `-m ${proto} --dport ${ipt(forwardPorts)}`,
        `-m conntrack --ctstate DNAT`,
        // Written as iptables-save prints it (no /32 or /128), so inSync can compare text.
        f.hostAddress && `--ctorigdst ${f.hostAddress}`,
        `--ctorigdstport ${ipt(f.hostPorts)}`,
        comment,
        "-j ACCEPT",
      ]);
    }
    // Hairpin: a guest on the target's own subnet reaching it via the host's
    // address must see replies come back through the host, so masquerade it.
    for (const subnet of f.hairpinSources) {
      add("nat", "VIRT_HOOKS_POST", [
        `-s ${formatCidr(subnet)}`,
        `-d ${host(f.targetAddress, family)}`,
        `-p ${proto}`,
        `-m ${proto} --dport ${ipt(forwardPorts)}`,
        "-m conntrack --ctstate DNAT",
        comment,
        "-j MASQUERADE",
      ]);
    }
  }
}

function renderMasquerade(m: MasqueradeIntent, add: Add): void {
  const comment = originComment(m.rule.span);
  const subnet = formatCidr(m.subnet);
  // Like libvirt's own NAT: multicast and broadcast leave unmasqueraded.
  const local = m.subnet.family === 4 ? ["224.0.0.0/24", "255.255.255.255/32"] : ["ff00::/8"];
  for (const d of local) add("nat", "VIRT_HOOKS_POST", [`-s ${subnet}`, `-d ${d}`, comment, "-j RETURN"]);
  add("nat", "VIRT_HOOKS_POST", [`-s ${subnet}`, `! -d ${subnet}`, comment, "-j MASQUERADE"]);
  // Routed networks already accept both directions; open ones rely on the
  // FORWARD policy, so say it explicitly: out freely, back in as replies only.
  add("filter", "VIRT_HOOKS_FWD", [`-d ${subnet}`, m.bridge && `-o ${m.bridge}`, "-m conntrack --ctstate RELATED,ESTABLISHED", comment, "-j ACCEPT"]);
  add("filter", "VIRT_HOOKS_FWD", [`-s ${subnet}`, m.bridge && `-i ${m.bridge}`, comment, "-j ACCEPT"]);
}

function renderAccept(a: AcceptIntent, add: Add): void {
  const comment = originComment(a.rule.span);
  const protos = a.protos.length ? a.protos : [undefined];
  for (const proto of protos) {
    const parts = [
      `-s ${formatCidr(a.from)}`,
      `-d ${formatCidr(a.to)}`,
      a.fromBridge && `-i ${a.fromBridge}`,
      a.toBridge && `-o ${a.toBridge}`,
      proto && `-p ${proto}`,
      proto && a.ports && `-m ${proto} --dport ${ipt(a.ports)}`,
    ];
    add("filter", "VIRT_HOOKS_FWD", [...parts, comment, "-j ACCEPT"]);
    if (a.keepSource) add("nat", "VIRT_HOOKS_POST", [...parts.filter((p) => typeof p !== "string" || !p.startsWith("-i ")), comment, "-j ACCEPT"]);
  }
}

/** map ADDRESS to GUEST, inbound: every port, any protocol. */
function renderMapInbound(e: EgressIntent, add: Add): void {
  const comment = originComment(e.rule.span);
  // Bare, as ip6tables-save prints a DNAT without a port (brackets only with one).
  const guest = e.guestAddress;
  add("nat", "VIRT_HOOKS_PRE", [`-d ${host(e.hostAddress, e.family)}`, comment, `-j DNAT --to-destination ${guest}`]);
  add("nat", "VIRT_HOOKS_OUT", [`-d ${host(e.hostAddress, e.family)}`, comment, `-j DNAT --to-destination ${guest}`]);
  const dnatFrom = `-m conntrack --ctstate DNAT --ctorigdst ${e.hostAddress}`;
  add("filter", "VIRT_HOOKS_FWD", [`-d ${host(e.guestAddress, e.family)}`, dnatFrom, comment, "-j ACCEPT"]);
  for (const s of e.hairpinSources) add("nat", "VIRT_HOOKS_POST", [`-s ${formatCidr(s)}`, `-d ${host(e.guestAddress, e.family)}`, dnatFrom, comment, "-j MASQUERADE"]);
}

/**
 * Each guest's new connections leave from its address: SNAT in our own chain,
 * entered from VIRT_HOOKS_POST, which POSTROUTING enters first, so the
 * decision is taken before libvirt's LIBVIRT_PRT masquerade (nat sees only a
 * flow's first packet; the first binding is the flow's). Destinations in a
 * libvirt network (the guest's own, others, accept peers), multicast and
 * broadcast RETURN first: they are never rewritten by us.
 */
function renderEgress(egress: readonly EgressIntent[], add: Add): void {
  if (egress.length === 0) return;
  add("nat", "VIRT_HOOKS_POST", [`-j ${SNAT_CHAIN.name}`]);
  const excluded = new Map<string, Cidr>();
  for (const e of egress) for (const c of e.excluded) excluded.set(formatCidr(c), c);
  for (const c of excluded.keys()) add("nat", SNAT_CHAIN.name, [`-d ${c}`, "-j RETURN"]);
  for (const e of egress) add("nat", SNAT_CHAIN.name, [`-s ${host(e.guestAddress, e.family)}`, originComment(e.rule.span), `-j SNAT --to-source ${e.hostAddress}`]);
}
