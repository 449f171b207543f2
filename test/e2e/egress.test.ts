// End-to-end, egress and map (issue 29), on each firewall backend: a real
// libvirtd 11.3 with the installed hooks, stand-in guests on their real taps,
// and a peer in an "internet" namespace that says which source address each
// TCP connection and UDP datagram arrived from. The guest with `egress` leaves
// from the declared address, the others from libvirt's masquerade address;
// its own network, an `accept` peer network and the host see its own address;
// a mapped address reaches its guest on any port; a flow opened before the
// statement (same UDP source port) leaves from the new address at once
// (conntrack); forwards and hairpin keep working beside it; after our rules
// are deleted (the watcher repairs) and after a libvirtd restart (the
// reconnect hooks) it holds again, outage measured. lab.ts explains the lab.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRoot, SYSTEM_PATH } from "../helpers/binary.js";
import { Lab, type Backend } from "./lab/lab.js";

const HOST = "192.168.1.100";
const PEER = "192.168.1.2";
const EGRESS = "203.0.113.5";
const MAPPED = "203.0.113.6";
const BRIDGE_IP = "192.168.122.1";

const MAIL = { name: "mail", mac: "52:54:00:29:00:11", ip: "192.168.122.11" };
const OTHER = { name: "other", mac: "52:54:00:29:00:12", ip: "192.168.122.12" };
const ONE = { name: "one", mac: "52:54:00:29:00:13", ip: "192.168.122.13" };
const PEERG = { name: "peerg", mac: "52:54:00:29:00:21", ip: "10.20.0.10" };

const networks = [
  `<network><name>default</name><forward mode='nat'/><bridge name='virbr0' stp='off'/>
  <ip address='${BRIDGE_IP}' netmask='255.255.255.0'><dhcp><range start='192.168.122.100' end='192.168.122.254'/>
    ${[MAIL, OTHER, ONE].map((g) => `<host mac='${g.mac}' name='${g.name}' ip='${g.ip}'/>`).join("\n    ")}</dhcp></ip></network>`,
  `<network><name>netb</name><forward mode='nat'/><bridge name='virbr2' stp='off'/>
  <ip address='10.20.0.1' prefix='24'><dhcp><range start='10.20.0.100' end='10.20.0.200'/>
    <host mac='${PEERG.mac}' name='peerg' ip='${PEERG.ip}'/></dhcp></ip></network>`,
];

const RULES = `egress from ${EGRESS} for mail
map ${MAPPED} to one
forward tcp 1022 to other:22
accept default to netb tcp 5000
`;

const HOOK_ENV = { PATH: SYSTEM_PATH, LC_ALL: "C" };
const BACKENDS: Backend[] = ["iptables", "nftables"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot).each(BACKENDS)("e2e egress and map (%s backend)", (backend) => {
  let lab: Lab;
  const cli = (...args: string[]) => lab.exec(["/usr/local/sbin/virt-hooks", ...args]);
  const tcp = (from: string, port = 8080) => lab.probe(PEER, port, lab.guestNetns(from));
  const udp = (from: string, srcPort = 0) => lab.probeUdp(PEER, 8053, lab.guestNetns(from), 1500, srcPort);
  /** Until the peer sees `mail` arrive from the egress address again: how long that took. */
  const egressBack = async (withinMs: number) => {
    const r = await lab.probeUntil(PEER, 8080, lab.guestNetns(MAIL.name), new RegExp(`^internet:8080 ${EGRESS.replace(/\./g, "\\.")}$`), withinMs);
    expect(r.reply).toBe(`internet:8080 ${EGRESS}`);
    return r.ms;
  };

  beforeAll(async () => {
    lab = await Lab.start(backend);
    await lab.install();
    lab.writeRules("29-egress.rules", RULES);
    await lab.outside(HOST, PEER, 24, "up0", "internet");
    // The peer is the host's upstream router: check names the default route's interface in its hint.
    await lab.must(["ip", "route", "add", "default", "via", PEER]);
    await lab.serve("internet", [8080], "internet");
    await lab.serveUdp("internet", 8053, "internet");
    await lab.serve("host", [7070]);
    await lab.startDaemons();
    await Promise.all(networks.map((n) => lab.defineNetwork(n)));
    await Promise.all([MAIL, OTHER, ONE].map((g) => lab.defineGuest({ ...g, network: "default" })));
    await lab.defineGuest({ ...PEERG, network: "netb" });
    await Promise.all([MAIL, OTHER, ONE, PEERG].map((g) => lab.virsh("start", g.name)));
    for (const g of [MAIL, OTHER]) await lab.standIn(g.name, g.mac, { ip: g.ip, prefix: 24, gateway: BRIDGE_IP, ports: [22] });
    await lab.standIn(ONE.name, ONE.mac, { ip: ONE.ip, prefix: 24, gateway: BRIDGE_IP, ports: [22, 9999] });
    await lab.standIn(PEERG.name, PEERG.mac, { ip: PEERG.ip, prefix: 24, gateway: "10.20.0.1", ports: [5000] });
    await lab.serveUdp(MAIL.name, 53, lab.guestNetns(MAIL.name));
  }, 240_000);

  afterAll(async () => {
    await lab?.dispose();
  });

  it("1. the addresses are not the host's yet: egress and map wait, every guest leaves masqueraded, check says how to add them", async () => {
    const status = JSON.parse((await cli("status", "--json")).stdout) as { rules: { kind: string; state: string; detail: string }[] };
    expect(status.rules.filter((r) => r.kind === "egress" || r.kind === "map").map((r) => [r.kind, r.state, r.detail])).toEqual([
      ["egress", "waiting", `${EGRESS} is not an address of this host`],
      ["map", "waiting", `${MAPPED} is not an address of this host`],
    ]);
    const check = await cli("check");
    expect(check.stdout + check.stderr).toContain("1 forward(s), 0 masquerade(s), 1 accept(s), 0 fixed address(es), 2 egress/map in 1 file(s)");
    expect(check.stdout + check.stderr).toContain(`hint: if this host should own it: ip addr add ${EGRESS}/32 dev up0`);
    expect(await tcp(MAIL.name)).toBe(`internet:8080 ${HOST}`);
    // A UDP flow opened now (source port 40000), masqueraded: test 2 sends on it again.
    expect(await udp(MAIL.name, 40000)).toBe(`internet:8053 ${HOST}`);
    // The forward is live meanwhile.
    expect(await lab.probe(HOST, 1022, "internet")).toBe(`other:22 ${PEER}`);
  });

  it("2. the addresses added: the peer sees mail from the egress address (TCP, UDP, and the UDP flow opened before), the others from the masquerade address, the mapped guest from its address", async () => {
    for (const a of [EGRESS, MAPPED]) await lab.must(["ip", "addr", "add", `${a}/32`, "dev", "up0"]);
    const r = await cli("apply");
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const seen = {
      mailTcp: await tcp(MAIL.name),
      mailUdp: await udp(MAIL.name),
      mailUdpSameFlow: await udp(MAIL.name, 40000),
      otherTcp: await tcp(OTHER.name),
      otherUdp: await udp(OTHER.name),
      oneTcp: await tcp(ONE.name),
      oneUdp: await udp(ONE.name),
    };
    console.log(`[${backend}] the internet peer saw: ${JSON.stringify(seen)}`);
    expect(seen).toEqual({
      mailTcp: `internet:8080 ${EGRESS}`,
      mailUdp: `internet:8053 ${EGRESS}`,
      // Without the conntrack deletion this flow would keep libvirt's masquerade until it timed out.
      mailUdpSameFlow: `internet:8053 ${EGRESS}`,
      otherTcp: `internet:8080 ${HOST}`,
      otherUdp: `internet:8053 ${HOST}`,
      oneTcp: `internet:8080 ${MAPPED}`,
      oneUdp: `internet:8053 ${MAPPED}`,
    });
    const st = JSON.parse((await cli("status", "--json")).stdout) as { exitCode: number; rules: { kind: string; state: string; targets: string[] }[] };
    expect(st.rules.filter((x) => x.kind === "egress" || x.kind === "map").map((x) => [x.state, x.targets])).toEqual([
      ["live", [`${MAIL.ip} → ${EGRESS}`]],
      ["live", [`${MAPPED} ⇄ ${ONE.ip}`]],
    ]);
    expect(st.exitCode).toBe(0);
    const explain = await cli("explain", MAIL.name);
    expect(explain.stdout).toContain(`egress from ${EGRESS} for mail`);
    expect(explain.stdout).toContain(backend === "iptables" ? `-j SNAT --to-source ${EGRESS}` : `snat to ${EGRESS}`);
  });

  it("3. never rewritten: mail's own network, an accept peer network and the host see mail's own address", async () => {
    const mail = lab.guestNetns(MAIL.name);
    const seen = {
      ownNetwork: await lab.probe(OTHER.ip, 22, mail),
      acceptPeer: await lab.probe(PEERG.ip, 5000, mail),
      host: await lab.probe(BRIDGE_IP, 7070, mail),
      ownNetworkUdp: await lab.probeUdp(MAIL.ip, 53, lab.guestNetns(OTHER.name)),
    };
    console.log(`[${backend}] seen by mail's peers: ${JSON.stringify(seen)}`);
    expect(seen).toEqual({ ownNetwork: `other:22 ${MAIL.ip}`, acceptPeer: `peerg:5000 ${MAIL.ip}`, host: `host:7070 ${MAIL.ip}`, ownNetworkUdp: `mail:53 ${OTHER.ip}` });
  });

  it("4. 1:1 inbound on an unlisted port reaches the mapped guest; egress alone opens nothing inbound; forwards and hairpins keep working", async () => {
    const seen = {
      mappedUnlisted: await lab.probe(MAPPED, 9999, "internet"),
      mapped22: await lab.probe(MAPPED, 22, "internet"),
      egressInbound: await lab.probe(EGRESS, 22, "internet", 800),
      forward: await lab.probe(HOST, 1022, "internet"),
      forwardHairpin: await lab.probe(HOST, 1022, lab.guestNetns(MAIL.name)),
      mappedHairpin: await lab.probe(MAPPED, 9999, lab.guestNetns(OTHER.name)),
      mappedFromHost: await lab.probe(MAPPED, 9999),
    };
    console.log(`[${backend}] inbound: ${JSON.stringify(seen)}`);
    expect(seen).toMatchObject({
      mappedUnlisted: `one:9999 ${PEER}`,
      mapped22: `one:22 ${PEER}`,
      forward: `other:22 ${PEER}`,
      forwardHairpin: `other:22 ${BRIDGE_IP}`,
      mappedHairpin: `one:9999 ${BRIDGE_IP}`,
    });
    expect(seen.egressInbound).toMatch(/refused|timeout/);
    expect(seen.mappedFromHost).toMatch(/^one:9999 /);
  });

  it("5. rebuilds: our rules deleted (the watcher repairs), libvirtd restarted (reconnect hooks), the whole ruleset flushed and libvirtd restarted: mail leaves from the egress address again; outage measured", async () => {
    const started = lab.journal.lines.length;
    lab.background(["/usr/local/sbin/virt-hooks", "watch"], HOOK_ENV);
    await lab.journal.waitFor(/^watch: started/, started);
    await sleep(1000); // its nft monitor subscribed
    /** Polls our rules every ~25 ms until the egress translation is back: how long it was missing. */
    const rulesBack = async (t0: number) => {
      for (;;) {
        const text = backend === "iptables" ? (await lab.exec(["iptables-save", "-t", "nat"])).stdout : (await lab.exec(["nft", "list", "table", "ip", "virt_hooks"])).stdout;
        if (text.includes(backend === "iptables" ? "-A POSTROUTING -j VIRT_HOOKS_POST" : `snat to ${EGRESS}`) && text.includes(EGRESS)) return Date.now() - t0;
        if (Date.now() - t0 > 15_000) throw new Error("our rules did not come back within 15 s");
        await sleep(25);
      }
    };
    const mark = lab.journal.lines.length;
    const t0 = Date.now();
    if (backend === "iptables") await lab.must(["iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-j", "VIRT_HOOKS_POST"]);
    else await lab.must(["nft", "delete", "table", "ip", "virt_hooks"]);
    const deleted = await rulesBack(t0);
    const repaired = await lab.journal.waitFor(/^watch: repaired /, mark);
    await egressBack(5_000);
    // Probed throughout the restart: any answer from another source is an outage.
    let probing = true;
    const answers: { at: number; reply: string }[] = [];
    const prober = (async () => {
      while (probing) {
        answers.push({ at: Date.now(), reply: await lab.probe(PEER, 8080, lab.guestNetns(MAIL.name), 500) });
        await sleep(50);
      }
    })();
    await lab.restartLibvirtd();
    const restarted = await egressBack(10_000);
    probing = false;
    await prober;
    const wrong = answers.filter((a) => a.reply !== `internet:8080 ${EGRESS}`);
    const outage = wrong.length ? `${wrong.length} of ${answers.length} probes from another source (${[...new Set(wrong.map((w) => w.reply))].join(", ")}), over ${(wrong.at(-1)?.at ?? 0) - (wrong[0]?.at ?? 0)} ms` : `none (${answers.length} probes, all from ${EGRESS})`;
    console.log(`[${backend}] our rules deleted: back after ${deleted} ms (polled; the watcher: "${repaired}"); libvirtd restart: outage ${outage}; egress address seen ${restarted} ms after it answered again`);
    // Everything flushed (a firewall service reloading its saved rules), then libvirtd restarted:
    // libvirt rebuilds its rules, the reconnect hooks (and the watcher) ours.
    await lab.must(["nft", "flush", "ruleset"]);
    await lab.restartLibvirtd();
    const t2 = Date.now();
    const flushed = await egressBack(10_000);
    console.log(`[${backend}] whole ruleset flushed + libvirtd restarted: egress address seen ${flushed} ms after libvirtd answered again (${Date.now() - t2} ms)`);
    // A loaded 2-core machine (4 other engineers' tests): the watcher's own bound is 1 s; allow its start-up jitter.
    expect(deleted).toBeLessThan(2000);
    // Each restart's start, SIGTERM's end to libvirtd answering, holds every hook it runs (port-created);
    // its stop holds none. libvirtd's stop alone sometimes takes its own 30 s (virNetDaemonRun's finish
    // timer, then "Make forcefull daemon shutdown"): seen in about one run in ten here, with no child running
    // and its daemon-shutdown and udev-event threads waiting on each other; the lab's stop waits it out.
    const said = [JSON.stringify(lab.restarts), ...lab.slowStops, ...lab.journal.lines.slice(mark).map((l) => `${l.identifier}: ${l.text}`)].join("\n");
    for (const r of lab.restarts) expect(r.startMs, said).toBeLessThan(10_000);
    expect(await udp(MAIL.name)).toBe(`internet:8053 ${EGRESS}`);
    expect(await tcp(OTHER.name)).toBe(`internet:8080 ${HOST}`);
    expect(await lab.probe(MAPPED, 9999, "internet")).toBe(`one:9999 ${PEER}`);
  });

  it("6. the statement goes: mail leaves masqueraded again at once, the same UDP flow too; the mapped guest stops: its address answers nothing; it starts: its start hook maps it again", async () => {
    expect(await udp(MAIL.name, 40001)).toBe(`internet:8053 ${EGRESS}`);
    lab.writeRules("29-egress.rules", RULES.replace(`egress from ${EGRESS} for mail\n`, ""));
    expect((await cli("apply")).code).toBe(0);
    expect(await udp(MAIL.name, 40001)).toBe(`internet:8053 ${HOST}`);
    expect(await tcp(MAIL.name)).toBe(`internet:8080 ${HOST}`);
    await lab.virsh("destroy", ONE.name);
    expect(await lab.probe(MAPPED, 9999, "internet", 800)).toMatch(/refused|timeout/);
    const rules = backend === "iptables" ? await lab.iptablesSave() : await lab.nftRuleset();
    expect(rules).not.toContain(MAPPED);
    expect(rules).not.toContain(EGRESS);
    // Started again: its start hook alone brings the mapping back.
    await lab.virsh("start", ONE.name);
    await lab.splice(ONE.name);
    expect(await lab.probe(MAPPED, 9999, "internet")).toBe(`one:9999 ${PEER}`);
    expect(await tcp(ONE.name)).toBe(`internet:8080 ${MAPPED}`);
  });
});
