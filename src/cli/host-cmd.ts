// `virt-hooks host add NETWORK MAC IP [NAME]` and `virt-hooks host del
// NETWORK MAC|IP|NAME`: a network's DHCP host entries (fixed addresses),
// changed live and persistently by `virsh net-update` (the second article's
// net-edit + net-destroy + net-start, without the restart). Admin CLI only:
// a hook must never call libvirt. Everything is checked first against the
// network as libvirt runs it (/run/libvirt/network/NET.xml) or, when it is not
// running, its persistent definition; every refusal says how to fix it.
import { existsSync } from "node:fs";
import { readTextIfAny } from "../effects/read-text.js";
import { join } from "node:path";
import type { Paths } from "../config/paths.js";
import { findTool, runTool, type RunTool } from "../effects/exec.js";
import { parseNetworkStatusXml, type DhcpHost, type NetworkInfo } from "../libvirt/network.js";
import { entryOf, firstFree, HOSTNAME, hostXml, placeEntry } from "../libvirt/dhcp-host.js";
import { canonicalAddress, familyOf, normalMac } from "../net/ip.js";
import { leaseReader } from "../effects/lease-reader.js";
import type { Lease } from "../libvirt/leases.js";
import { shown } from "../rules/diagnostic.js";
import { UNPRINTABLE } from "../rules/parse.js";

export interface HostCmdIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** 0 done (or nothing to do), 1 refused (the message says why and the fix), 2 usage, 3 virsh failed. */
export const HOST_EXIT = { ok: 0, refused: 1, usage: 2, failed: 3 } as const;

export const HOST_USAGE = "usage: virt-hooks host add NETWORK MAC IP [NAME]\n       virt-hooks host del NETWORK MAC|IP|NAME";

class Refusal {
  constructor(readonly message: string, readonly hint?: string) {}
}

const refuse = (message: string, hint?: string): never => {
  throw new Refusal(message, hint);
};

interface LoadedNetwork {
  readonly info: NetworkInfo;
  readonly active: boolean;
  /** Defined (not transient): --config applies. */
  readonly persistent: boolean;
}

function loadNetwork(paths: Paths, name: string): LoadedNetwork {
  if (name.length === 0 || name.includes("/") || UNPRINTABLE.test(name)) refuse(`${shown(name)} is not a network name`, "list the networks with: virsh net-list --all");
  const statusPath = join(paths.libvirtRunDir, "network", `${name}.xml`);
  const configPath = join(paths.qemuConfigDir, "networks", `${name}.xml`);
  const persistent = existsSync(configPath);
  const path = existsSync(statusPath) ? statusPath : persistent ? configPath : undefined;
  if (!path) return refuse(`no network named ${shown(name)} on this host`, "list the networks with: virsh net-list --all");
  try {
    return { info: parseNetworkStatusXml(readTextIfAny(path) ?? ""), active: path === statusPath, persistent };
  } catch (e) {
    return refuse(`cannot read ${path}: ${(e as Error).message}`, "run as root (libvirt's files are root-only)");
  }
}

export { hostXml };

interface Change {
  readonly verb: "add" | "delete";
  readonly entry: DhcpHost;
  readonly parentIndex: number;
}

function planAdd(net: NetworkInfo, macText: string, ipText: string, name: string | undefined, leases: readonly Lease[]): Change | "present" {
  const address = canonicalAddress(ipText.replace(/^\[(.*)\]$/, "$1"));
  if (!address) return refuse(`${shown(ipText)} is not an IP address`, "write e.g. 192.168.122.20");
  const family = familyOf(address);
  const mac = normalMac(macText);
  if (!mac) return refuse(`${shown(macText)} is not a MAC address`, "write it as 52:54:00:12:34:56; a guest's: virsh domiflist DOMAIN");
  if (parseInt(mac.slice(0, 2), 16) & 1) refuse(`${mac} is a multicast MAC address, which no NIC has`, "use the guest NIC's address: virsh domiflist DOMAIN");
  if (name !== undefined && !HOSTNAME.test(name)) refuse(`${shown(name)} is not a host name`, "letters, digits and hyphens (dots between labels), e.g. web-1");
  const placed = placeEntry(net, address, family as 4 | 6, { mac, leases });
  if ("problem" in placed) return refuse(placed.problem.message, placed.problem.hint);
  const { subnet, parentIndex: index } = placed;
  const free = firstFree(subnet, [], leases);
  const suggestion = free ? ` (the first free one is ${free})` : "";
  if (family === 6 && name === undefined) refuse("an IPv6 host entry needs a NAME: libvirt's dnsmasq matches IPv6 clients by name (or DUID), not MAC", `virt-hooks host add ${net.name} ${mac} ${address} NAME`);
  // libvirt refuses a MAC in an IPv6 entry; the name is what matches.
  const entry = entryOf(mac, address, family as 4 | 6, name);
  const same = subnet.dhcpHosts.find((h) => h.address === entry.address && h.mac === entry.mac && h.name === entry.name);
  if (same) return "present";
  const delHint = (key: string) => `to change it: virt-hooks host del ${net.name} ${key} && virt-hooks host add ${net.name} ${macText} ${address}${name ? ` ${name}` : ""}`;
  const byMac = family === 4 ? subnet.dhcpHosts.find((h) => h.mac === mac) : undefined;
  if (byMac) refuse(`MAC ${mac} already has an entry on network "${net.name}": ${hostXml(byMac)}`, delHint(mac));
  const byIp = subnet.dhcpHosts.find((h) => h.address === address);
  if (byIp) refuse(`${address} is already given to ${hostXml(byIp)} on network "${net.name}"`, `pick another address${suggestion}, or ${delHint(address)}`);
  const byName = name === undefined ? undefined : subnet.dhcpHosts.find((h) => h.name === name);
  if (byName && name) refuse(`the name ${shown(name)} is already used by ${hostXml(byName)} on network "${net.name}"`, `pick another name, or ${delHint(name)}`);
  return { verb: "add", entry, parentIndex: index };
}

function planDel(net: NetworkInfo, key: string): Change[] {
  const mac = normalMac(key);
  const address = mac ? undefined : canonicalAddress(key.replace(/^\[(.*)\]$/, "$1"));
  const changes: Change[] = [];
  net.subnets.forEach((s, i) => {
    for (const h of s.dhcpHosts) {
      const hit = mac ? h.mac === mac : address ? h.address === address : h.name === key;
      if (hit) changes.push({ verb: "delete", entry: h, parentIndex: i });
    }
  });
  if (changes.length === 0) {
    const all = net.subnets.flatMap((s) => s.dhcpHosts.map(hostXml));
    refuse(
      `network "${net.name}" has no DHCP host entry with ${mac ? `MAC ${mac}` : address ? `address ${address}` : `name ${shown(key)}`}`,
      all.length ? `its entries: ${all.slice(0, 10).join(" ")}${all.length > 10 ? ` (and ${all.length - 10} more)` : ""}` : "it has no host entries at all",
    );
  }
  return changes;
}

/** argv for virsh: never a shell; the XML is one argument. */
export function virshArgv(network: string, c: Change, live: boolean, config: boolean): string[] {
  return ["net-update", network, c.verb, "ip-dhcp-host", hostXml(c.entry), "--parent-index", String(c.parentIndex), ...(live ? ["--live"] : []), ...(config ? ["--config"] : [])];
}

export async function runHostCmd(rest: readonly string[], paths: Paths, io: HostCmdIo, run: RunTool = runTool): Promise<number> {
  const [sub, network, ...more] = rest;
  const ok = (sub === "add" && (more.length === 2 || more.length === 3)) || (sub === "del" && more.length === 1);
  if (!ok || network === undefined) {
    io.err(`virt-hooks host: ${sub === "add" || sub === "del" ? "wrong number of arguments" : sub ? `unknown subcommand ${shown(sub)}` : "add or del?"}\n${HOST_USAGE}\n`);
    return HOST_EXIT.usage;
  }
  try {
    const net = loadNetwork(paths, network);
    const leases = net.active && net.info.bridge ? leaseReader(paths.dnsmasqDir)(net.info.bridge) : [];
    const changes = sub === "add" ? planAdd(net.info, more[0] as string, more[1] as string, more[2], leases) : planDel(net.info, more[0] as string);
    if (changes === "present") {
      io.out(`network "${network}" already has this entry; nothing to do\n`);
      return HOST_EXIT.ok;
    }
    const virsh = findTool("virsh");
    if (!virsh) return refuse("virsh is not installed", "install libvirt's client tools (Debian: apt install libvirt-clients)");
    const live = net.active;
    const config = net.persistent;
    for (const c of Array.isArray(changes) ? changes : [changes]) {
      const argv = virshArgv(network, c, live, config);
      const r = await run(virsh, argv);
      if (r.exitCode !== 0) {
        io.err(`virt-hooks host: virsh ${argv.join(" ")} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim()}\n`);
        return HOST_EXIT.failed;
      }
      const where = live && config ? "live and persistent" : live ? "live only: the network is transient" : "persistent only: the network is not running; it applies when it starts";
      io.out(`${c.verb === "add" ? "added" : "deleted"} ${hostXml(c.entry)} ${c.verb === "add" ? "to" : "from"} network "${network}" (${where})\n`);
    }
    if (sub === "add" && live) {
      io.out("the guest gets it at its next DHCP renewal (or restart its DHCP client); forwards that name it follow at once (the network's updated event)\n");
    }
    return HOST_EXIT.ok;
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    io.err(`virt-hooks host: ${e.message}\n${e.hint ? `  hint: ${e.hint}\n` : ""}`);
    return HOST_EXIT.refused;
  }
}
