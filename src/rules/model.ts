// The rule language as data: what the parser produces and everything after it
// consumes. Every statement keeps its span so any later stage can say where a
// problem came from.
import type { Cidr, Family } from "../net/ip.js";
import type { Span } from "./source.js";

export type Proto = "tcp" | "udp";

export interface PortRange {
  readonly first: number;
  readonly last: number;
}

export type ForwardTarget =
  | { readonly kind: "address"; readonly address: string; readonly family: Family }
  /** A libvirt domain, optionally pinned to one of its networks (`name@net`). */
  | { readonly kind: "domain"; readonly name: string; readonly network?: string; readonly span: Span };

export interface ForwardRule {
  readonly kind: "forward";
  readonly span: Span;
  readonly protos: readonly Proto[];
  /** Absent: any of the host's own addresses. */
  readonly hostAddress?: { readonly address: string; readonly family: Family };
  readonly hostPorts: PortRange;
  readonly target: ForwardTarget;
  /** Absent: the same ports as hostPorts. One port, or as many as hostPorts. */
  readonly targetPorts?: PortRange;
  readonly from: readonly Cidr[];
  readonly inInterface?: string;
}

export type Endpoint =
  | { readonly kind: "network"; readonly name: string; readonly span: Span }
  | { readonly kind: "cidr"; readonly cidr: Cidr };

export interface MasqueradeRule {
  readonly kind: "masquerade";
  readonly span: Span;
  readonly network: string;
}

export interface AcceptRule {
  readonly kind: "accept";
  readonly span: Span;
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly protos: readonly Proto[];
  readonly ports?: PortRange;
}

/** `uplink NETWORK IFACE`: a host interface enslaved into the network's bridge while it runs. */
export interface UplinkRule {
  readonly kind: "uplink";
  readonly span: Span;
  readonly network: string;
  readonly iface: string;
  /** Where IFACE was written, for errors about the interface itself. */
  readonly ifaceSpan: Span;
}

/** `route NETWORK DEST via GATEWAY`: a route through the network's bridge while it runs. */
export interface RouteRule {
  readonly kind: "route";
  readonly span: Span;
  readonly network: string;
  /** 0.0.0.0/0 or ::/0 for `default`. */
  readonly dest: Cidr;
  readonly isDefault: boolean;
  readonly gateway: string;
  readonly family: Family;
}

export type LinkRule = UplinkRule | RouteRule;

/**
 * `host NETWORK MAC IP [NAME]`: a DHCP host entry (a fixed address) that
 * `virt-hooks apply`, its units and the watcher keep in NETWORK, live and
 * persistent. Hooks never write it (a hook calling libvirt deadlocks); they
 * resolve forwards with it as if it were there already.
 */
export interface HostRule {
  readonly kind: "host";
  readonly span: Span;
  readonly network: string;
  /** As written (normalised); an IPv6 entry keeps it for the record but libvirt matches IPv6 by name. */
  readonly mac: string;
  readonly address: string;
  readonly family: Family;
  readonly name?: string;
}

/**
 * `egress from ADDRESS for TARGET`: the guest's new outbound connections leave
 * from ADDRESS (SNAT) instead of libvirt's masquerade address.
 * `map ADDRESS to TARGET`: 1:1 NAT, the same plus every port of ADDRESS (any
 * protocol) goes to the guest. TARGET resolves as a forward's does.
 */
export interface EgressRule {
  readonly kind: "egress" | "map";
  readonly span: Span;
  /** The host's address the guest leaves from (and, for map, is reached at). */
  readonly address: { readonly address: string; readonly family: Family };
  readonly addressSpan: Span;
  readonly target: ForwardTarget;
}

export type OnError = "warn" | "block";

export interface Settings {
  readonly onError: OnError;
  /** Put running guests' taps back on a network's bridge when it restarts. */
  readonly reattach: boolean;
  /** Which firewall to write to; auto follows libvirt. */
  readonly backend: "auto" | "iptables" | "nftables";
}

export const defaultSettings: Settings = { onError: "warn", reattach: true, backend: "auto" };

export type Rule = ForwardRule | MasqueradeRule | AcceptRule | EgressRule;

export interface RuleSet {
  readonly forwards: readonly ForwardRule[];
  readonly masquerades: readonly MasqueradeRule[];
  readonly accepts: readonly AcceptRule[];
  readonly uplinks: readonly UplinkRule[];
  readonly routes: readonly RouteRule[];
  readonly hosts: readonly HostRule[];
  /** `egress` and `map` statements, in file order. */
  readonly egress: readonly EgressRule[];
  readonly settings: Settings;
}

export const portCount = (r: PortRange) => r.last - r.first + 1;
export const formatPorts = (r: PortRange) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`);
