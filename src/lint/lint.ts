// Friendly warnings about rules that parse and resolve but probably do not do
// what the admin meant: a domain or network this host does not know, a host
// address that is not this host's, a forward that takes over a port a host
// service listens on. Pure: the host's facts are read at the edge (facts.ts)
// and passed in; a fact that could not be read is undefined and warns nothing.
// For check, plan, status and explain; never the hook's hot path.
import { familyOf, type Family } from "../net/ip.js";
import { warning, type Diagnostic } from "../rules/diagnostic.js";
import { formatPorts, type EgressRule, type ForwardRule, type Proto, type RuleSet } from "../rules/model.js";
import { closest } from "../rules/parse.js";

export interface Listener {
  readonly proto: Proto;
  readonly family: Family;
  /** Canonical address it is bound to ("0.0.0.0" / "::" for all). */
  readonly address: string;
  readonly port: number;
  /** The process holding the socket, when it could be found ("sshd[812]"). */
  readonly process?: string;
}

export interface HostFacts {
  /** Defined (/etc/libvirt/qemu/*.xml) and running domains. */
  readonly domains?: readonly string[];
  /** Defined and active networks. */
  readonly networks?: readonly string[];
  /** Every address configured on this host's interfaces (canonical). */
  readonly addresses?: readonly string[];
  readonly listeners?: readonly Listener[];
  /** The interface of the host's default route, per family (where `ip addr add` would put an egress address). */
  readonly defaultInterface?: { readonly 4?: string; readonly 6?: string };
  /** firewalld's StrictForwardPorts=yes: it rejects DNAT it did not create itself. */
  readonly firewalldStrictForwardPorts?: boolean;
  /** The ports of firewalld's own forward-ports (its permanent zones): those it lets through even then. */
  readonly firewalldForwardPorts?: readonly FirewalldForwardPort[];
}

export interface FirewalldForwardPort {
  readonly proto: string;
  readonly first: number;
  readonly last: number;
}

export function lintRules(rules: RuleSet, facts: HostFacts): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const f of rules.forwards) {
    if (f.target.kind === "domain") {
      const d = unknownName("domain", f.target.name, facts.domains, f);
      if (d) out.push(d);
      if (f.target.network) {
        const n = unknownName("network", f.target.network, facts.networks, f);
        if (n) out.push(n);
      }
    }
    if (f.hostAddress && facts.addresses && !facts.addresses.includes(f.hostAddress.address)) {
      const own = facts.addresses.filter((a) => familyOf(a) === f.hostAddress?.family && !isLoopback(a) && !a.startsWith("fe80:"));
      out.push(
        warning(
          "not-local-address",
          f.span,
          `${f.hostAddress.address} is not an address of this host${own.length ? ` (it has ${list(own)})` : ""}: nothing reaches this forward until it is`,
          "use one of the host's addresses, or leave the host address out to catch all of them (ip -br addr shows them)",
        ),
      );
    }
    out.push(...shadows(f, facts.listeners));
    if (facts.firewalldStrictForwardPorts && !ownedByFirewalld(f, facts.firewalldForwardPorts ?? [])) out.push(strictForward(f, rules.hosts));
  }
  for (const e of rules.egress ?? []) {
    if (e.target.kind === "domain") {
      const d = unknownName("domain", e.target.name, facts.domains, e);
      if (d) out.push(d);
    }
    if (facts.addresses && !facts.addresses.includes(e.address.address)) out.push(notLocalEgress(e, facts));
  }
  for (const m of rules.masquerades) {
    const d = unknownName("network", m.network, facts.networks, m);
    if (d) out.push(d);
  }
  for (const a of rules.accepts) {
    for (const e of [a.from, a.to]) {
      if (e.kind !== "network") continue;
      const d = unknownName("network", e.name, facts.networks, a);
      if (d) out.push(d);
    }
  }
  return out;
}

/**
 * firewalld >= 2.3 with StrictForwardPorts=yes drops forwarded traffic whose
 * DNAT firewalld did not make (libvirt-facts.md, firewalld section): our
 * forwards are installed and look live, yet no connection gets through.
 */
function strictForward(f: ForwardRule, hosts: RuleSet["hosts"]): Diagnostic {
  // A guest by name: its fixed address from a `host` statement, when rules.d has exactly one.
  const t = f.target;
  const fixed = t.kind === "domain" ? [...new Set(hosts.filter((h) => h.name === t.name && h.family === 4 && (!t.network || h.network === t.network)).map((h) => h.address))] : [];
  const to = t.kind === "address" ? t.address : fixed.length === 1 ? fixed[0] : "<the guest's address>";
  const port = f.hostPorts.first === f.hostPorts.last ? `${f.hostPorts.first}` : `${f.hostPorts.first}-${f.hostPorts.last}`;
  const toport = f.targetPorts ? formatPorts(f.targetPorts) : port;
  return warning(
    "firewalld-strict-forward-ports",
    f.span,
    "firewalld runs with StrictForwardPorts=yes (/etc/firewalld/firewalld.conf), which rejects forwarded connections whose DNAT firewalld did not create: this forward is installed but nothing reaches the guest",
    `set StrictForwardPorts=no there and run: firewall-cmd --reload   (or let firewalld own this port too: firewall-cmd --permanent --zone=ZONE --add-forward-port=port=${port}:proto=${f.protos[0] ?? "tcp"}:toport=${toport.replace(/:/g, "-")}:toaddr=${to})`,
  );
}

/**
 * An egress or map address this host lacks: the statement waits (a fleet's
 * rules.d names every host's addresses), and check says how to add it here.
 */
function notLocalEgress(e: EgressRule, facts: HostFacts): Diagnostic {
  const a = e.address;
  const dev = facts.defaultInterface?.[a.family];
  const own = (facts.addresses ?? []).filter((x) => familyOf(x) === a.family && !isLoopback(x) && !x.startsWith("fe80:"));
  return warning(
    "not-local-address",
    e.addressSpan,
    `${a.address} is not an address of this host${own.length ? ` (it has ${list(own)})` : ""}: this ${e.kind} statement waits until it is`,
    `if this host should own it: ip addr add ${a.address}/${a.family === 4 ? 32 : 128} dev ${dev && /^[A-Za-z0-9_.:@-]{1,15}$/.test(dev) ? dev : "IFACE"}   (and make it persistent in the host's network configuration; the upstream router must route ${a.address} to this host)`,
  );
}

/**
 * Whether firewalld lets this forward's connections through under StrictForwardPorts=yes:
 * it then accepts a DNAT'd connection by its original destination port alone, when
 * one of its own forward-ports (any zone, measured with firewalld 2.3.1) has that port.
 */
function ownedByFirewalld(f: ForwardRule, owned: readonly FirewalldForwardPort[]): boolean {
  for (const proto of f.protos) {
    for (let port = f.hostPorts.first; port <= f.hostPorts.last; port++) {
      if (!owned.some((o) => o.proto === proto && o.first <= port && port <= o.last)) return false;
    }
  }
  return true;
}

const list = (xs: readonly string[], max = 5) => (xs.length > max ? `${xs.slice(0, max).join(", ")}, …` : xs.join(", "));

function unknownName(what: "domain" | "network", name: string, known: readonly string[] | undefined, rule: { span: ForwardRule["span"] }): Diagnostic | undefined {
  if (!known || known.includes(name)) return undefined;
  const near = closest(name, known);
  const sorted = [...new Set(known)].sort();
  const hint = near
    ? `did you mean "${near}"?`
    : sorted.length
      ? `known ${what}s: ${list(sorted, 8)}`
      : what === "domain"
        ? "define it first (virsh define), or check the spelling"
        : "define it first (virsh net-define), or check the spelling";
  return warning(
    `unknown-${what}`,
    rule.span,
    `no ${what} named "${name}" is defined on this host${what === "domain" ? " (the rule waits for it)" : ""}`,
    hint,
  );
}

const isLoopback = (a: string) => a.startsWith("127.") || a === "::1";
const isAny = (a: string) => a === "0.0.0.0" || a === "::";

/** The families a forward catches on the host side. */
function hostFamilies(f: ForwardRule): Family[] {
  if (f.hostAddress) return [f.hostAddress.family];
  if (f.target.kind === "address") return [f.target.family];
  if (f.from.length) return [...new Set(f.from.map((c) => c.family))];
  return [4, 6];
}

/**
 * A forward catches connections to the host's addresses (all of them, or its
 * one host address) on its ports before any local service sees them. Loopback
 * is never DNAT'd, so services bound only there are not affected.
 */
function shadows(f: ForwardRule, listeners: readonly Listener[] | undefined): Diagnostic[] {
  if (!listeners) return [];
  const fams = hostFamilies(f);
  const hit = listeners.filter((l) => {
    if (!f.protos.includes(l.proto) || l.port < f.hostPorts.first || l.port > f.hostPorts.last) return false;
    if (isLoopback(l.address)) return false;
    // A socket on "::" also takes IPv4 unless bindv6only: count it for both.
    const lf: Family[] = l.address === "::" ? [4, 6] : [l.family];
    if (!lf.some((x) => fams.includes(x))) return false;
    if (!f.hostAddress) return true;
    return isAny(l.address) || l.address === f.hostAddress.address;
  });
  if (hit.length === 0) return [];
  const seen = new Set<string>();
  const names = hit
    .map((l) => `${l.proto} ${l.family === 6 ? `[${l.address}]` : l.address}:${l.port}${l.process ? ` (${l.process})` : ""}`)
    .filter((s) => !seen.has(s) && seen.add(s));
  const where = f.hostAddress ? f.hostAddress.address : "any of the host's addresses";
  return [
    warning(
      "shadows-listener",
      f.span,
      `this forward takes ${f.protos.join(",")} ${f.hostPorts.first === f.hostPorts.last ? "port" : "ports"} ${formatPorts(f.hostPorts)} on ${where}, where a host service listens: ${list(names)}; connections will reach the guest instead`,
      f.hostAddress ? "use another host port" : "give the forward a host address the service does not use (ADDRESS:PORT), or another host port",
    ),
  ];
}
