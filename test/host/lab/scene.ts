// What the host tier's tests stand on inside a booted host: virt-hooks installed
// the way the README says, a stand-in guest behind libvirt's default network, a
// client outside the host, and a probe that measures outages with real TCP.
//
//   client netns 10.77.0.2 ──veth vc── host 10.77.0.1 ──DNAT── virbr0 ──veth vg── guest netns
//
// The stand-in guest is a network namespace on a veth in virbr0 (a paused qemu
// domain owns the MAC and a real tap, so libvirt and our hooks see a running
// guest; the namespace answers for it, since a paused guest's tap carries
// nothing). The probe is bash's /dev/tcp, so it runs on hosts without Node too;
// the stand-in's listeners are the host's Node, started before any test removes it.
import { spawnSync } from "node:child_process";
import type { Host } from "./boot.js";

export const CLIENT_SIDE = "10.77.0.1";
export const CLIENT = "10.77.0.2";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The checkout's tracked files that exist (hooks/ entry points dangle until installed). */
export function checkoutFiles(repo: string): string[] {
  return spawnSync("git", ["-C", repo, "ls-files"], { encoding: "utf8" }).stdout.trim().split("\n")
    .filter((f) => f && !f.startsWith("node_modules/") && !f.startsWith("dist/")
      && spawnSync("sh", ["-c", `test -e "$1" || test -L "$1"`, "x", `${repo}/${f}`]).status === 0);
}

/**
 * The checkout as it is on disk, or with VH_HOST_SOURCE=HEAD the last commit
 * only (`git archive`: what CI's clean clone holds, whatever else is being
 * edited in the working tree meanwhile).
 */
export function copyCheckout(host: Host, repo: string, dest: string): void {
  if (process.env.VH_HOST_SOURCE === "HEAD") {
    const a = spawnSync("git", ["-C", repo, "archive", "--format=tar", "HEAD"], { maxBuffer: 1 << 30 });
    if (a.status !== 0) throw new Error(`git archive failed: ${a.stderr}`);
    host.untar(a.stdout, dest);
  } else host.copyIn(repo, checkoutFiles(repo), dest);
}

/**
 * The checkout copied in and `./install.sh` run with the host's own Node/npm.
 * The host's network is private (its firewalld must never touch this machine's),
 * so npm runs offline from a copy of this machine's npm cache.
 * `prebuilt`: this machine's dist/virt-hooks comes along, and install.sh builds only
 * if it is older than the sources (its own rule). For the files whose subject is not
 * the build: the README's build from source takes ~1-1.5 min on a loaded 2-core
 * machine, and install.test.ts does it on every target.
 */
export function installFromCheckout(host: Host, repo: string, opts: { prebuilt?: boolean } = {}): { code: number; output: string; ms: number } {
  copyCheckout(host, repo, "/root/virt-hooks");
  if (opts.prebuilt && spawnSync("test", ["-x", `${repo}/dist/virt-hooks`]).status === 0) host.copyIn(repo, ["dist/virt-hooks"], "/root/virt-hooks");
  const home = process.env.HOME ?? "/root";
  if (spawnSync("test", ["-d", `${home}/.npm/_cacache`]).status === 0) host.copyIn(`${home}/.npm`, ["_cacache"], "/root/.npm");
  const r = host.execSync("cd /root/virt-hooks && npm_config_offline=true ./install.sh 2>&1");
  return { code: r.code, output: r.stdout, ms: r.ms };
}

/** Starts libvirt's default network and waits for its bridge. */
export function startDefaultNetwork(host: Host): void {
  const r = host.execSync(`set -e
virsh net-start default >/dev/null 2>&1 || true
virsh net-autostart default >/dev/null
for i in $(seq 50); do ip link show virbr0 >/dev/null 2>&1 && break; sleep 0.2; done
ip link show virbr0 >/dev/null`);
  if (r.code !== 0) throw new Error(`default network did not start: ${r.stderr}`);
}

export interface Guest { name: string; mac: string; ip: string; ports: number[]; ns: string; veth: string }

/**
 * A running (paused) qemu domain with one interface on `default`, and its
 * stand-in: netns `ns` with `ip`, answering "ok" on each port, on a veth in virbr0.
 */
export function addGuest(host: Host, g: Guest): void {
  const listeners = g.ports.map((p) =>
    // A probe that gives up mid-connection resets it: without an error handler on the
    // socket that ECONNRESET would kill the listener, and every later trial with it.
    `ip netns exec ${g.ns} setsid node -e "require('net').createServer(s=>{s.on('error',()=>{});s.end('ok\\\\n')}).listen(${p})" </dev/null >/dev/null 2>&1 &`).join("\n");
  const r = host.execSync(`set -e
cat > /tmp/${g.name}.xml <<X
<domain type='qemu'><name>${g.name}</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>
<devices><interface type='network'><source network='default'/><mac address='${g.mac}'/></interface>
<graphics type='vnc' listen='127.0.0.1'/></devices></domain>
X
virsh define /tmp/${g.name}.xml >/dev/null && virsh start ${g.name} >/dev/null && virsh suspend ${g.name} >/dev/null
ip netns add ${g.ns}; ip link add ${g.veth} type veth peer name eth0 netns ${g.ns}; ip link set ${g.veth} master virbr0 up
ip -n ${g.ns} link set lo up; ip -n ${g.ns} addr add ${g.ip}/24 dev eth0; ip -n ${g.ns} link set eth0 up
ip -n ${g.ns} route add default via 192.168.122.1
${listeners}
for i in $(seq 40); do bridge link show dev ${g.veth} | grep -q forwarding && break; sleep 0.2; done`);
  if (r.code !== 0) throw new Error(`guest ${g.name}: ${r.stderr}`);
}

/**
 * Puts a stand-in's veth back on virbr0 (a network restart deletes the bridge;
 * libvirt knows nothing of the veth) and waits until the port forwards: with
 * STP on (libvirt's default network) the kernel holds a new port in listening
 * and learning for its 2 s minimum forward delay each. Returns that wait in ms.
 *
 * Then both ends forget each other's link address: an ARP request sent while
 * the port was still learning was dropped, and the kernel asks again only
 * after its retransmit time (1 s), a wait any forward shares, hand-written or
 * ours (most likely how a CI run measured one network restart's outage at 1,029 ms).
 */
export function reattachStandIn(host: Host, g: Guest): number {
  const t0 = Date.now();
  host.execSync(`for i in $(seq 50); do ip link show virbr0 >/dev/null 2>&1 && break; sleep 0.1; done
ip link set ${g.veth} master virbr0 up
for i in $(seq 100); do bridge link show dev ${g.veth} | grep -q 'state forwarding' && break; sleep 0.05; done
ip neigh flush to ${g.ip} dev virbr0 2>/dev/null; ip -n ${g.ns} neigh flush dev eth0 2>/dev/null; true`);
  return Date.now() - t0;
}

/** The client outside the host: netns `client` on veth vc, 10.77.0.2 → 10.77.0.1. */
export function addClient(host: Host): void {
  const r = host.execSync(`set -e
ip netns add client; ip link add vc type veth peer name vc0 netns client; ip addr add ${CLIENT_SIDE}/24 dev vc; ip link set vc up
ip -n client link set lo up; ip -n client addr add ${CLIENT}/24 dev vc0; ip -n client link set vc0 up
ip -n client route add default via ${CLIENT_SIDE}`);
  if (r.code !== 0) throw new Error(`client: ${r.stderr}`);
}

/** One TCP connection from the client to addr:port that reads "ok". */
export function connectOnce(host: Host, port: number, addr = CLIENT_SIDE): boolean {
  return host.execSync(`ip netns exec client timeout 2 bash -c 'exec 3<>/dev/tcp/${addr}/${port} && read -t 1 l <&3 && [ "$l" = ok ]'`).code === 0;
}

/** Waits until a connection succeeds (or the deadline passes); the ms it took, or -1. */
export async function waitConnect(host: Host, port: number, withinMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < withinMs) {
    if (connectOnce(host, port)) return Date.now() - t0;
    await sleep(100);
  }
  return -1;
}

/** One probe attempt: when it began, whether "ok" came back, and if not the attempt's exit status (124: it gave up waiting). */
export interface Sample { t: number; ok: boolean; rc?: number }

export interface ProbeOptions {
  /** Where the client connects (the host's client-side address by default). */
  addr?: string;
  /**
   * How long one attempt waits for "ok" before it counts as failed. 200 ms by
   * default, so an outage reads at most ~250 ms longer than it was. A test that
   * asserts "never fails" gives 900 ms: still under TCP's first SYN
   * retransmission (1 s), so a dropped SYN still fails the attempt, while a
   * probe or stand-in the loaded machine did not schedule for 200 ms does not
   * (CI saw one such attempt in an apt upgrade: no rule had changed).
   */
  giveUpMs?: number;
}

/**
 * A probe in the client namespace: a new TCP connection every ~60-100 ms, one
 * "epoch-ms 1" or "epoch-ms 0 exit-status" line per attempt into a file in the
 * host. An attempt that gets no answer (a dropped SYN: firewalld's
 * drop-everything table while it reloads) gives up after `giveUpMs`.
 * Started detached; stopped by its PID.
 */
export class Probe {
  private constructor(private readonly host: Host, private readonly pid: number, private readonly file: string) {}

  static start(host: Host, port: number, tag: string, opts: ProbeOptions = {}): Probe {
    const addr = opts.addr ?? CLIENT_SIDE;
    const wait = ((opts.giveUpMs ?? 200) / 1000).toFixed(1);
    const file = `/tmp/probe-${tag}.log`;
    const loop = `while :; do t=$(date +%s%3N); timeout -k 0.2 ${wait} bash -c 'exec 3<>/dev/tcp/${addr}/${port} && read -t ${wait} l <&3 && [ "$l" = ok ]' 2>/dev/null; rc=$?; if [ $rc = 0 ]; then echo "$t 1"; else echo "$t 0 $rc"; fi; sleep 0.05; done`;
    const r = host.execSync(`: > ${file}; ip netns exec client setsid bash -c '${loop.replace(/'/g, `'\\''`)}' </dev/null >${file} 2>/dev/null & echo $!`);
    const pid = Number(r.stdout.trim());
    if (!pid) throw new Error(`probe did not start: ${r.stderr}`);
    return new Probe(host, pid, file);
  }

  samples(): Sample[] {
    return this.host.execSync(`cat ${this.file}`).stdout.trim().split("\n").filter(Boolean).map((l) => {
      const [t = "0", ok = "0", rc] = l.split(" ");
      return ok === "1" ? { t: Number(t), ok: true } : { t: Number(t), ok: false, rc: Number(rc) };
    });
  }

  /** Waits until the probe has seen a failure after `since` and then a success, or `withinMs` passes. */
  async awaitRecovery(since: number, withinMs: number): Promise<void> {
    const end = Date.now() + withinMs;
    while (Date.now() < end) {
      const after = this.samples().filter((s) => s.t >= since);
      const fail = after.findIndex((s) => !s.ok);
      // No failure within 1.5 s of the action: nothing broke.
      if (fail < 0 && after.length && after[after.length - 1]!.t - since > 1500) return;
      if (fail >= 0 && after.slice(fail).some((s) => s.ok)) return;
      await sleep(200);
    }
  }

  stop(): Sample[] {
    this.host.execSync(`kill ${this.pid} 2>/dev/null; true`);
    return this.samples();
  }
}

/**
 * How long connections failed after `since`: from the first failed attempt to
 * the first good one after it (0 when none failed; Infinity when never repaired).
 */
export function outageMs(samples: Sample[], since: number): number {
  const after = samples.filter((s) => s.t >= since);
  const fail = after.findIndex((s) => !s.ok);
  if (fail < 0) return 0;
  const back = after.slice(fail).find((s) => s.ok);
  return back ? back.t - after[fail]!.t : Infinity;
}

/** What a failed assertion needs to be understood: the host's firewall, bridge, stand-ins and our journal. */
export function diagnose(host: Host): string {
  return host.execSync(`echo '--- iptables-save'; iptables-save 2>&1 | grep -v '^#'
echo '--- nft list tables'; nft list tables
echo '--- bridge link'; bridge link
echo '--- listeners in netns guest'; ip netns exec guest ss -ltn 2>&1
echo '--- virsh list'; virsh list --all
echo '--- journal (virt-hooks, libvirtd, firewalld)'; journalctl -o short-monotonic -t virt-hooks -u libvirtd -u firewalld -n 40 --no-pager`).stdout;
}
