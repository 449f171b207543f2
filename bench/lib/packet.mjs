// Packet path: new TCP connections per second through ONE forward, with 1 and
// with 1,000 forwards installed. Topology, all private:
//
//   client netns 10.99.0.2 --veth-- [bench netns: 10.99.0.1, virbr0 192.168.122.1] --veth-on-virbr0-- guest netns 192.168.122.21:80
//
// The client connects to 10.99.0.1:8080; our DNAT sends it to the guest and
// libvirt-style chains would REJECT it unless our accept comes first. Trials
// alternate 1 / 1,000 so that drift of the machine hits both alike.
import { spawn } from "node:child_process";
import { BenchHost, guest } from "./host.mjs";
import { resetFirewall } from "./firewall.mjs";
import { must, Samples, timed } from "./measure.mjs";
import { assertPrivate, Peer } from "./netns.mjs";
import { buildTool } from "./tools.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function packetPath(b, backend, counts = [1, 1000], seconds = 2, threads = 4) {
  const ns = b.hostNetns;
  assertPrivate(ns);
  const tool = buildTool("tcp-rate");
  const g = guest(1);
  const host = new BenchHost(b.binary, backend);
  const peers = [];
  let server;
  try {
    host.setGuests([g]);
    host.running(g, true);
    await resetFirewall(ns, backend);
    const guestNs = await Peer.create(ns);
    const clientNs = await Peer.create(ns);
    peers.push(guestNs, clientNs);
    // The bench namespace plays the libvirt host: bridge, routing, our forward.
    await must(["ip", "link", "add", "virbr0", "type", "bridge", "stp_state", "0"]);
    await must(["ip", "addr", "add", "192.168.122.1/24", "dev", "virbr0"]);
    await must(["ip", "link", "set", "virbr0", "up"]);
    await must(["ip", "link", "add", "vnet0", "type", "veth", "peer", "name", "eth0", "netns", String(guestNs.pid)]);
    await must(["ip", "link", "set", "vnet0", "master", "virbr0", "up"]);
    await guestNs.run(["ip", "addr", "add", `${g.ip}/24`, "dev", "eth0"]);
    await guestNs.run(["ip", "link", "set", "eth0", "up"]);
    await guestNs.run(["ip", "route", "add", "default", "via", "192.168.122.1"]);
    await must(["ip", "link", "add", "vc0", "type", "veth", "peer", "name", "eth0", "netns", String(clientNs.pid)]);
    await must(["ip", "addr", "add", "10.99.0.1/24", "dev", "vc0"]);
    await must(["ip", "link", "set", "vc0", "up"]);
    await clientNs.run(["ip", "addr", "add", "10.99.0.2/24", "dev", "eth0"]);
    await clientNs.run(["ip", "link", "set", "eth0", "up"]);
    assertPrivate(ns);
    // Per-namespace sysctls of the bench namespace only.
    await must(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    // Connections end with RST: their conntrack entries would otherwise pile up for 10 s.
    await must(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_timeout_close=1"]).catch(() => {});

    server = spawn("nsenter", guestNs.argv([tool, "server", "80"]).slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise((ok) => server.stdout.once("data", ok));

    const rules = (n) => {
      const lines = ["forward tcp 10.99.0.1:8080 to " + g.name + ":80"];
      for (let i = 1; i < n; i++) lines.push(`forward tcp 10.99.0.1:${20000 + i} to ${g.name}:${1000 + i}`);
      return lines.join("\n") + "\n";
    };
    const rows = new Map(counts.map((n) => [n, b.row("packet", `new TCP connections/s through one forward, ${n} installed`, backend, { count: n, rate: new Samples(), failures: 0 })]));
    for (let trial = 0; trial < b.reps.packet; trial++) {
      for (const n of trial % 2 ? [...counts].reverse() : counts) {
        host.writeRules(rules(n));
        const applied = await timed(host.cliArgv("apply"), { env: host.env() });
        b.check(`apply ${n} for the packet path`, applied, true);
        await sleep(1200); // conntrack entries of the previous trial time out
        const r = await timed(clientNs.argv([tool, "client", "10.99.0.1", "8080", String(seconds), String(threads)]), { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
        const [okCount, failed] = r.stdout.trim().split(" ").map(Number);
        const row = rows.get(n);
        row.rate.add(okCount / seconds);
        row.failures += failed;
        if (r.code !== 0 || !(okCount > 0)) b.problems.push(`packet path ${backend} ${n}: ${r.stdout.trim()} ${r.stderr.trim()}`);
      }
    }
  } finally {
    server?.kill("SIGKILL");
    for (const p of peers) p.dispose();
    await timed(["ip", "link", "del", "virbr0"], { env: { PATH: "/usr/sbin:/sbin:/usr/bin:/bin" } });
    await timed(["ip", "link", "del", "vc0"], { env: { PATH: "/usr/sbin:/sbin:/usr/bin:/bin" } });
    host.dispose();
  }
}
