// What our own records (effects/state-dir.ts) may hold, checked value by value
// before anything read back from disk reaches a command line: an `ip -batch`
// script is line-oriented, so one value holding a newline is a second command
// of the reader's choosing (issue 25, case 3). A record that fails is not
// believed; nothing in it is acted on. Pure.
import { canonicalAddress, familyOf, isDeviceName, normalMac, parseCidr } from "../net/ip.js";
import type { OwnedHost } from "./fixed-addresses.js";
import type { HostAddress, HostRoute, LinkRecords, MovedRecord } from "./links.js";
import { HOSTNAME } from "../libvirt/dhcp-host.js";
import type { DomainInfo } from "../libvirt/domain.js";

/** A network name only selects (argv of virsh, never a script line): any printable text libvirt allows. */
const NETWORK_NAME = /^[^\x00-\x1f\x7f/]{1,200}$/;
/** ip(8)'s words for scope and protocol. */
const WORD = /^[A-Za-z0-9_.-]{1,32}$/;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined);
/** An address in any notation inet_pton takes: no room for a space, let alone a newline. */
const address = (v: unknown): string | undefined => (typeof v === "string" && canonicalAddress(v) !== undefined ? v : undefined);
const int = (v: unknown, lo: number, hi: number): v is number => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
const optional = (v: unknown, ok: (v: unknown) => boolean) => v === undefined || ok(v);

export const isNetworkName = (v: unknown): v is string => typeof v === "string" && NETWORK_NAME.test(v);

export function validHostAddress(v: unknown): HostAddress | undefined {
  const a = obj(v);
  if (!a || (a.family !== 4 && a.family !== 6) || !address(a.local) || familyOf(a.local as string) !== a.family) return undefined;
  if (!int(a.prefixlen, 0, a.family === 4 ? 32 : 128) || typeof a.scope !== "string" || !WORD.test(a.scope)) return undefined;
  if (!optional(a.broadcast, (b) => address(b) !== undefined && familyOf(b as string) === 4) || !optional(a.dynamic, (d) => typeof d === "boolean")) return undefined;
  return a as unknown as HostAddress;
}

export function validHostRoute(v: unknown): HostRoute | undefined {
  const r = obj(v);
  if (!r || (r.family !== 4 && r.family !== 6) || typeof r.dst !== "string") return undefined;
  const dst = parseCidr(r.dst);
  if (!dst || dst.family !== r.family || !/^[0-9A-Fa-f.:]+\/\d{1,3}$/.test(r.dst)) return undefined;
  const sameFamily = (x: unknown) => address(x) !== undefined && familyOf(x as string) === r.family;
  if (!optional(r.gateway, sameFamily) || !optional(r.prefsrc, sameFamily) || !optional(r.dev, (d) => typeof d === "string" && isDeviceName(d))) return undefined;
  if (!optional(r.metric, (m) => int(m, 0, 0xffffffff)) || !optional(r.protocol, (p) => typeof p === "string" && WORD.test(p)) || !optional(r.scope, (s) => typeof s === "string" && WORD.test(s))) return undefined;
  return r as unknown as HostRoute;
}

export function validMovedRecord(v: unknown): MovedRecord | undefined {
  const m = obj(v);
  if (!m || !isNetworkName(m.network) || typeof m.bridge !== "string" || !isDeviceName(m.bridge)) return undefined;
  if (!Array.isArray(m.addresses) || !Array.isArray(m.routes)) return undefined;
  const addresses = m.addresses.map(validHostAddress);
  const routes = m.routes.map(validHostRoute);
  if (addresses.some((a) => !a) || routes.some((r) => !r)) return undefined;
  return { network: m.network, bridge: m.bridge, addresses: addresses as HostAddress[], routes: routes as HostRoute[] };
}

/** The records whose every value passes, keyed by a valid interface name; and how many were dropped. */
export function validLinkRecords(v: unknown): { records: LinkRecords; dropped: number } {
  const all = obj(v);
  if (!all) return { records: {}, dropped: v === undefined ? 0 : 1 };
  const records: Record<string, MovedRecord> = Object.create(null) as Record<string, MovedRecord>;
  let dropped = 0;
  for (const [iface, rec] of Object.entries(all)) {
    const valid = isDeviceName(iface) ? validMovedRecord(rec) : undefined;
    if (valid) records[iface] = valid;
    else dropped++;
  }
  return { records: { ...records }, dropped };
}

/** One entry of the fixed-address record ({network, mac?, ip, name?}), as a `host` rule could have declared it. */
export function validHostEntry(e: unknown): OwnedHost | undefined {
  const o = obj(e);
  if (!o || !isNetworkName(o.network) || !address(o.ip)) return undefined;
  const mac = o.mac === undefined ? undefined : typeof o.mac === "string" ? normalMac(o.mac) : null;
  if (mac === null || (o.mac !== undefined && mac !== o.mac)) return undefined;
  if (o.name !== undefined && !(typeof o.name === "string" && HOSTNAME.test(o.name))) return undefined;
  return { network: o.network, entry: { address: o.ip as string, ...(mac ? { mac } : {}), ...(typeof o.name === "string" ? { name: o.name } : {}) } };
}

/**
 * What the domain status cache (effects/domain-status-cache.ts) kept of a
 * guest, as parseDomainStatusXml could have produced it: the tap and bridge
 * names go into iptables, nft and `ip -batch` text.
 */
export function validDomainInfo(v: unknown): DomainInfo | undefined {
  const d = obj(v);
  if (!d || typeof d.name !== "string" || !NETWORK_NAME.test(d.name) || !Array.isArray(d.interfaces)) return undefined;
  if (!optional(d.uuid, (u) => typeof u === "string" && /^[0-9a-fA-F-]{1,64}$/.test(u))) return undefined;
  const device = (x: unknown) => typeof x === "string" && isDeviceName(x);
  for (const n of d.interfaces) {
    const i = obj(n);
    if (!i || typeof i.mac !== "string" || normalMac(i.mac) !== i.mac || typeof i.type !== "string" || !WORD.test(i.type)) return undefined;
    if (!optional(i.network, isNetworkName) || !optional(i.bridge, device) || !optional(i.tap, device)) return undefined;
    if (!optional(i.mtu, (m) => int(m, 1, 65535)) || !optional(i.isolated, (b) => typeof b === "boolean")) return undefined;
    if (!optional(i.vlanTags, (t) => Array.isArray(t) && t.every((x) => int(x, 0, 4095)))) return undefined;
  }
  return d as unknown as DomainInfo;
}
