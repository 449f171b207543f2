// Issue 29 on booted hosts: an "internet" peer that says which source address
// each new TCP connection and UDP datagram arrived from, reachable from two
// hosts, and a probe that measures how long a guest's new connections left
// from another address (or failed) while something rebuilt the firewall.
//
//   host A up0 10.88.1.1 ── ia 10.88.1.2 ┐
//                                        ├ netns "internet" (in A's container): 198.51.100.1 on lo
//   host B up0 10.88.2.1 ── ib 10.88.2.2 ┘
//
// The peer is the hosts' upstream router: each host routes the "internet"
// (198.51.100.0/24) to it, and it routes the egress address to the host that runs the guest (its
// route is switched when the guest moves: the upstream's job, README `egress`).
// It lives in A's container (a named netns there); B's link is a veth whose
// end is moved into B's network namespace by PID. Nothing touches this machine's network.
import { spawnSync } from "node:child_process";
import type { Host } from "./boot.js";

export const PEER = "198.51.100.1";
/**
 * What the hosts route to the peer. Not a default route: the hosts' resolver (this machine's
 * nameserver, unreachable from them) would then wait for answers that never come, and libvirt's
 * migration waits with it (60 s instead of 2 s), where without a route it fails at once.
 */
const INTERNET = "198.51.100.0/24";
export const UPLINK = { a: { host: "10.88.1.1", peer: "10.88.1.2", dev: "ia" }, b: { host: "10.88.2.1", peer: "10.88.2.2", dev: "ib" } };
const TCP_PORT = 8080;
const UDP_PORT = 8053;

const run = (h: Host, cmd: string, what: string) => {
  const r = h.execSync(cmd);
  if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
  return r.stdout;
};

/** The peer in A's container, linked to A and B, answering each TCP connection and UDP datagram with the source address it saw. */
export function addInternet(a: Host, b: Host): void {
  run(a, `set -e
ip netns add internet
ip -n internet link set lo up; ip -n internet addr add ${PEER}/32 dev lo
ip netns exec internet sysctl -q -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip link add up0 type veth peer name ${UPLINK.a.dev} netns internet
ip addr add ${UPLINK.a.host}/24 dev up0; ip link set up0 up
ip -n internet addr add ${UPLINK.a.peer}/24 dev ${UPLINK.a.dev}; ip -n internet link set ${UPLINK.a.dev} up
ip route add ${INTERNET} via ${UPLINK.a.peer}
ip netns exec internet setsid node -e "
const net = require('net'), dgram = require('dgram');
const src = (a) => a.replace(/^::ffff:/, '');
net.createServer((s) => { s.on('error', () => {}); s.end(src(s.remoteAddress) + '\\\\n'); }).listen(${TCP_PORT});
const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(r.address + '\\\\n', r.port, r.address)); u.bind(${UDP_PORT}, '${PEER}');
" </dev/null >/dev/null 2>&1 &
for i in $(seq 50); do ip netns exec internet ss -ltn | grep -q ':${TCP_PORT} ' && break; sleep 0.1; done`, "internet peer on A");
  // B's link: created in the peer's namespace (through A's /run), its other end moved into B's by PID.
  const link = spawnSync("nsenter", [`--net=/proc/${a.pid}/root/run/netns/internet`, "ip", "link", "add", UPLINK.b.dev, "type", "veth", "peer", "name", "up0", "netns", String(b.pid)], { encoding: "utf8" });
  if (link.status !== 0) throw new Error(`internet link to B: ${link.stderr}`);
  run(a, `ip -n internet addr add ${UPLINK.b.peer}/24 dev ${UPLINK.b.dev} && ip -n internet link set ${UPLINK.b.dev} up && ip netns exec internet sysctl -q -w net.ipv4.conf.${UPLINK.b.dev}.rp_filter=0`, "peer's side of B's link");
  run(b, `ip addr add ${UPLINK.b.host}/24 dev up0 && ip link set up0 up && ip route add ${INTERNET} via ${UPLINK.b.peer}`, "B's uplink");
}

/** The upstream routes `addr` to the host behind `via` (A's or B's side of the peer). */
export function routeTo(a: Host, addr: string, via: "a" | "b"): void {
  run(a, `ip -n internet route replace ${addr}/32 via ${UPLINK[via].host}`, `route ${addr} to ${via}`);
}

/** A guest stand-in without a domain (another guest of `default`: no statement names it). */
export function addOther(h: Host, ns: string, veth: string, ip: string): void {
  run(h, `set -e
ip netns add ${ns}; ip link add ${veth} type veth peer name eth0 netns ${ns}; ip link set ${veth} master virbr0 up
ip -n ${ns} link set lo up; ip -n ${ns} addr add ${ip}/24 dev eth0; ip -n ${ns} link set eth0 up
ip -n ${ns} route add default via 192.168.122.1
for i in $(seq 40); do bridge link show dev ${veth} | grep -q forwarding && break; sleep 0.2; done`, `stand-in ${ns}`);
}

/** The source address the peer saw for one new TCP connection from netns `ns` of host `h` ("-" when none came back). */
export function tcpFrom(h: Host, ns: string): string {
  return h.execSync(`ip netns exec ${ns} timeout 3 bash -c 'exec 3<>/dev/tcp/${PEER}/${TCP_PORT} && read -t 2 l <&3 && echo "$l"'`).stdout.trim() || "-";
}

/**
 * The same for one UDP datagram (a new flow: a new source port each time). The answer is read by
 * `head` (one read of the whole datagram): bash's `read` takes one byte and the kernel drops the rest.
 */
export function udpFrom(h: Host, ns: string): string {
  return h.execSync(`ip netns exec ${ns} timeout 3 bash -c 'exec 3<>/dev/udp/${PEER}/${UDP_PORT} && echo x >&3 && timeout 2 head -n 1 <&3'`).stdout.trim() || "-";
}

export interface SourceSample { t: number; src: string }

/**
 * In netns `ns` of host `h`: a new TCP connection to the peer every ~60-100 ms,
 * one "epoch-ms SOURCE" line per attempt ("-" when it failed: an attempt
 * without an answer gives up after 200 ms, as the forwards' probe in scene.ts). Started detached; stopped by its PID.
 */
export class SourceProbe {
  private constructor(private readonly host: Host, private readonly pid: number, private readonly file: string) {}

  static start(host: Host, ns: string, tag: string): SourceProbe {
    const file = `/tmp/egress-probe-${tag}.log`;
    // -k: an attempt whose shell ignores the TERM is killed 0.2 s later, so the loop never stops sampling.
    const loop = `while :; do t=$(date +%s%3N); l=$(timeout -k 0.2 0.2 bash -c 'exec 3<>/dev/tcp/${PEER}/${TCP_PORT} && read -t 0.2 l <&3 && echo "$l"' 2>/dev/null); echo "$t \${l:--}"; sleep 0.05; done`;
    const r = host.execSync(`: > ${file}; ip netns exec ${ns} setsid bash -c '${loop.replace(/'/g, `'\\''`)}' </dev/null >${file} 2>/dev/null & echo $!`);
    const pid = Number(r.stdout.trim());
    if (!pid) throw new Error(`egress probe did not start: ${r.stderr}`);
    return new SourceProbe(host, pid, file);
  }

  samples(): SourceSample[] {
    return this.host.execSync(`cat ${this.file}`).stdout.trim().split("\n").filter(Boolean).map((l) => {
      const [t = "0", src = "-"] = l.split(" ");
      return { t: Number(t), src };
    });
  }

  /** The loop and its children as the kernel sees them (state, where each sleeps): for a probe that stopped sampling. */
  processes(): string {
    return this.host.execSync(`for p in ${this.pid} $(pgrep -P ${this.pid}) $(pgrep -P "$(pgrep -d, -P ${this.pid})" 2>/dev/null); do [ -r /proc/$p/stat ] && echo "$p $(cut -d' ' -f3 /proc/$p/stat) $(cat /proc/$p/wchan 2>/dev/null) $(tr '\\0' ' ' </proc/$p/cmdline | cut -c1-80)"; done; true`).stdout.trim();
  }

  stop(): SourceSample[] {
    this.host.execSync(`kill ${this.pid} 2>/dev/null; true`);
    return this.samples();
  }
}

/** How long after `since` new connections left from another address (failed attempts do not count; 0 when none did). */
export const wrongSourceMs = (s: SourceSample[], since: number, want: string): number => outageSpanMs(s.filter((x) => x.src !== "-"), since, want);

/**
 * How long new connections after `since` did not arrive from `want`: from the first attempt that
 * did not to the first good one after the last that did not (bursts and the good attempts
 * between them included; 0 when none failed; Infinity when never back). scene.ts's outageMs
 * counts the first burst only.
 */
export function outageSpanMs(s: SourceSample[], since: number, want: string): number {
  const after = s.filter((x) => x.t >= since);
  const first = after.findIndex((x) => x.src !== want);
  if (first < 0) return 0;
  let last = first;
  after.forEach((x, i) => { if (x.src !== want) last = i; });
  const back = after.slice(last).find((x) => x.src === want);
  return back ? back.t - after[first]!.t : Infinity;
}

/** What the outage after `since` was made of: attempts from another source (by source), and failed ones. */
export function outageMix(s: SourceSample[], since: number, want: string): string {
  const bad = s.filter((x) => x.t >= since && x.src !== want);
  const by = new Map<string, number>();
  for (const x of bad) by.set(x.src === "-" ? "failed" : `from ${x.src}`, (by.get(x.src === "-" ? "failed" : `from ${x.src}`) ?? 0) + 1);
  return bad.length ? [...by].map(([k, n]) => `${n} ${k}`).join(", ") : "none";
}
