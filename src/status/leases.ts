// dnsmasq's view of who has which address: /var/lib/libvirt/dnsmasq/<bridge>.status,
// a JSON list libvirt's leaseshelper keeps. Shown beside our fixed addresses
// (forwards never follow leases: a lease that differs is a warning, not a fix).
import { readTextIfAny } from "../effects/read-text.js";
import { join } from "node:path";
import { canonicalAddress } from "../net/ip.js";

export interface Lease {
  readonly ip: string;
  readonly mac?: string;
  readonly hostname?: string;
  /** Seconds since the epoch. */
  readonly expiry?: number;
}

export function parseLeases(json: string): Lease[] {
  let list: unknown;
  try {
    list = JSON.parse(json);
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  const out: Lease[] = [];
  for (const e of list as Record<string, unknown>[]) {
    const ip = typeof e?.["ip-address"] === "string" ? canonicalAddress(e["ip-address"] as string) : undefined;
    if (!ip) continue;
    const mac = typeof e["mac-address"] === "string" ? (e["mac-address"] as string).toLowerCase() : undefined;
    const hostname = typeof e.hostname === "string" ? e.hostname : undefined;
    const expiry = typeof e["expiry-time"] === "number" ? (e["expiry-time"] as number) : undefined;
    out.push({ ip, ...(mac ? { mac } : {}), ...(hostname ? { hostname } : {}), ...(expiry !== undefined ? { expiry } : {}) });
  }
  return out;
}

/** Leases per bridge, read once; a bridge without a status file has none. */
export function leaseReader(dnsmasqDir: string): (bridge: string) => readonly Lease[] {
  const cache = new Map<string, Lease[]>();
  return (bridge) => {
    if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(bridge)) return [];
    let leases = cache.get(bridge);
    if (!leases) {
      try {
        leases = parseLeases(readTextIfAny(join(dnsmasqDir, `${bridge}.status`)) ?? "[]");
      } catch {
        leases = [];
      }
      cache.set(bridge, leases);
    }
    return leases;
  };
}
