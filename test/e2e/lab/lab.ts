// A libvirt host of our own: private mount + network namespaces (docs/lab.md),
// a real libvirtd and virtlogd started in them, virt-hooks installed by
// install.sh as their hooks, and further namespaces standing in for the
// outside world and for the services inside guests. Nothing reaches the host:
// /etc/libvirt, /run, /var/lib/libvirt, /usr/local ... are private directories,
// every command re-checks that it runs in the lab's network namespace, and
// dispose() kills every process of that namespace by PID.
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, run, SYSTEM_PATH, type Run } from "../../helpers/binary.js";
import { Journal } from "./journal.js";

export type Backend = "iptables" | "nftables";

/** Host paths given a private, empty (or copied) directory inside the lab. */
const PRIVATE_DIRS: readonly [path: string, copy: boolean][] = [
  ["/etc/libvirt", true],
  ["/run", false],
  ["/var/lib/libvirt", true],
  ["/var/cache/libvirt", false],
  ["/var/log/libvirt", false],
  // install.sh's prefix: binary, units, man pages, completion.
  ["/usr/local", false],
];

/** Runs inside the lab: refuses unless /proc/self/ns/net is the lab's ($1) and not the host's ($2). */
const GUARD = `ns=$(readlink /proc/self/ns/net)
if [ "$ns" != "$1" ] || [ "$ns" = "$2" ]; then echo "lab guard: in $ns, expected $1 (host $2): refusing $3" >&2; exit 125; fi
shift 2; exec "$@"`;

/** Bind-mounts each private directory ($2 $3 pairs) over its path; constant text, values are arguments. */
// sysfs shows the network namespace of whoever mounted it: the lab needs its own, or
// /sys/class/net (which the hook reads for taps and bridges) would show the host's devices.
const MOUNTS = `set -e
mount --make-rprivate /
mount -t sysfs sysfs /sys
while [ $# -gt 0 ]; do mount --bind "$1" "$2"; shift 2; done`;

/** libvirt's nftables backend runs `tc ... action csum`, which this kernel lacks (lab.md section 3). */
const TC_WRAPPER = `#!/bin/sh
case "$*" in *"action csum"*) exit 0 ;; esac
exec /usr/sbin/tc "$@"
`;

const NODE = process.execPath;
const TOOLS = join(REPO, "test", "e2e", "tools");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface GuestSpec {
  readonly name: string;
  readonly mac: string;
  /** type='network' source network, or type='bridge' source bridge. */
  readonly network?: string;
  readonly bridge?: string;
  /** ACPI on, so PCI devices can be hot-plugged (`virsh attach-interface --live`). */
  readonly hotplug?: boolean;
}

export interface StandIn {
  readonly ip: string;
  readonly prefix: number;
  readonly gateway: string;
  readonly ports: readonly number[];
  /** Also an IPv6 address (/64, no DAD) and default route, for dual-stack networks. */
  readonly ip6?: string;
  readonly gateway6?: string;
}

export class Lab {
  readonly journal: Journal;
  /** Long-running children (servers) started in the lab. */
  private readonly children: ChildProcess[] = [];
  /** key (a domain, or a name given to one of its NICs) -> the stand-in; `nic` picks the tap by MAC. */
  private readonly standIns = new Map<string, { veth: string; netns: string; domain?: string; nic?: string }>();

  private constructor(
    readonly root: string,
    readonly backend: Backend,
    private readonly holder: ChildProcess,
    readonly pid: number,
    readonly netns: string,
    private readonly hostNetns: string,
    journal: Journal,
  ) {
    this.journal = journal;
  }

  /** PATH of the lab's daemons: the tc wrapper first, then the system's. */
  get path(): string {
    return `${join(this.root, "bin")}:${SYSTEM_PATH}`;
  }

  static async start(backend: Backend): Promise<Lab> {
    const hostNetns = readlinkSync("/proc/self/ns/net");
    const root = mkdtempSync(join(tmpdir(), "virt-hooks-e2e-"));
    const binds: string[] = [];
    for (const [path, copy] of PRIVATE_DIRS) {
      const dir = join(root, path.slice(1).replace(/\//g, "-"));
      mkdirSync(dir, { recursive: true });
      if (copy && existsSync(path)) cpSync(path, dir, { recursive: true });
      binds.push(dir, path);
    }
    // A clean libvirt: no hooks, networks or domains the host may have defined.
    for (const d of ["hooks", "qemu", "qemu/networks"]) rmSync(join(root, "etc-libvirt", d), { recursive: true, force: true });
    mkdirSync(join(root, "etc-libvirt", "qemu", "networks", "autostart"), { recursive: true });
    mkdirSync(join(root, "bin"));
    writeFileSync(join(root, "bin", "tc"), TC_WRAPPER, { mode: 0o755 });
    appendConf(join(root, "etc-libvirt", "qemu.conf"), 'cgroup_controllers = [ ]\nsecurity_driver = "none"\nuser = "root"\ngroup = "root"\n');
    appendConf(join(root, "etc-libvirt", "network.conf"), `firewall_backend = "${backend}"\n`);
    const journal = await Journal.listen(join(root, "run", "systemd", "journal", "stdout"));

    const holder = spawn("unshare", ["-m", "-n", "--propagation", "private", "--", "sleep", "1800"], { stdio: "ignore", env: { PATH: SYSTEM_PATH } });
    const pid = holder.pid;
    if (!pid) throw new Error("could not spawn unshare");
    let netns = hostNetns;
    for (let i = 0; i < 500 && netns === hostNetns; i++) {
      try {
        netns = readlinkSync(`/proc/${pid}/ns/net`);
      } catch {
        /* not yet */
      }
      if (netns === hostNetns) await sleep(2);
    }
    const lab = new Lab(root, backend, holder, pid, netns, hostNetns, journal);
    if (netns === hostNetns) {
      await lab.dispose();
      throw new Error("the lab's network namespace never appeared");
    }
    await lab.must(["sh", "-c", MOUNTS, "mounts", ...binds]);
    const links = await lab.must(["ip", "-o", "link", "show"]);
    if (links.stdout.trim().split("\n").length !== 1) throw new Error(`a fresh lab should hold only lo:\n${links.stdout}`);
    await lab.must(["ip", "link", "set", "lo", "up"]);
    await lab.must(["mkdir", "-p", "/run/lock", "/run/libvirt"]);
    return lab;
  }

  /** argv run inside the lab (guarded), or inside one of its netns. */
  argv(argv: readonly string[], netns?: string): string[] {
    const inner = netns ? ["ip", "netns", "exec", netns, ...argv] : [...argv];
    return ["nsenter", "-t", String(this.pid), "-m", "-n", "--", "sh", "-c", GUARD, "guard", this.netns, this.hostNetns, ...inner];
  }

  exec(argv: readonly string[], o: { input?: string; netns?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
    return run(this.argv(argv, o.netns), { ...(o.input !== undefined ? { input: o.input } : {}), env: o.env ?? { PATH: this.path, LC_ALL: "C", LIBVIRT_DEFAULT_URI: "qemu:///system" } });
  }

  async must(argv: readonly string[], o: { input?: string; netns?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
    const r = await this.exec(argv, o);
    if (r.code !== 0) throw new Error(`lab: ${argv.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
    return r;
  }

  virsh(...args: string[]): Promise<Run> {
    return this.must(["virsh", "-q", ...args]);
  }

  /** install.sh, for real, inside the lab (its prefix and hooks dir are private here). */
  install(...args: string[]): Promise<Run> {
    return this.must(["bash", join(REPO, "install.sh"), "--no-build", ...args]);
  }

  /** virtlogd + libvirtd, daemonised; waits until libvirtd answers. */
  async startDaemons(): Promise<void> {
    if (!(await this.pidOf("virtlogd"))) await this.must(["virtlogd", "-d"]);
    await this.must(["libvirtd", "-d"]);
    await this.waitForLibvirt();
  }

  private async waitForLibvirt(): Promise<void> {
    for (let i = 0; i < 600; i++) {
      if ((await this.exec(["virsh", "-q", "version"])).code === 0) return;
      await sleep(50);
    }
    throw new Error("libvirtd did not answer within 30 s");
  }

  private async pidOf(daemon: string): Promise<number | undefined> {
    try {
      const pid = Number(readFileSync(join(this.root, "run", `${daemon}.pid`), "utf8").trim());
      return pid > 0 && existsSync(`/proc/${pid}`) && readlinkSync(`/proc/${pid}/ns/net`) === this.netns ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stops libvirtd (SIGTERM, by PID) and starts it again: running guests stay up. */
  async restartLibvirtd(): Promise<void> {
    const pid = await this.pidOf("libvirtd");
    const t0 = Date.now();
    if (pid) {
      process.kill(pid, "SIGTERM");
      // A loaded machine can take a while to shut libvirtd down; its pidfile lock goes with it.
      let seen = false;
      for (let i = 0; i < 800 && existsSync(`/proc/${pid}`) && !isZombie(pid); i++) {
        if (!seen && Date.now() - t0 > 3000) {
          seen = true;
          this.slowStops.push(`libvirtd (pid ${pid}) still running 3 s after SIGTERM:\n${threadsOf(pid)}`);
        }
        await sleep(50);
      }
      if (existsSync(`/proc/${pid}`) && !isZombie(pid)) throw new Error(`libvirtd (pid ${pid}) did not stop within 40 s of SIGTERM`);
    }
    const t1 = Date.now();
    await this.must(["libvirtd", "-d"]);
    await this.waitForLibvirt();
    this.restarts.push({ stopMs: t1 - t0, startMs: Date.now() - t1 });
  }

  /** Each restartLibvirtd's stop (SIGTERM to gone) and start (to answering) in ms. */
  readonly restarts: { stopMs: number; startMs: number }[] = [];
  /** What a libvirtd slow to stop was doing (its threads), for a failure's message. */
  readonly slowStops: string[] = [];

  /** `systemctl reload libvirtd`: SIGHUP. */
  async sighupLibvirtd(): Promise<void> {
    const pid = await this.pidOf("libvirtd");
    if (!pid) throw new Error("libvirtd is not running");
    process.kill(pid, "SIGHUP");
    await sleep(500);
    await this.waitForLibvirt();
  }

  writeRules(name: string, text: string): void {
    writeFileSync(join(this.root, "etc-libvirt", "hooks", "rules.d", name), text, { mode: 0o644 });
  }

  removeRules(name: string): void {
    rmSync(join(this.root, "etc-libvirt", "hooks", "rules.d", name), { force: true });
  }

  async defineNetwork(xml: string, start = true): Promise<void> {
    const file = join(this.root, `net-${Math.random().toString(36).slice(2)}.xml`);
    writeFileSync(file, xml);
    const name = /<name>([^<]+)<\/name>/.exec(xml)?.[1] as string;
    await this.virsh("net-define", file);
    if (start) await this.virsh("net-start", name);
  }

  async defineGuest(g: GuestSpec): Promise<void> {
    const source = g.network ? `<interface type='network'><source network='${g.network}'/>` : `<interface type='bridge'><source bridge='${g.bridge}'/>`;
    const xml = `<domain type='${existsSync("/dev/kvm") ? "kvm" : "qemu"}'><name>${g.name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>${g.hotplug ? "<features><acpi/></features>" : ""}
  <devices>${source}<mac address='${g.mac}'/><model type='e1000'/><rom enabled='no'/></interface>
    <graphics type='vnc' listen='127.0.0.1'/></devices></domain>`;
    const file = join(this.root, `dom-${g.name}.xml`);
    writeFileSync(file, xml);
    await this.virsh("define", file);
  }

  /** The tap libvirt gave a running guest's first NIC (from its status file). */
  tapOf(domain: string): string {
    const status = readFileSync(join(this.root, "run", "libvirt", "qemu", `${domain}.xml`), "utf8");
    const tap = /<target dev='([^']+)'/.exec(status)?.[1];
    if (!tap) throw new Error(`no tap in ${domain}'s status file`);
    return tap;
  }

  /** The tap of a running guest's NIC with this MAC (a hot-plugged one, a second NIC). */
  tapOfNic(domain: string, mac: string): string {
    const status = readFileSync(join(this.root, "run", "libvirt", "qemu", `${domain}.xml`), "utf8");
    const nic = status.split("<interface ").find((block) => block.includes(`<mac address='${mac}'/>`));
    const tap = nic && /<target dev='([^']+)'/.exec(nic.split("</interface>")[0] as string)?.[1];
    if (!tap) throw new Error(`no tap for ${mac} in ${domain}'s status file`);
    return tap;
  }

  /**
   * The service "inside" a guest: a netns holding the guest's address and MAC,
   * spliced onto the guest's own tap with tc mirred (what the bridge sends the
   * tap goes to the stand-in; what the stand-in sends enters as if from the
   * tap). So it is reachable exactly when the real tap is on the bridge.
   */
  async standIn(domain: string, mac: string, s: StandIn): Promise<void> {
    await this.makeStandIn(domain, mac, s);
  }

  /**
   * A stand-in for one NIC (by MAC) of a guest with several, e.g. a hot-plugged
   * one: `key` names it for splice() and guestNetns(); the server answers as `key`.
   */
  async standInNic(key: string, domain: string, mac: string, s: StandIn): Promise<void> {
    await this.makeStandIn(key, mac, s, domain);
  }

  /** `nicOf`: the guest whose NIC (by `mac`) the stand-in takes; absent: guest `domain`'s first NIC. */
  private async makeStandIn(domain: string, mac: string, s: StandIn, nicOf?: string): Promise<void> {
    const index = this.standIns.size + 1;
    const netns = `g${index}`;
    const veth = `sb${index}`;
    this.standIns.set(domain, { veth, netns, ...(nicOf !== undefined ? { domain: nicOf, nic: mac } : {}) });
    await this.must(["ip", "netns", "add", netns]);
    await this.must(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    await this.must(["ip", "link", "set", veth, "up"]);
    await this.must(["ip", "link", "set", "lo", "up"], { netns });
    await this.must(["ip", "link", "set", "eth0", "address", mac, "up"], { netns });
    await this.must(["ip", "addr", "add", `${s.ip}/${s.prefix}`, "dev", "eth0"], { netns });
    await this.must(["ip", "route", "add", "default", "via", s.gateway], { netns });
    if (s.ip6) {
      // Only the given address: no SLAAC one from libvirt's router advertisements (the netns's own sysctls).
      await this.must(["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=0", "net.ipv6.conf.eth0.autoconf=0"], { netns });
      await this.must(["ip", "-6", "addr", "add", `${s.ip6}/64`, "dev", "eth0", "nodad"], { netns });
      if (s.gateway6) await this.must(["ip", "-6", "route", "add", "default", "via", s.gateway6], { netns });
    }
    await this.serve(domain, s.ports, netns);
    await this.splice(domain);
  }

  /** (Re)connects a stand-in to its guest's current tap: after every guest start. */
  async splice(domain: string): Promise<void> {
    const s = this.standIns.get(domain);
    if (!s) throw new Error(`no stand-in for ${domain}`);
    const tap = s.domain !== undefined && s.nic !== undefined ? this.tapOfNic(s.domain, s.nic) : this.tapOf(domain);
    await this.exec(["tc", "qdisc", "del", "dev", s.veth, "clsact"]);
    for (const dev of [tap, s.veth]) await this.must(["tc", "qdisc", "replace", "dev", dev, "clsact"]);
    const all = ["u32", "match", "u32", "0", "0"];
    await this.must(["tc", "filter", "add", "dev", tap, "egress", ...all, "action", "mirred", "egress", "redirect", "dev", s.veth]);
    await this.must(["tc", "filter", "add", "dev", s.veth, "ingress", ...all, "action", "mirred", "ingress", "redirect", "dev", tap]);
  }

  /** The netns of a stand-in guest, for probes from inside it. */
  guestNetns(domain: string): string {
    const s = this.standIns.get(domain);
    if (!s) throw new Error(`no stand-in for ${domain}`);
    return s.netns;
  }

  /** "The internet": a client netns on its own link and subnet, the lab host being its router. */
  async outside(hostAddress: string, clientAddress: string, prefix: number, link = "up0", netns = "outside"): Promise<void> {
    await this.must(["ip", "netns", "add", netns]);
    await this.must(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    await this.must(["ip", "addr", "add", `${hostAddress}/${prefix}`, "dev", link]);
    await this.must(["ip", "link", "set", link, "up"]);
    await this.must(["ip", "link", "set", "lo", "up"], { netns });
    await this.must(["ip", "addr", "add", `${clientAddress}/${prefix}`, "dev", "eth0"], { netns });
    await this.must(["ip", "link", "set", "eth0", "up"], { netns });
    await this.must(["ip", "route", "add", "default", "via", hostAddress], { netns });
  }

  /** IPv6 on an outside() link: the host's and the client's address (no DAD), the host as the client's IPv6 router. */
  async outsideIPv6(hostAddress: string, clientAddress: string, prefix: number, link = "up0", netns = "outside"): Promise<void> {
    await this.must(["ip", "-6", "addr", "add", `${hostAddress}/${prefix}`, "dev", link, "nodad"]);
    await this.must(["ip", "-6", "addr", "add", `${clientAddress}/${prefix}`, "dev", "eth0", "nodad"], { netns });
    await this.must(["ip", "-6", "route", "add", "default", "via", hostAddress], { netns });
  }

  /** A TCP server (tools/tcp-serve.mjs) in a netns of the lab; resolves once it listens. */
  serve(name: string, ports: readonly number[], netns?: string): Promise<void> {
    return this.server("tcp-serve.mjs", [name, ...ports.map(String)], netns);
  }

  /** A tools/ server as a child of ours; resolves once it prints "ready". */
  private async server(tool: string, args: readonly string[], netns?: string): Promise<void> {
    const [cmd, ...rest] = this.argv([NODE, join(TOOLS, tool), ...args], netns) as [string, ...string[]];
    const child = spawn(cmd, rest, { stdio: ["ignore", "pipe", "pipe"], env: { PATH: this.path, LC_ALL: "C" } });
    this.children.push(child);
    await new Promise<void>((resolve, reject) => {
      let err = "";
      child.stderr?.on("data", (d) => (err += d));
      child.stdout?.on("data", (d) => String(d).includes("ready") && resolve());
      child.once("exit", (code) => reject(new Error(`${tool} ${args[0]} exited ${code}: ${err}`)));
    });
  }

  /** A UDP server (tools/udp-serve.mjs) in a netns of the lab; resolves once it is bound. */
  serveUdp(name: string, port: number, netns?: string): Promise<void> {
    return this.server("udp-serve.mjs", [name, String(port)], netns);
  }

  /** One UDP exchange from a netns: the server's line or "timeout"; `srcPort` keeps one conntrack flow across probes. */
  async probeUdp(address: string, port: number, from?: string, timeoutMs = 1500, srcPort = 0): Promise<string> {
    const r = await this.must([NODE, join(TOOLS, "udp-probe.mjs"), address, String(port), String(timeoutMs), String(srcPort)], from ? { netns: from } : {});
    return r.stdout.trim();
  }

  /** A long-running command in the lab (e.g. `virt-hooks watch`); killed by dispose() with the rest. */
  background(argv: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
    const [cmd, ...args] = this.argv(argv) as [string, ...string[]];
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env });
    this.children.push(child);
    return child;
  }

  /** One new TCP connection from a netns (or the lab host itself): the server's line, "refused" or "timeout". */
  async probe(address: string, port: number, from?: string, timeoutMs = 1500): Promise<string> {
    const r = await this.must([NODE, join(TOOLS, "tcp-probe.mjs"), address, String(port), String(timeoutMs)], from ? { netns: from } : {});
    return r.stdout.trim();
  }

  /** Probes until the answer matches (for repairs that happen in the background), or returns the last answer. */
  async probeUntil(address: string, port: number, from: string | undefined, want: RegExp, withinMs: number): Promise<{ reply: string; ms: number }> {
    const t0 = Date.now();
    for (;;) {
      const reply = await this.probe(address, port, from, 500);
      if (want.test(reply) || Date.now() - t0 > withinMs) return { reply, ms: Date.now() - t0 };
      await sleep(50);
    }
  }

  async iptablesSave(family: 4 | 6 = 4): Promise<string> {
    const r = await this.must([family === 4 ? "iptables-save" : "ip6tables-save"]);
    return r.stdout.split("\n").filter((l) => !l.startsWith("#")).join("\n");
  }

  async nftRuleset(): Promise<string> {
    return (await this.must(["nft", "list", "ruleset"])).stdout;
  }

  /** Every process whose network namespace is the lab's. */
  private labPids(): number[] {
    const pids: number[] = [];
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid === this.pid) continue;
      try {
        if (readlinkSync(`/proc/${pid}/ns/net`) === this.netns) pids.push(pid);
      } catch {
        /* gone or not ours to read */
      }
    }
    return pids;
  }

  /** Kills every process of the lab (daemons, guests, dnsmasq, servers) by PID, then the holder. */
  async dispose(): Promise<void> {
    for (const c of this.children) c.kill("SIGKILL");
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      for (const pid of this.labPids()) {
        try {
          process.kill(pid, signal);
        } catch {
          /* already gone */
        }
      }
      for (let i = 0; i < 40 && this.labPids().filter((p) => !isZombie(p)).length > 0; i++) await sleep(50);
    }
    this.holder.kill("SIGKILL");
    this.journal.close();
    if (this.root.startsWith(join(tmpdir(), "virt-hooks-e2e-"))) rmSync(this.root, { recursive: true, force: true });
  }
}

function appendConf(path: string, text: string): void {
  writeFileSync(path, (existsSync(path) ? readFileSync(path, "utf8") : "") + "\n# virt-hooks e2e lab\n" + text);
}

/** A process's threads (name, where each sleeps, kernel stack) and children: what a stuck daemon waits on. */
function threadsOf(pid: number): string {
  const read = (f: string) => {
    try {
      return readFileSync(f, "utf8").trim();
    } catch {
      return "?";
    }
  };
  const lines: string[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stack = read(`/proc/${pid}/task/${tid}/stack`).split("\n").map((l) => l.replace(/^\[<[0-9a-f]+>\] /, "").replace(/\+0x.*$/, "")).slice(0, 4).join(" < ");
      lines.push(`  ${tid} ${read(`/proc/${pid}/task/${tid}/comm`)} wchan=${read(`/proc/${pid}/task/${tid}/wchan`)} ${stack}`);
    }
    for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      const stat = read(`/proc/${p}/stat`);
      const ppid = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
      if (ppid === String(pid)) lines.push(`  child ${p}: ${read(`/proc/${p}/cmdline`).replace(/\0/g, " ")}`);
    }
  } catch (e) {
    lines.push(`  (${(e as Error).message})`);
  }
  return lines.join("\n");
}

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}
