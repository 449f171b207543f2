// `host` rules -> the DHCP host entries to add to or delete from each network,
// live (the running network, /run/libvirt/network/NET.xml) and persistent (its
// definition, /etc/libvirt/qemu/networks/NET.xml), checked as `virt-hooks host
// add` checks them. Pure: which entries are ours is an input (the record the
// executor keeps), so an entry someone added by hand is never changed, only
// reported with the command that would let the statement take its place.
//
// Only `apply`, its units and the watcher act on this plan (cli/converge-hosts.ts):
// it means calling libvirt, which a hook must never do.
import type { HostView } from "../host/view.js";
import { clashesWith, entryOf, hostXml, placeEntry, sameHost } from "../libvirt/dhcp-host.js";
import type { DhcpHost, NetworkInfo } from "../libvirt/network.js";
import { error, type Diagnostic } from "../rules/diagnostic.js";
import type { HostRule } from "../rules/model.js";
import type { Lease } from "../libvirt/leases.js";

/** One network as the two places libvirt keeps it; either may be missing. */
export interface NetworkSides {
  /** Running: its status file. */
  readonly live?: NetworkInfo;
  /** Defined: its persistent XML. */
  readonly config?: NetworkInfo;
  /** dnsmasq's current leases on the running network (an address leased to another MAC is refused). */
  readonly leases?: readonly Lease[];
}

/** An entry virt-hooks itself added (the executor's record). */
export interface OwnedHost {
  readonly network: string;
  readonly entry: DhcpHost;
}

export interface HostChange {
  readonly verb: "add" | "delete";
  readonly network: string;
  readonly entry: DhcpHost;
  /** virsh --parent-index: which <ip> of the network. */
  readonly parentIndex: number;
  readonly live: boolean;
  readonly config: boolean;
  /** The statement it serves (absent: an entry of ours no statement declares any more). */
  readonly rule?: HostRule;
}

export type HostEntryState =
  | { readonly rule: HostRule; readonly state: "live" | "pending" | "waiting"; readonly detail: string }
  | { readonly rule: HostRule; readonly state: "failed"; readonly detail: string; readonly diagnostic: Diagnostic };

export interface FixedAddressPlan {
  /** In order: deletions first (a changed statement frees its old address), then additions. */
  readonly changes: readonly HostChange[];
  readonly states: readonly HostEntryState[];
  /** The record once every change has been made. */
  readonly owned: readonly OwnedHost[];
}

export const entryOfRule = (r: HostRule): DhcpHost => entryOf(r.mac, r.address, r.family, r.name);

const where = (live: boolean, config: boolean) => (live && config ? "live and persistent" : live ? "live only: the network is transient" : "persistent only: the network is not running");

/** `--live --config` as far as the network has each side. */
const flags = (live: boolean, config: boolean) => [...(live ? ["--live"] : []), ...(config ? ["--config"] : [])].join(" ");

/** The XML in double quotes for a hint the admin pastes (our XML never holds a double quote). */
const quotedXml = (h: DhcpHost) => `"${hostXml(h)}"`;

const isOwned = (owned: readonly OwnedHost[], network: string, h: DhcpHost) => owned.some((o) => o.network === network && sameHost(o.entry, h));

type SideName = "live" | "config";

export function planFixedAddresses(rules: readonly HostRule[], networks: ReadonlyMap<string, NetworkSides>, owned: readonly OwnedHost[]): FixedAddressPlan {
  const deletes: HostChange[] = [];
  const adds: HostChange[] = [];
  const states: HostEntryState[] = [];
  const record: OwnedHost[] = [];
  const declared = (network: string, h: DhcpHost) => rules.some((r) => r.network === network && sameHost(entryOfRule(r), h));

  // Ours that no statement declares any more: deleted where they still stand as we wrote them.
  for (const o of owned) {
    if (declared(o.network, o.entry)) continue;
    const sides = networks.get(o.network);
    const at = (side: NetworkInfo | undefined) => side?.subnets.findIndex((s) => s.dhcpHosts.some((h) => sameHost(h, o.entry))) ?? -1;
    const live = at(sides?.live);
    const config = at(sides?.config);
    pushChange(deletes, { verb: "delete", network: o.network, entry: o.entry }, live, config);
  }

  for (const rule of rules) {
    const sides = networks.get(rule.network);
    const entry = entryOfRule(rule);
    if (!sides || (!sides.live && !sides.config)) {
      states.push({ rule, state: "waiting", detail: `network "${rule.network}" is not defined on this host` });
      continue;
    }
    const index: Partial<Record<SideName, number>> = {};
    let problem: HostEntryState | undefined;
    for (const name of ["live", "config"] as const) {
      const side = sides[name];
      if (!side || problem) continue;
      const placed = placeEntry(side, rule.address, rule.family, { ...(entry.mac ? { mac: entry.mac } : {}), ...(name === "live" && sides.leases ? { leases: sides.leases } : {}) });
      if ("problem" in placed) {
        problem = failed(rule, "bad-fixed-address", `network "${rule.network}": ${placed.problem.message}`, `${placed.problem.hint}, then change this statement`);
        continue;
      }
      if (placed.subnet.dhcpHosts.some((h) => sameHost(h, entry))) continue;
      const clashes = clashesWith(placed.subnet, entry);
      // Entries of ours for this NIC, address or name that a statement no longer
      // declares are deleted above; anything else in the way is not ours to touch.
      const foreign = clashes.filter((h) => !isOwned(owned, rule.network, h) || declared(rule.network, h));
      if (foreign.length > 0) {
        problem = conflict(rule, entry, foreign[0] as DhcpHost, sides, name);
        continue;
      }
      index[name] = placed.parentIndex;
    }
    if (problem) {
      states.push(problem);
      // Still ours where it stands already: keep the record, so it is removed once the statement goes.
      if (isOwned(owned, rule.network, entry)) record.push({ network: rule.network, entry });
      continue;
    }
    const live = index.live ?? -1;
    const config = index.config ?? -1;
    if (live < 0 && config < 0) {
      const isOurs = isOwned(owned, rule.network, entry);
      if (isOurs) record.push({ network: rule.network, entry });
      const present = sides.live && sides.config ? "live and persistent" : sides.live ? "live (transient network)" : "persistent (the network is not running)";
      states.push({ rule, state: "live", detail: `${hostXml(entry)} is in network "${rule.network}" (${present})${isOurs ? "" : "; added by hand, not by virt-hooks: kept when this statement goes"}` });
      continue;
    }
    pushChange(adds, { verb: "add", network: rule.network, entry, rule }, live, config);
    record.push({ network: rule.network, entry });
    states.push({ rule, state: "pending", detail: `${hostXml(entry)} to add to network "${rule.network}" (${where(live >= 0, config >= 0)})` });
  }
  return { changes: [...deletes, ...adds], states, owned: record };
}

/** One virsh call when both sides take the same change at the same <ip>, else one per side. */
function pushChange(out: HostChange[], c: Omit<HostChange, "parentIndex" | "live" | "config">, live: number, config: number): void {
  if (live >= 0 && live === config) out.push({ ...c, parentIndex: live, live: true, config: true });
  else {
    if (live >= 0) out.push({ ...c, parentIndex: live, live: true, config: false });
    if (config >= 0) out.push({ ...c, parentIndex: config, live: false, config: true });
  }
}

function failed(rule: HostRule, code: string, message: string, hint: string): HostEntryState {
  return { rule, state: "failed", detail: message, diagnostic: error(code, rule.span, message, hint) };
}

/** A hand-added entry in the way: reported with the command that frees its place, never changed. */
function conflict(rule: HostRule, entry: DhcpHost, other: DhcpHost, sides: NetworkSides, side: SideName): HostEntryState {
  const what = entry.mac !== undefined && other.mac === entry.mac ? `MAC ${entry.mac}` : other.address === entry.address ? `address ${entry.address}` : `name "${entry.name}"`;
  const has = (n: NetworkInfo | undefined) => n?.subnets.some((s) => s.dhcpHosts.some((h) => sameHost(h, other))) ?? false;
  const live = has(sides.live);
  const config = has(sides.config);
  const match = `host ${rule.network} ${other.mac ?? rule.mac} ${other.address.includes(":") ? `[${other.address}]` : other.address}${other.name ? ` ${other.name}` : ""}`;
  return failed(
    rule,
    "fixed-address-conflict",
    `network "${rule.network}" already gives ${what} to ${hostXml(other)} (${side === "live" ? "running network" : "definition"}), an entry virt-hooks did not add: it is left as it is`,
    `to let this statement replace it: virsh net-update ${rule.network} delete ip-dhcp-host ${quotedXml(other)} ${flags(live, config)} && virt-hooks apply   (or make the statement match it: ${match})`,
  );
}

/**
 * The view with every declared entry the network could take and does not
 * contradict, as if it were there already: a forward by name then resolves on
 * a host whose network has not been converged yet (a guest that just migrated
 * in, before the next apply), and hooks need not wait for libvirt. An entry a
 * network refuses (outside its subnets, in a DHCP range) or contradicts (a
 * hand-added entry for the same MAC, address or name) is left out: the
 * network's own entry is what dnsmasq gives.
 */
export function withDeclaredHosts(view: HostView, hosts: readonly HostRule[]): HostView {
  if (hosts.length === 0) return view;
  let networks: Map<string, NetworkInfo> | undefined;
  for (const rule of hosts) {
    const net = (networks ?? view.networks).get(rule.network);
    if (!net) continue;
    const placed = placeEntry(net, rule.address, rule.family);
    if ("problem" in placed) continue;
    const entry = entryOfRule(rule);
    if (placed.subnet.dhcpHosts.some((h) => sameHost(h, entry)) || clashesWith(placed.subnet, entry).length > 0) continue;
    networks ??= new Map(view.networks);
    const subnets = net.subnets.map((s, i) => (i === placed.parentIndex ? { ...s, dhcpHosts: [...s.dhcpHosts, entry] } : s));
    networks.set(net.name, { ...net, subnets });
  }
  return networks ? { ...view, networks } : view;
}
