// dnsmasq's view of who has which address (pure; effects/lease-reader.ts reads it): /var/lib/libvirt/dnsmasq/<bridge>.status,
// a JSON list libvirt's leaseshelper keeps. Shown beside our fixed addresses
// (forwards never follow leases: a lease that differs is a warning, not a fix).
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
