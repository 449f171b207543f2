// `uplink NETWORK IFACE` and `route NETWORK DEST via GATEWAY`: what the host's
// links, addresses and routes must become when a network starts or stops.
// Pure: the host's current links/addresses/routes come in as data (read at
// the edge with `ip -j`, effects/links-apply.ts), and out comes one `ip -batch`
// script, the record of what was moved (so a stop can put it back) and
// diagnostics. Planned from the current state: a second event for the same
// network plans nothing.
//
// Order when a network starts (each step needs the one before it):
//   1. the bridge up (libvirt has it up already; harmless)
//   2. each uplink enslaved into the bridge, and up
//   3. the uplink's own routes deleted (while they are still valid; the
//      kernel would drop the IPv4 ones with the last address anyway)
//   4. the uplink's addresses moved to the bridge (same prefix, broadcast)
//   5. the moved routes re-added through the bridge, then the declared
//      `route` statements (`replace`: idempotent, the declaration wins)
// When it stops (libvirt has deleted the bridge by then, which releases the
// uplink): the uplink released if still enslaved and up, the declared routes
// and moved addresses removed from the bridge if it still exists, the moved
// addresses and then routes put back on the uplink.
import type { NetworkInfo } from "../libvirt/network.js";
import { canonicalAddress, cidrContains, isDeviceName, makeCidr, parseCidr, type Cidr, type Family } from "../net/ip.js";
import { error, warning, type Diagnostic } from "../rules/diagnostic.js";
import type { RouteRule, RuleSet, UplinkRule } from "../rules/model.js";

export interface HostAddress {
  readonly family: Family;
  readonly local: string;
  readonly prefixlen: number;
  readonly scope: string;
  readonly broadcast?: string;
  /** Not permanent: from DHCP or SLAAC. */
  readonly dynamic?: boolean;
}

export interface HostLink {
  readonly name: string;
  readonly master?: string;
  readonly up: boolean;
  /** "bridge", "veth", ... (ip -d); absent for plain devices. */
  readonly kind?: string;
  readonly addresses: readonly HostAddress[];
}

export interface HostRoute {
  readonly family: Family;
  /** Canonical "ADDRESS/PREFIX" ("0.0.0.0/0", "::/0" for default). */
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
  readonly metric?: number;
  readonly protocol?: string;
  readonly scope?: string;
  readonly prefsrc?: string;
}

/** The host's network as `ip -j -d address show` and `ip -j route show table main` (both families) report it. */
export interface HostNet {
  readonly links: ReadonlyMap<string, HostLink>;
  readonly routes: readonly HostRoute[];
}

/** What was taken off an uplink when it was enslaved: put back when its network stops. */
export interface MovedRecord {
  readonly network: string;
  readonly bridge: string;
  readonly addresses: readonly HostAddress[];
  readonly routes: readonly HostRoute[];
}

/** Keyed by the uplink's interface name. */
export type LinkRecords = Readonly<Record<string, MovedRecord>>;

export interface LinkPlan {
  /** `ip -batch` lines, in order; empty: the host already is as declared. */
  readonly commands: readonly string[];
  /** The whole new record set (written before the commands run). */
  readonly records: LinkRecords;
  readonly diagnostics: readonly Diagnostic[];
  /** Short phrases for the hook's log line. */
  readonly notes: readonly string[];
}

const DEFAULT_DST: Record<Family, string> = { 4: "0.0.0.0/0", 6: "::/0" };

/** Rules of one network, for the hook's "does this event concern links?" question. */
export function linkRulesOf(rules: Pick<RuleSet, "uplinks" | "routes">, network: string): { uplinks: UplinkRule[]; routes: RouteRule[] } {
  return { uplinks: rules.uplinks.filter((u) => u.network === network), routes: rules.routes.filter((r) => r.network === network) };
}

const addrText = (a: Pick<HostAddress, "local" | "prefixlen">) => `${a.local}/${a.prefixlen}`;
const sameAddr = (a: HostAddress, b: HostAddress) => a.local === b.local && a.prefixlen === b.prefixlen;
/** The kernel's metric when none is given: 0 for IPv4, 1024 for IPv6. */
const metricOf = (r: HostRoute) => r.metric ?? (r.family === 6 ? 1024 : 0);
const sameRoute = (a: HostRoute, b: HostRoute) => a.dst === b.dst && a.gateway === b.gateway && metricOf(a) === metricOf(b);
const SAFE_WORD = /^[A-Za-z0-9_.-]{1,32}$/;

function addressCommand(verb: "add" | "del", a: HostAddress, dev: string): string {
  const brd = verb === "add" && a.family === 4 && a.broadcast ? ` broadcast ${a.broadcast}` : "";
  // The address was this host's a moment ago: no duplicate address detection (it would keep it tentative ~1 s).
  const nodad = verb === "add" && a.family === 6 ? " nodad" : "";
  return `address ${verb} ${addrText(a)}${brd}${nodad} dev ${dev}`;
}

/** `route VERB DST [via GW] dev DEV [metric M] [proto P] [scope S] [src A]`. */
function routeCommand(verb: "replace" | "del", r: HostRoute, dev: string): string {
  const parts = [`route ${verb} ${r.dst}`];
  if (r.gateway) parts.push(`via ${r.gateway}`);
  parts.push(`dev ${dev}`);
  if (r.metric !== undefined) parts.push(`metric ${r.metric}`);
  if (verb === "replace") {
    if (r.protocol && r.protocol !== "ra" && SAFE_WORD.test(r.protocol)) parts.push(`proto ${r.protocol}`);
    if (r.scope && r.scope !== "global" && SAFE_WORD.test(r.scope)) parts.push(`scope ${r.scope}`);
    if (r.prefsrc) parts.push(`src ${r.prefsrc}`);
  }
  return parts.join(" ");
}

const declaredRoute = (r: RouteRule): HostRoute => ({ family: r.family, dst: `${r.dest.address}/${r.dest.prefix}`, gateway: r.gateway });

/** Routes that belong to an uplink and must follow it: everything but the kernel's own prefix routes. */
function movableRoutes(host: HostNet, iface: string): HostRoute[] {
  return host.routes.filter((r) => r.dev === iface && r.protocol !== "kernel" && !r.dst.startsWith("fe80:") && !r.dst.startsWith("ff"));
}

/** Addresses that follow an uplink into the bridge: global ones (link-local stays; SLAAC ones come back from router advertisements). */
function movableAddresses(link: HostLink): HostAddress[] {
  return link.addresses.filter((a) => a.scope !== "link" && a.scope !== "host" && !(a.family === 6 && a.dynamic));
}

const isLinkLocal6 = (a: string) => parseCidr(a) !== undefined && cidrContains(makeCidr("fe80::", 10) as Cidr, a);

export function planLinksUp(network: Pick<NetworkInfo, "name" | "bridge" | "subnets">, rules: Pick<RuleSet, "uplinks" | "routes">, host: HostNet, records: LinkRecords): LinkPlan {
  const { uplinks, routes } = linkRulesOf(rules, network.name);
  const diagnostics: Diagnostic[] = [];
  const notes: string[] = [];
  const out: Record<string, MovedRecord> = { ...records };
  if (uplinks.length === 0 && routes.length === 0) return { commands: [], records, diagnostics, notes };
  const bridgeName = network.bridge;
  const bridge = bridgeName ? host.links.get(bridgeName) : undefined;
  if (!bridgeName || !bridge || !isDeviceName(bridgeName)) {
    for (const r of [...uplinks, ...routes]) {
      diagnostics.push(
        error(
          "no-bridge",
          r.span,
          bridgeName ? `network "${network.name}"'s bridge ${bridgeName} does not exist` : `network "${network.name}" has no bridge of libvirt's (forward mode bridge, macvtap or hostdev?)`,
          `${r.kind === "uplink" ? "uplink" : "route"} works with NAT, routed, open and isolated networks: check with virsh net-dumpxml ${network.name}`,
        ),
      );
    }
    return { commands: [], records, diagnostics, notes };
  }
  const B = bridgeName;
  const ownAddresses = new Set([...host.links.values()].flatMap((l) => l.addresses.map((a) => a.local)));

  // What will be on the bridge once the uplinks' addresses moved: where gateways must be.
  const accepted: { rule: UplinkRule; link: HostLink; addresses: HostAddress[]; routes: HostRoute[] }[] = [];
  const candidates: typeof accepted = [];
  for (const u of uplinks) {
    const link = host.links.get(u.iface);
    if (!link) {
      diagnostics.push(error("no-interface", u.ifaceSpan, `interface "${u.iface}" does not exist on this host`, "name an existing interface; see: ip -br link"));
      continue;
    }
    if (u.iface === B) {
      diagnostics.push(error("bad-interface", u.ifaceSpan, `"${u.iface}" is network "${network.name}"'s own bridge`, "name the host's physical interface (e.g. eth0), not the bridge"));
      continue;
    }
    if (link.kind === "bridge") {
      diagnostics.push(error("bad-interface", u.ifaceSpan, `"${u.iface}" is a bridge, and a bridge cannot be a port of another bridge`, `name the interface that is a port of ${u.iface} (see: bridge link), after removing it from ${u.iface}`));
      continue;
    }
    if (link.master && link.master !== B) {
      diagnostics.push(error("busy-interface", u.ifaceSpan, `"${u.iface}" is already a port of ${link.master}`, `release it first (ip link set dev ${u.iface} nomaster; and from the distribution's network configuration), or make ${link.master}'s network the uplink's`));
      continue;
    }
    candidates.push({ rule: u, link, addresses: movableAddresses(link), routes: movableRoutes(host, u.iface) });
  }
  const onBridge: HostAddress[] = [...bridge.addresses, ...candidates.flatMap((c) => c.addresses)];
  const reachableWith = (addresses: readonly HostAddress[]) => (gw: string): boolean =>
    isLinkLocal6(gw) || addresses.some((a) => cidrContains(makeCidr(a.local, a.prefixlen) as Cidr, gw)) || network.subnets.some((s) => cidrContains(s.cidr, gw));
  const reachable = reachableWith(onBridge);
  const goodRoutes: RouteRule[] = [];
  for (const r of routes) {
    if (ownAddresses.has(r.gateway)) {
      diagnostics.push(error("bad-gateway", r.span, `the gateway ${r.gateway} is one of this host's own addresses`, "the gateway is the next router, e.g. 192.168.1.1"));
    } else if (!reachable(r.gateway)) {
      const on = [...new Set([...onBridge.map(addrText), ...network.subnets.map((s) => `${s.cidr.address}/${s.cidr.prefix}`)])];
      diagnostics.push(
        error(
          "unreachable-gateway",
          r.span,
          `the gateway ${r.gateway} is not in a subnet on ${B} (${on.length ? on.join(", ") : "no addresses"}), so the kernel would refuse the route`,
          `use a gateway inside one of those subnets, or give ${B} an address in the gateway's subnet (the uplink's addresses move there)`,
        ),
      );
    } else goodRoutes.push(r);
  }
  // Refuse what would cut the host off: an uplink carrying a default route,
  // with no (valid) declared default of that family to take its place.
  for (const c of candidates) {
    const lost = c.routes.filter((r) => r.dst === DEFAULT_DST[r.family] && !goodRoutes.some((g) => g.isDefault && g.family === r.family));
    if (lost.length > 0) {
      const r = lost[0] as HostRoute;
      const declared = routes.some((g) => g.isDefault && g.family === r.family);
      diagnostics.push(
        error(
          "would-cut-off",
          c.rule.span,
          `enslaving "${c.rule.iface}" into ${B} would drop the host's IPv${r.family} default route (${r.gateway ? `via ${r.gateway} ` : ""}dev ${c.rule.iface}): the host would lose its way out, so "${c.rule.iface}" is left alone`,
          declared
            ? `fix the \`route ${network.name} default via …\` statement (see its error), then: virsh net-destroy ${network.name} && virsh net-start ${network.name}`
            : `declare the route through the bridge: route ${network.name} default via ${r.gateway ?? "GATEWAY"}`,
        ),
      );
      continue;
    }
    accepted.push(c);
  }

  // A declared route whose gateway only a refused uplink's addresses would have reached must wait too.
  const stillReachable = reachableWith([...bridge.addresses, ...accepted.flatMap((c) => c.addresses)]);
  for (const r of goodRoutes.splice(0)) {
    if (stillReachable(r.gateway)) goodRoutes.push(r);
    else diagnostics.push(error("unreachable-gateway", r.span, `the gateway ${r.gateway} would be on ${B} only through a refused uplink, so this route is not added`, "fix the uplink's error first"));
  }

  const cmds: string[] = [];
  if (!bridge.up) cmds.push(`link set dev ${B} up`);
  for (const c of accepted) {
    const I = c.rule.iface;
    if (c.link.master !== B) cmds.push(`link set dev ${I} master ${B}`);
    if (!c.link.up || c.link.master !== B) cmds.push(`link set dev ${I} up`);
  }
  for (const c of accepted) for (const r of c.routes) cmds.push(routeCommand("del", r, c.rule.iface));
  for (const c of accepted) {
    for (const a of c.addresses) {
      cmds.push(addressCommand("del", a, c.rule.iface));
      if (!bridge.addresses.some((b) => sameAddr(a, b))) cmds.push(addressCommand("add", a, B));
      if (a.dynamic) diagnostics.push(warning("dynamic-address", c.rule.span, `${addrText(a)} on "${c.rule.iface}" came from DHCP; it now stays on ${B} without expiring`, `run the DHCP client on ${B} instead of ${c.rule.iface}`));
    }
  }
  const routesOnBridge = host.routes.filter((r) => r.dev === B);
  for (const c of accepted) {
    for (const r of c.routes) {
      if (r.dst === DEFAULT_DST[r.family]) continue; // the declared default takes its place
      if (goodRoutes.some((g) => declaredRoute(g).dst === r.dst)) continue; // declared: added below
      cmds.push(routeCommand("replace", r, B));
    }
  }
  const added: string[] = [];
  for (const g of goodRoutes) {
    const want = declaredRoute(g);
    // Already there: nothing in this batch removes routes through the bridge.
    if (routesOnBridge.some((r) => sameRoute(r, want))) continue;
    cmds.push(routeCommand("replace", want, B));
    added.push(`${g.isDefault ? "default" : want.dst} via ${g.gateway}`);
  }

  for (const c of accepted) {
    const I = c.rule.iface;
    const before = records[I];
    const keep = before && before.network === network.name;
    const addresses = [...(keep ? before.addresses : []), ...c.addresses.filter((a) => !keep || !before.addresses.some((b) => sameAddr(a, b)))];
    const moved = [...(keep ? before.routes : []), ...c.routes.filter((r) => !keep || !before.routes.some((b) => sameRoute(r, b)))];
    out[I] = { network: network.name, bridge: B, addresses, routes: moved };
    if (c.link.master !== B || c.addresses.length || c.routes.length) {
      const what = [c.addresses.length ? `moved ${c.addresses.map(addrText).join(" ")}` : "", c.routes.length ? `${c.routes.length} route(s)` : ""].filter(Boolean).join(", ");
      notes.push(`uplink ${I} → ${B}${what ? ` (${what})` : ""}`);
    }
  }
  if (added.length) notes.push(`route ${added.join(", ")} dev ${B}`);
  return { commands: cmds, records: out, diagnostics, notes };
}

/**
 * The network stopped: put back what its uplinks lost. `bridge` is the
 * network's bridge as the event named it (usually gone by now). Uplinks whose
 * rule was removed meanwhile are restored too: the record is what counts.
 */
export function planLinksDown(networkName: string, bridge: string | undefined, rules: Pick<RuleSet, "uplinks" | "routes">, host: HostNet, records: LinkRecords): LinkPlan {
  const { uplinks, routes } = linkRulesOf(rules, networkName);
  const notes: string[] = [];
  const out: Record<string, MovedRecord> = { ...records };
  const ifaces = new Set([...uplinks.map((u) => u.iface), ...Object.entries(records).filter(([, r]) => r.network === networkName).map(([i]) => i)]);
  const cmds: string[] = [];
  const B = bridge && isDeviceName(bridge) ? bridge : undefined;
  const bridgeLink = B ? host.links.get(B) : undefined;
  if (B && bridgeLink) {
    for (const g of routes) {
      const want = declaredRoute(g);
      if (host.routes.some((r) => r.dev === B && sameRoute(r, want))) cmds.push(routeCommand("del", want, B));
    }
  }
  const restores: string[] = [];
  for (const I of ifaces) {
    if (!isDeviceName(I)) continue;
    const rec = records[I]?.network === networkName ? records[I] : undefined;
    delete out[I];
    const link = host.links.get(I);
    if (!link) continue; // unplugged meanwhile: nothing to put back on
    const fromBridge = rec?.bridge ?? B;
    if (link.master && link.master === fromBridge) cmds.push(`link set dev ${I} nomaster`);
    if (!link.up || (link.master && link.master === fromBridge)) cmds.push(`link set dev ${I} up`);
    if (!rec) continue;
    const onBridge = host.links.get(rec.bridge);
    for (const a of rec.addresses) {
      if (onBridge?.addresses.some((b) => sameAddr(a, b))) cmds.push(addressCommand("del", a, rec.bridge));
      if (!link.addresses.some((b) => sameAddr(a, b))) cmds.push(addressCommand("add", a, I));
    }
    for (const r of rec.routes) {
      if (!host.routes.some((h) => h.dev === I && sameRoute(h, r))) cmds.push(routeCommand("replace", r, I));
    }
    if (rec.addresses.length || rec.routes.length) restores.push(`${I} (${[...rec.addresses.map(addrText), ...(rec.routes.length ? [`${rec.routes.length} route(s)`] : [])].join(", ")})`);
  }
  if (restores.length) notes.push(`uplink restored: ${restores.join(", ")}`);
  return { commands: cmds, records: out, diagnostics: [], notes };
}

/** `ip -j route` output's "dst" in canonical "ADDRESS/PREFIX" form ("default" -> 0.0.0.0/0 or ::/0). */
export function canonicalDst(dst: string, family: Family): string | undefined {
  if (dst === "default") return DEFAULT_DST[family];
  const c = parseCidr(dst);
  return c && c.family === family ? `${c.address}/${c.prefix}` : undefined;
}

/** Parses `ip -j -d address show` output into links. Anything malformed is skipped. */
export function parseIpAddr(json: unknown): Map<string, HostLink> {
  const out = new Map<string, HostLink>();
  if (!Array.isArray(json)) return out;
  for (const l of json as Record<string, unknown>[]) {
    const name = typeof l.ifname === "string" ? l.ifname : undefined;
    if (!name || !isDeviceName(name)) continue;
    const flags = Array.isArray(l.flags) ? (l.flags as unknown[]) : [];
    const master = typeof l.master === "string" && isDeviceName(l.master) ? l.master : undefined;
    const info = l.linkinfo as Record<string, unknown> | undefined;
    const kind = typeof info?.info_kind === "string" ? info.info_kind : undefined;
    const addresses: HostAddress[] = [];
    for (const a of Array.isArray(l.addr_info) ? (l.addr_info as Record<string, unknown>[]) : []) {
      const family = a.family === "inet" ? 4 : a.family === "inet6" ? 6 : undefined;
      const local = typeof a.local === "string" ? canonicalAddress(a.local) : undefined;
      const prefixlen = typeof a.prefixlen === "number" ? a.prefixlen : undefined;
      if (!family || !local || prefixlen === undefined || !makeCidr(local, prefixlen)) continue;
      const broadcast = typeof a.broadcast === "string" ? canonicalAddress(a.broadcast) : undefined;
      addresses.push({
        family,
        local,
        prefixlen,
        scope: typeof a.scope === "string" ? a.scope : "global",
        ...(broadcast ? { broadcast } : {}),
        ...(a.dynamic === true ? { dynamic: true } : {}),
      });
    }
    out.set(name, { name, up: flags.includes("UP"), addresses, ...(master ? { master } : {}), ...(kind ? { kind } : {}) });
  }
  return out;
}

/** Parses `ip -j route show table main` output of one family. Multipath and odd routes are skipped. */
export function parseIpRoute(json: unknown, family: Family): HostRoute[] {
  const out: HostRoute[] = [];
  if (!Array.isArray(json)) return out;
  for (const r of json as Record<string, unknown>[]) {
    if (typeof r.dst !== "string" || (r.type !== undefined && r.type !== "unicast")) continue;
    const dst = canonicalDst(r.dst, family);
    const dev = typeof r.dev === "string" && isDeviceName(r.dev) ? r.dev : undefined;
    if (!dst || !dev) continue;
    const gateway = typeof r.gateway === "string" ? canonicalAddress(r.gateway) : undefined;
    if (r.gateway !== undefined && !gateway) continue;
    const prefsrc = typeof r.prefsrc === "string" ? canonicalAddress(r.prefsrc) : undefined;
    const metric = typeof r.metric === "number" && Number.isInteger(r.metric) && r.metric >= 0 ? r.metric : undefined;
    const protocol = typeof r.protocol === "string" && SAFE_WORD.test(r.protocol) ? r.protocol : undefined;
    const scope = typeof r.scope === "string" && SAFE_WORD.test(r.scope) ? r.scope : undefined;
    out.push({ family, dst, dev, ...(gateway ? { gateway } : {}), ...(metric !== undefined ? { metric } : {}), ...(protocol ? { protocol } : {}), ...(scope ? { scope } : {}), ...(prefsrc ? { prefsrc } : {}) });
  }
  return out;
}
