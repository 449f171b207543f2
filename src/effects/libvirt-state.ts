// Reads what libvirt is running from its own status files, never from libvirt
// itself (a hook that calls libvirt deadlocks). Only the domains rules care
// about are parsed: domain status files are large.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseDomainStatusXml, statusPid, type DomainInfo } from "../libvirt/domain.js";
import { parseNetworkStatusXml, type NetworkInfo } from "../libvirt/network.js";
import type { HostView } from "../host/view.js";
import { xmlFiles } from "./status-identity.js";
import { openDomainStatusCache, type DomainStatusCache } from "./domain-status-cache.js";
import { readRegularFile } from "./read-text.js";

export interface ReadView {
  readonly view: HostView;
  readonly problems: string[];
}

/** A regular file's text, bounded and non-blocking (read-text.ts); throws why not. */
function readBounded(path: string): string {
  const r = readRegularFile(path);
  if ("problem" in r) throw new Error(r.problem);
  return r.text;
}

/**
 * `domains`: names to read; undefined reads them all (status, plan).
 * `cacheDir`: the state directory, where what each domain status file said is
 * kept for the next reader (effects/domain-status-cache.ts).
 */
export function readHostView(runDir: string, domains?: ReadonlySet<string>, cacheDir?: string): ReadView {
  const problems: string[] = [];
  const networks = new Map<string, NetworkInfo>();
  for (const file of xmlFiles(join(runDir, "network"))) {
    const path = join(runDir, "network", file);
    try {
      const n = parseNetworkStatusXml(readBounded(path));
      networks.set(n.name, n);
    } catch (e) {
      problems.push(`${path}: ${(e as Error).message}`);
    }
  }
  const running = new Map<string, DomainInfo>();
  // Between a domain's `stopped` and `release` its status file is still there
  // but its qemu is gone: that domain is stopping. Without this, any reconcile
  // in that window (the watcher woken by the stopped hook's own transaction,
  // another guest's hook) put its forwards back until `release` (seen on a
  // live migration's source). Judged only where these pids live: the /proc
  // beside libvirt's run directory (a test's scratch root has none).
  const proc = join(runDir, "..", "..", "proc");
  const checkPids = existsSync(join(proc, "self"));
  // Opened at the first status file to read: an event whose own domain is the
  // only one the rules name (its XML replaces that file) touches no cache.
  let cache: DomainStatusCache | undefined;
  const present = new Set<string>();
  for (const file of xmlFiles(join(runDir, "qemu"))) {
    const name = file.slice(0, -4);
    present.add(name);
    if (domains && !domains.has(name)) continue;
    const path = join(runDir, "qemu", file);
    try {
      if (cacheDir !== undefined) cache ??= openDomainStatusCache(cacheDir);
      const read = cache?.read(name, path) ?? { text: readBounded(path), id: "" };
      const pid = "cached" in read ? read.cached.pid : statusPid(read.text);
      if (checkPids && pid !== undefined && !existsSync(join(proc, String(pid)))) continue;
      let d: DomainInfo;
      if ("cached" in read) {
        d = read.cached.info;
      } else {
        d = parseDomainStatusXml(read.text);
        cache?.remember(name, read.id, pid === undefined ? { info: d } : { pid, info: d });
      }
      running.set(d.name, d);
    } catch (e) {
      problems.push(`${path}: ${(e as Error).message}`);
    }
  }
  cache?.save(present);
  return { view: { domains: running, networks }, problems };
}

/** One running domain's status file, parsed; undefined when there is none or it does not read. */
export function readDomainStatus(runDir: string, name: string): DomainInfo | undefined {
  try {
    return parseDomainStatusXml(readBounded(join(runDir, "qemu", `${name}.xml`)));
  } catch {
    return undefined;
  }
}
