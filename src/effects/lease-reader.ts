// dnsmasq's lease files read from disk (libvirt/leases.ts parses them):
// bounded, non-blocking, regular files only (read-text.ts), once per bridge.
// A hostname in them is the guest's choice: text/escape.ts before it is shown.
import { join } from "node:path";
import { parseLeases, type Lease } from "../libvirt/leases.js";
import { readTextIfAny } from "./read-text.js";

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
