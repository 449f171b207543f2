// Reads what libvirt is running from its own status files, never from libvirt
// itself (a hook that calls libvirt deadlocks). Only the domains rules care
// about are parsed: domain status files are large.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseDomainXml, type DomainInfo } from "../libvirt/domain.js";
import { parseNetworkStatusXml, type NetworkInfo } from "../libvirt/network.js";
import type { HostView } from "../host/view.js";

export interface ReadView {
  readonly view: HostView;
  readonly problems: string[];
}

function xmlFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.endsWith(".xml"));
  } catch {
    return [];
  }
}

/** `domains`: names to read; undefined reads them all (status, plan). */
export function readHostView(runDir: string, domains?: ReadonlySet<string>): ReadView {
  const problems: string[] = [];
  const networks = new Map<string, NetworkInfo>();
  for (const file of xmlFiles(join(runDir, "network"))) {
    const path = join(runDir, "network", file);
    try {
      const n = parseNetworkStatusXml(readFileSync(path, "utf8"));
      networks.set(n.name, n);
    } catch (e) {
      problems.push(`${path}: ${(e as Error).message}`);
    }
  }
  const running = new Map<string, DomainInfo>();
  for (const file of xmlFiles(join(runDir, "qemu"))) {
    const name = file.slice(0, -4);
    if (domains && !domains.has(name)) continue;
    const path = join(runDir, "qemu", file);
    try {
      const d = parseDomainXml(readFileSync(path, "utf8"));
      running.set(d.name, d);
    } catch (e) {
      problems.push(`${path}: ${(e as Error).message}`);
    }
  }
  return { view: { domains: running, networks }, problems };
}
