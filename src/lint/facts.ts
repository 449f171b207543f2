// The host facts lint needs, read without spawning anything: domain and network
// definitions from /etc/libvirt/qemu, the host's addresses from the kernel
// (os.networkInterfaces), listening sockets from /proc/net. Whatever cannot be
// read stays undefined, so lint warns about nothing it does not know.
import { readdirSync, readFileSync } from "node:fs";
import { readTextIfAny } from "../effects/read-text.js";
import { socketHolders } from "../effects/socket-holders.js";
import { dirname, join } from "node:path";
import { canonicalAddress, type Family } from "../net/ip.js";
import type { HostView } from "../host/view.js";
import { readHostAddresses } from "../effects/host-addresses.js";
import type { RuleSet, Proto } from "../rules/model.js";
import type { FirewalldForwardPort, HostFacts, Listener } from "./lint.js";

function xmlNames(dir: string): string[] | undefined {
  try {
    return readdirSync(dir).filter((n) => n.endsWith(".xml")).map((n) => n.slice(0, -4));
  } catch {
    return undefined;
  }
}

export interface FactPaths {
  readonly qemuConfigDir: string;
  readonly firewalldConf?: string;
  /** /proc, for tests. */
  readonly proc?: string;
}

export function readHostFacts(paths: FactPaths, view: HostView, rules: RuleSet): HostFacts {
  const defined = xmlNames(paths.qemuConfigDir);
  const definedNets = xmlNames(join(paths.qemuConfigDir, "networks"));
  const addresses = readHostAddresses();
  const listeners = readListeners(paths.proc ?? "/proc", rules);
  const defaultInterface = rules.egress.length ? defaultInterfaces(paths.proc ?? "/proc") : undefined;
  const strict = paths.firewalldConf !== undefined ? strictForwardPorts(paths.firewalldConf) : undefined;
  const owned = strict && paths.firewalldConf !== undefined ? firewalldForwardPorts(join(dirname(paths.firewalldConf), "zones")) : undefined;
  return {
    ...(strict !== undefined ? { firewalldStrictForwardPorts: strict } : {}),
    ...(owned ? { firewalldForwardPorts: owned } : {}),
    ...(defined ? { domains: [...new Set([...defined, ...view.domains.keys()])] } : {}),
    ...(definedNets ? { networks: [...new Set([...definedNets, ...view.networks.keys()])] } : {}),
    ...(addresses ? { addresses } : {}),
    ...(defaultInterface ? { defaultInterface } : {}),
    ...(listeners ? { listeners } : {}),
  };
}

/**
 * firewalld >= 2.3's StrictForwardPorts= (default no). Read from its config
 * file, not over D-Bus: lint spawns nothing and talks to no daemon. Undefined
 * when the file is absent (no firewalld, or one that predates the option).
 */
export function strictForwardPorts(confPath: string): boolean | undefined {
  const text = readTextIfAny(confPath, 1 << 20);
  if (text === undefined) return undefined;
  let value: boolean | undefined;
  for (const line of text.split("\n")) {
    const m = /^\s*StrictForwardPorts\s*=\s*(\S*)\s*$/i.exec(line);
    if (m) value = /^(yes|true|1)$/i.test(m[1] ?? "");
  }
  return value ?? false;
}

/**
 * The ports of firewalld's forward-ports in its permanent zones (zones/*.xml beside
 * firewalld.conf: where `firewall-cmd --permanent --add-forward-port` writes), e.g.
 * <forward-port port="8080-8081" protocol="tcp" to-port="80" to-addr="192.168.122.5"/>.
 * Runtime-only ones are not in a file and are not seen.
 */
export function firewalldForwardPorts(zonesDir: string): FirewalldForwardPort[] | undefined {
  let names: string[];
  try {
    names = readdirSync(zonesDir).filter((n) => n.endsWith(".xml"));
  } catch {
    return undefined;
  }
  const out: FirewalldForwardPort[] = [];
  for (const name of names) {
    // Bounded, regular files only (read-text.ts): a zone file is root's, but lint must never hang on one.
    const text = readTextIfAny(join(zonesDir, name), 1 << 20);
    if (text === undefined) continue;
    for (const [el] of text.matchAll(/<forward-port\b[^>]*>/g)) {
      const attr = (a: string) => new RegExp(`\\s${a}\\s*=\\s*["']([^"']*)["']`).exec(el)?.[1];
      const port = /^(\d+)(?:-(\d+))?$/.exec(attr("port") ?? "");
      const proto = attr("protocol");
      if (!port || !proto) continue;
      out.push({ proto, first: Number(port[1]), last: Number(port[2] ?? port[1]) });
    }
  }
  return out;
}

/** The interfaces of the default routes (/proc/net/route, /proc/net/ipv6_route): where an egress address would go. */
function defaultInterfaces(proc: string): { 4?: string; 6?: string } {
  const out: { 4?: string; 6?: string } = {};
  try {
    for (const line of readFileSync(join(proc, "net", "route"), "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1] === "00000000" && f[7] === "00000000" && f[0]) { out[4] = f[0]; break; }
    }
  } catch { /* no IPv4 routes table */ }
  try {
    for (const line of readFileSync(join(proc, "net", "ipv6_route"), "utf8").split("\n")) {
      const f = line.trim().split(/\s+/);
      if (f[0] === "0".repeat(32) && f[1] === "00" && f[9] && f[9] !== "lo") { out[6] = f[9]; break; }
    }
  } catch { /* no IPv6 */ }
  return out;
}

/** "0100007F" (little-endian words, as /proc/net prints them) -> "127.0.0.1"; 32 hex digits -> IPv6. */
export function procAddress(hex: string): string | undefined {
  if (hex.length === 8) {
    const n = parseInt(hex, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
  }
  if (hex.length === 32) {
    const groups: string[] = [];
    for (let w = 0; w < 4; w++) {
      const word = hex.slice(w * 8, w * 8 + 8);
      // Each 32-bit word is in host (little-endian) byte order.
      const bytes = (word.match(/../g) ?? []).reverse().join("");
      groups.push(bytes.slice(0, 4), bytes.slice(4, 8));
    }
    return canonicalAddress(groups.join(":"));
  }
  return undefined;
}

/** Listening sockets in /proc/net/{tcp,udp}{,6} text: TCP in LISTEN, UDP bound and unconnected. */
export function parseProcNet(text: string, proto: Proto, family: Family): (Listener & { inode: string })[] {
  const out: (Listener & { inode: string })[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [local, remote, st, inode] = [f[1] as string, f[2] as string, f[3] as string, f[9] as string];
    if (proto === "tcp" ? st !== "0A" : st !== "07" || !/^0+:0000$/.test(remote)) continue;
    const [hex, portHex] = local.split(":");
    const address = procAddress(hex ?? "");
    const port = parseInt(portHex ?? "", 16);
    if (!address || !(port > 0)) continue;
    out.push({ proto, family, address, port, inode });
  }
  return out;
}

function readListeners(proc: string, rules: RuleSet): Listener[] | undefined {
  const all: (Listener & { inode: string })[] = [];
  let readAny = false;
  for (const [file, proto, family] of [["tcp", "tcp", 4], ["tcp6", "tcp", 6], ["udp", "udp", 4], ["udp6", "udp", 6]] as const) {
    try {
      all.push(...parseProcNet(readFileSync(join(proc, "net", file), "utf8"), proto, family));
      readAny = true;
    } catch {
      /* no IPv6, or no /proc */
    }
  }
  if (!readAny) return undefined;
  // Name only the sockets some forward covers: scanning /proc/*/fd costs.
  const covered = all.filter((l) => rules.forwards.some((f) => f.protos.includes(l.proto) && l.port >= f.hostPorts.first && l.port <= f.hostPorts.last));
  const names = socketOwners(proc, new Set(covered.map((l) => l.inode)));
  return all.map(({ inode, ...l }) => (names.has(inode) ? { ...l, process: names.get(inode) as string } : l));
}

/** socket inode -> "comm[pid]" for the inodes asked about. */
function socketOwners(proc: string, inodes: ReadonlySet<string>): Map<string, string> {
  return new Map([...socketHolders(proc, inodes, true)].map(([inode, [h]]) => [inode, `${h?.comm}[${h?.pid}]`]));
}
