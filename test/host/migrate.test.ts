// Host tier, issue 17: many hosts. Two booted Debian hosts (vh-a, vh-b)
// joined by a veth (10.99.0.1 <-> 10.99.0.2), libvirtd on TCP without auth
// (lab only) and firewalld opening 16509/tcp and 49152-49215/tcp, the same
// rules.d on both — a `host` statement (the guest's fixed address) and a
// forward by name — and a real `virsh migrate --live --persistent
// --undefinesource` of a paused diskless qemu guest, both ways, on each
// target (lab/targets.ts: two Debian 12 hosts with libvirt 9.0, iptables
// backend; two Debian 13 hosts with libvirt 11.3 on either backend). On each host a stand-in netns on virbr0 holds the guest's address
// (a paused guest's tap carries nothing) and a client netns probes the
// forward. Then issue 29's `egress` on the same two hosts (lab/egress.ts: an
// "internet" peer linked to both): the translation follows the guest A -> B ->
// A, and survives firewalld's reload and restart and a libvirtd restart on the
// host that runs it, outage measured. Figures are printed with a "host-tier:" prefix.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import type { Host } from "./lab/boot.js";
import { bootTarget, describeTargets, rootOf } from "./lab/targets.js";
import { addClient, addGuest, connectOnce, diagnose, installFromCheckout, Probe, startDefaultNetwork, type Sample } from "./lab/scene.js";
import { addInternet, addOther, outageMix, outageSpanMs, routeTo, SourceProbe, tcpFrom, udpFrom, UPLINK, wrongSourceMs, type SourceSample } from "./lab/egress.js";

const REPO = resolve(__dirname, "../..");
const fig = (target: string, k: string, v: unknown) => console.log(`host-tier: [${target}] ${k} = ${v}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const GUEST = { name: "devstack", mac: "52:54:00:99:00:10", ip: "192.168.122.10", ports: [22], ns: "guest", veth: "vg" };
const PORT = 1122;
const RULES = `# the same file on every host (configuration management ships it)
host default ${GUEST.mac} ${GUEST.ip} ${GUEST.name}
forward tcp ${PORT} to ${GUEST.name}:22
`;
const LINK = { a: "10.99.0.1", b: "10.99.0.2" };
const MIGRATION_PORTS = "49152-49215/tcp";
const ENTRY = `<host mac='${GUEST.mac}' name='${GUEST.name}' ip='${GUEST.ip}'/>`;

/** A stand-in for the guest without a domain: the host it migrates to answers once its forward exists. */
function standIn(host: Host): void {
  const r = host.execSync(`set -e
ip netns add ${GUEST.ns}; ip link add ${GUEST.veth} type veth peer name eth0 netns ${GUEST.ns}; ip link set ${GUEST.veth} master virbr0 up
ip -n ${GUEST.ns} link set lo up; ip -n ${GUEST.ns} addr add ${GUEST.ip}/24 dev eth0; ip -n ${GUEST.ns} link set eth0 up
ip -n ${GUEST.ns} route add default via 192.168.122.1
ip netns exec ${GUEST.ns} setsid node -e "require('net').createServer(s=>s.end('ok\\\\n')).listen(22)" </dev/null >/dev/null 2>&1 &
for i in $(seq 40); do bridge link show dev ${GUEST.veth} | grep -q forwarding && ip netns exec ${GUEST.ns} ss -ltn | grep -q ':22 ' && break; sleep 0.2; done`);
  if (r.code !== 0) throw new Error(`stand-in: ${r.stderr}`);
}

/** libvirt on TCP without auth, a host UUID of its own (both roots are one image), the migration ports open. */
function libvirtOverTcp(host: Host, name: string): void {
  const r = host.execSync(`set -e
hostname ${name}; echo ${name} > /etc/hostname
uuid=$(cat /proc/sys/kernel/random/uuid)
for f in /etc/libvirt/libvirtd.conf /etc/libvirt/virtqemud.conf /etc/libvirt/virtproxyd.conf; do
  [ -f $f ] && printf 'listen_tcp = 1\\nauth_tcp = "none"\\nhost_uuid = "%s"\\n' $uuid >> $f
done
# Monolithic or modular: by the socket, which stays when libvirtd exits idle (Debian 13 runs it with --timeout 120).
if systemctl is-active -q libvirtd || systemctl is-active -q libvirtd.socket; then d=libvirtd; else d=virtproxyd; fi
systemctl stop $d.service >/dev/null 2>&1 || true
systemctl enable -q --now $d-tcp.socket
systemctl restart virtqemud.service >/dev/null 2>&1 || true
systemctl start $d.service
firewall-cmd -q --zone=public --add-port=16509/tcp --add-port=${MIGRATION_PORTS}`);
  if (r.code !== 0) throw new Error(`libvirt over TCP on ${name}: ${r.stderr}`);
}

const cursor = (h: Host) => h.execSync("journalctl -t virt-hooks -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p'").stdout.trim();
const journal = (h: Host, c: string, prio = "") => h.execSync(`journalctl -t virt-hooks -o cat ${prio ? `-p ${prio}` : ""} --after-cursor='${c}'`).stdout.trim().split("\n").filter(Boolean);
/** Our rules that lead to the guest, on either backend. */
const ourRules = (h: Host) =>
  Number(h.execSync(`{ iptables-save -t nat 2>/dev/null | grep -c -- '--to-destination ${GUEST.ip}:22'; nft list table ip virt_hooks 2>/dev/null | grep -c '${GUEST.ip}'; } | awk '{s+=$1} END {print s+0}'`).stdout.trim());
const entries = (h: Host, inactive: boolean) => h.execSync(`virsh net-dumpxml ${inactive ? "--inactive " : ""}default | grep '<host ' | sed 's/^ *//'`).stdout.trim();
const domstate = (h: Host) => h.execSync(`virsh domstate ${GUEST.name} 2>/dev/null || echo none`).stdout.trim();

/** Lines after a host's `stopped` that put rules back (`+N`): the guest's forwards must stay gone. */
const readdedAfterStop = (lines: readonly string[] = []) => {
  const at = lines.findIndex((l) => /qemu devstack stopped end/.test(l));
  return at < 0 ? [] : lines.slice(at + 1).filter((l) => /(ipv[46]) \+[1-9]/.test(l));
};

/** First and last successful probe after `since` (ms since epoch), or undefined. */
function span(samples: Sample[], since: number) {
  const ok = samples.filter((s) => s.t >= since && s.ok);
  return { first: ok[0]?.t, last: ok[ok.length - 1]?.t };
}

describeTargets("migrate", "host: live migration between two hosts", (t) => {
  const target = t.name;
  let a: Host;
  let b: Host;
  const hosts = () => [a, b] as const;
  /** Each host's journal cursor from just before rules.d arrived. */
  const rulesAt = new Map<Host, string>();

  beforeAll(async () => {
    const root = rootOf(t, REPO);
    const t0 = Date.now();
    [a, b] = await Promise.all([bootTarget(t, root, `vh-mig-a-${process.pid}`), bootTarget(t, root, `vh-mig-b-${process.pid}`)]);
    fig(target, "boot of two hosts (s)", ((Date.now() - t0) / 1000).toFixed(1));
    // The link: created in A's network namespace, its peer moved into B's by PID.
    const link = spawnSync("nsenter", ["-t", String(a.pid), "-n", "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", String(b.pid)], { encoding: "utf8" });
    if (link.status !== 0) throw new Error(`veth: ${link.stderr}`);
    a.execSync(`ip addr add ${LINK.a}/24 dev va && ip link set va up`);
    b.execSync(`ip addr add ${LINK.b}/24 dev vb && ip link set vb up`);
    for (const [h, name] of [[a, "vh-a"], [b, "vh-b"]] as const) {
      const i0 = Date.now();
      const r = installFromCheckout(h, REPO, { prebuilt: true });
      if (r.code !== 0) throw new Error(`install on ${name}: ${r.output.slice(-2000)}`);
      fig(target, `install on ${name} (s)`, ((Date.now() - i0) / 1000).toFixed(1));
      libvirtOverTcp(h, name);
      startDefaultNetwork(h);
      addClient(h);
      // Configuration management ships rules.d; nothing has applied it yet (the
      // units are stopped until each test says otherwise): the networks lack
      // the guest's fixed address. A's apply adds it in the first test; B's
      // unit after the guest has migrated there.
      h.execSync("systemctl stop virt-hooks-watch.service virt-hooks-apply.timer virt-hooks-reapply.service");
      rulesAt.set(h, cursor(h));
      h.execSync(`mkdir -p /etc/libvirt/hooks/rules.d && cat > /etc/libvirt/hooks/rules.d/50-devstack.rules`, RULES);
    }
    addGuest(a, GUEST);
    standIn(b);
    const conn = a.execSync(`virsh -c qemu+tcp://${LINK.b}/system hostname`);
    expect(conn.stdout.trim(), conn.stderr).toBe("vh-b");
  }, 1_800_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it("apply converges the declared fixed address into A's network, live and persistent, and records it as ours", () => {
    const r = a.execSync("virt-hooks apply");
    expect([0, 4], r.stderr + r.stdout).toContain(r.code);
    // Exactly one reconcile added it: this apply, or a unit that ran first.
    const added = journal(a, rulesAt.get(a) as string).filter((l) => l.includes(`fixed addresses: added ${ENTRY} to network "default" (live and persistent)`));
    expect(added, journal(a, rulesAt.get(a) as string).join("\n")).toHaveLength(1);
    fig(target, "A: the reconcile that added the fixed address", JSON.stringify(added[0]));
    expect(entries(a, false)).toBe(ENTRY);
    expect(entries(a, true)).toBe(ENTRY);
    expect(a.execSync("cat /var/lib/libvirt/virt-hooks/fixed-addresses.json").stdout).toContain(GUEST.mac);
    // Once there, apply changes nothing (and says nothing of it).
    expect(a.execSync("virt-hooks apply").stdout).not.toContain("fixed addresses");
    expect(connectOnce(a, PORT)).toBe(true);
    expect(connectOnce(b, PORT)).toBe(false);
    expect(entries(b, false)).toBe("");
    const status = a.execSync("virt-hooks status");
    expect(status.stdout).toMatch(/FIXED ADDRESS[\s\S]*50-devstack.rules:2 +live +default/);
    a.execSync("systemctl start virt-hooks-watch.service virt-hooks-apply.timer virt-hooks-reapply.service");
  });

  async function migrate(from: Host, to: Host, toAddr: string, label: string) {
    const cursors = hosts().map(cursor);
    const probes = hosts().map((h, i) => Probe.start(h, PORT, `${label.replace(/[^A-Za-z0-9]/g, "")}-${i}`));
    await sleep(1500);
    const t0 = Date.now();
    const r = await from.exec(`virsh migrate --live --persistent --undefinesource ${GUEST.name} qemu+tcp://${toAddr}/system --migrateuri tcp://${toAddr}`);
    const ms = Date.now() - t0;
    await sleep(2500);
    const samples = probes.map((p) => p.stop());
    await sleep(1000); // the source's release hook, and the journal, catch up
    const lines = hosts().map((h, i) => journal(h, cursors[i] as string));
    const bad = hosts().map((h, i) => journal(h, cursors[i] as string, "warning"));
    return { r, ms, t0, samples, lines, bad };
  }

  function report(label: string, m: Awaited<ReturnType<typeof migrate>>, src: 0 | 1) {
    const dst = src === 0 ? 1 : 0;
    const s = span(m.samples[src] as Sample[], m.t0 - 1500);
    const d = span(m.samples[dst] as Sample[], m.t0);
    fig(target, `${label}: virsh migrate (ms)`, m.ms);
    fig(target, `${label}: source's forward last answered (ms after migrate began)`, s.last ? s.last - m.t0 : "never");
    fig(target, `${label}: destination's forward first answered (ms after migrate began)`, d.first ? d.first - m.t0 : "never");
    fig(target, `${label}: gap between the two (ms; negative: both answered at once)`, s.last && d.first ? d.first - s.last : "n/a");
    ["vh-a", "vh-b"].forEach((n, i) => {
      fig(target, `${label}: virt-hooks journal lines on ${n}`, m.lines[i]?.length);
      fig(target, `${label}: of them error/warning on ${n}`, m.bad[i]?.length);
      console.log((m.lines[i] ?? []).map((l) => `host-tier:   ${n}: ${l}`).join("\n"));
    });
    return { s, d };
  }

  /** A normal migration: the guest and its forward on the destination only, not one error or warning line on either host. */
  async function migrateAndCheck(from: Host, to: Host, toAddr: string, label: string) {
    const m = await migrate(from, to, toAddr, label);
    expect(m.r.code, m.r.stderr + diagnose(to)).toBe(0);
    const { d } = report(label, m, from === a ? 0 : 1);
    expect([domstate(to), domstate(from)]).toEqual(["paused", "none"]);
    expect(d.first, "the destination's forward answered").toBeDefined();
    expect([connectOnce(to, PORT), connectOnce(from, PORT)]).toEqual([true, false]);
    expect([ourRules(to) > 0, ourRules(from)]).toEqual([true, 0]);
    expect(m.bad).toEqual([[], []]);
    expect(readdedAfterStop(m.lines[from === a ? 0 : 1])).toEqual([]);
    return m;
  }

  it("A -> B: the forward follows the guest, the per-guest migrate script's XML is used, no error or warning on either host; B's network lacked the fixed address and its apply unit adds it", async () => {
    // A per-guest script on the destination rewrites the incoming XML (libvirt's migrate filter).
    b.execSync(`mkdir -p /etc/libvirt/hooks/qemu.d/${GUEST.name}/migrate/begin && cat > /etc/libvirt/hooks/qemu.d/${GUEST.name}/migrate/begin/10-describe && chmod 755 /etc/libvirt/hooks/qemu.d/${GUEST.name}/migrate/begin/10-describe`,
      "#!/bin/sh\nsed 's|</name>|</name><description>arrived on vh-b</description>|'\n");
    expect(entries(b, false)).toBe("");
    const m = await migrateAndCheck(a, b, LINK.b, "A->B");
    expect(m.lines[1]?.join("\n")).toMatch(/qemu devstack start begin: .*rules 1 live/);
    expect(m.lines[0]?.join("\n")).toMatch(/qemu devstack stopped end: .*rules 0 live, 1 waiting, 0 failed/);
    expect(b.execSync(`virsh dumpxml ${GUEST.name}`).stdout).toContain("<description>arrived on vh-b</description>");
    // B converges the fixed address from rules.d through its unit (as at boot, or every minute by its timer).
    const u = b.execSync("systemctl start virt-hooks-apply.service");
    expect(u.code, u.stderr).toBe(0);
    fig(target, "B: virt-hooks-apply.service adding the fixed address (ms)", u.ms);
    expect(entries(b, false)).toBe(ENTRY);
    expect(entries(b, true)).toBe(ENTRY);
    b.execSync("systemctl start virt-hooks-watch.service virt-hooks-apply.timer virt-hooks-reapply.service");
    expect(connectOnce(b, PORT)).toBe(true);
  });

  it("B -> A: back again, the same, with every unit running on both", async () => {
    // Give the watcher time to settle after its start.
    await sleep(1500);
    await migrateAndCheck(b, a, LINK.a, "B->A");
    // B keeps its fixed address for the next time the guest comes.
    expect(entries(b, false)).toBe(ENTRY);
  });

  /**
   * A -> B that `breakIt` makes fail (it runs while virsh migrates; its output is
   * returned): A's forward answers throughout, B ends with no guest and no rule,
   * neither logs an error or warning.
   */
  async function failingMigration(label: string, tag: string, breakIt: () => Promise<string>) {
    const cursors = hosts().map(cursor);
    const broken = breakIt();
    // Asserted never to fail: an attempt gets 900 ms (see ProbeOptions), not the 200 ms that
    // measures outages, so a migration's CPU load starving the probe is not read as one.
    const probe = Probe.start(a, PORT, tag, { giveUpMs: 900 });
    await sleep(1000);
    const t0 = Date.now();
    const r = await a.exec(`timeout 120 virsh migrate --live --persistent --undefinesource ${GUEST.name} qemu+tcp://${LINK.b}/system --migrateuri tcp://${LINK.b}`);
    fig(target, `${label}: virsh migrate (ms)`, Date.now() - t0);
    fig(target, `${label}: virsh says`, JSON.stringify(r.stderr.trim().split("\n")[0]));
    const what = await broken;
    await sleep(2000);
    const samples = probe.stop();
    expect(r.code).not.toBe(0);
    const failedProbes = samples.filter((x) => x.t >= t0 && !x.ok).length;
    fig(target, `${label}: probes of A's forward that failed`, `${failedProbes} of ${samples.filter((x) => x.t >= t0).length}`);
    expect(failedProbes).toBe(0);
    expect([domstate(a), domstate(b)]).toEqual(["paused", "none"]);
    expect([connectOnce(a, PORT), connectOnce(b, PORT)]).toEqual([true, false]);
    expect([ourRules(a) > 0, ourRules(b)]).toEqual([true, 0]);
    const lines = hosts().map((h, i) => journal(h, cursors[i] as string));
    ["vh-a", "vh-b"].forEach((n, i) => console.log((lines[i] ?? []).map((l) => `host-tier:   ${tag}: ${n}: ${l}`).join("\n")));
    const bad = hosts().map((h, i) => journal(h, cursors[i] as string, "warning"));
    fig(target, `${label}: error/warning lines (A, B)`, `${bad[0]?.length}, ${bad[1]?.length}`);
    expect(bad).toEqual([[], []]);
    expect(readdedAfterStop(lines[1])).toEqual([]);
    return what;
  }

  it("a migration that fails part-way (the destination's firewall blocks the migration ports) leaves the source's forward working and nothing on the destination", async () => {
    b.execSync(`firewall-cmd -q --zone=public --remove-port=${MIGRATION_PORTS}`);
    try {
      await failingMigration("failed migration", "blocked", async () => "");
    } finally {
      b.execSync(`firewall-cmd -q --zone=public --add-port=${MIGRATION_PORTS}`);
    }
  });

  it("a migration whose destination qemu is killed part-way leaves the source's forward working and nothing on the destination", async () => {
    // On B: kill the incoming qemu the moment it exists (the transfer itself takes about a second).
    const killer = async () => (await b.exec(`for i in $(seq 3000); do p=$(pgrep -f '[q]emu-system.*-incoming') && { sleep 0.2; kill -9 $p; echo killed; exit 0; }; sleep 0.01; done; echo none`)).stdout.trim();
    expect(await failingMigration("killed destination qemu", "killed", killer)).toBe("killed");
  });

  it("a statement that leaves rules.d takes its entry with it; an entry added by hand that contradicts one is reported with the fix and left alone", () => {
    // Hand-added on B for another guest's MAC at the address a new statement wants.
    b.execSync(`virsh net-update default add ip-dhcp-host "<host mac='52:54:00:99:00:77' name='other' ip='192.168.122.77'/>" --live --config`);
    b.execSync(`cat > /etc/libvirt/hooks/rules.d/60-web.rules`, "host default 52:54:00:99:00:20 192.168.122.77 web\n");
    const r = b.execSync("virt-hooks apply");
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("60-web.rules:1:1: error: network \"default\" already gives address 192.168.122.77 to <host mac='52:54:00:99:00:77' name='other' ip='192.168.122.77'/> (running network), an entry virt-hooks did not add: it is left as it is [fixed-address-conflict]");
    expect(r.stderr).toContain(`hint: to let this statement replace it: virsh net-update default delete ip-dhcp-host "<host mac='52:54:00:99:00:77' name='other' ip='192.168.122.77'/>" --live --config && virt-hooks apply`);
    expect(entries(b, false)).toContain("name='other'");
    // The devstack statement leaves rules.d on B: its entry goes (ours), the hand-added one stays.
    // (by this apply, or by the timer's if it ran first: B's units run)
    const gone = cursor(b);
    b.execSync("rm /etc/libvirt/hooks/rules.d/50-devstack.rules /etc/libvirt/hooks/rules.d/60-web.rules");
    b.execSync("virt-hooks apply");
    expect(journal(b, gone).filter((l) => l.includes(`fixed addresses: deleted ${ENTRY} from network "default" (live and persistent)`))).toHaveLength(1);
    expect(entries(b, false)).toBe("<host mac='52:54:00:99:00:77' name='other' ip='192.168.122.77'/>");
    expect(entries(b, true)).toBe("<host mac='52:54:00:99:00:77' name='other' ip='192.168.122.77'/>");
    // Back again: added by this apply, or by the timer's if it ran first (B's units run).
    const c = cursor(b);
    b.execSync(`cat > /etc/libvirt/hooks/rules.d/50-devstack.rules`, RULES);
    b.execSync("virt-hooks apply");
    expect(journal(b, c).filter((l) => l.includes(`fixed addresses: added ${ENTRY}`))).toHaveLength(1);
    expect(entries(b, false)).toContain(ENTRY);
  });

  // Issue 29 on two hosts: `egress from EGRESS for devstack` in the same rules.d on both. The
  // fleet's choice here: the address is configured on every host that may run the guest (an
  // admin adds it; a host without it keeps the statement waiting), the translation exists only
  // on the host that runs the guest (its hooks add and remove it), and the upstream router (the
  // peer) routes the address to that host. Another guest of `default` ("other", no statement)
  // leaves from its host's own address (libvirt's masquerade) throughout.
  const EGRESS = "203.0.113.5";
  const OTHER = { ns: "other", veth: "vo", ip: "192.168.122.20" };
  const EGRESS_RULES = `egress from ${EGRESS} for ${GUEST.name}\n`;
  const egressRules = (h: Host) => h.execSync(`{ iptables-save -t nat 2>/dev/null | grep -c -- '--to-source ${EGRESS}'; nft list table ip virt_hooks 2>/dev/null | grep -c 'snat to ${EGRESS}'; } | awk '{s+=$1} END {print s+0}'`).stdout.trim();
  const egressStatus = (h: Host) => (JSON.parse(h.execSync("virt-hooks status --json").stdout) as { rules: { kind: string; state: string; detail?: string; targets?: string[] }[] })
    .rules.filter((r) => r.kind === "egress").map((r) => ({ state: r.state, detail: r.detail, targets: r.targets }));
  /** What the peer saw from each guest stand-in on each host: TCP and UDP, new connections. */
  const seen = () => ({
    aDevstack: [tcpFrom(a, GUEST.ns), udpFrom(a, GUEST.ns)], aOther: [tcpFrom(a, OTHER.ns), udpFrom(a, OTHER.ns)],
    bDevstack: [tcpFrom(b, GUEST.ns), udpFrom(b, GUEST.ns)], bOther: [tcpFrom(b, OTHER.ns), udpFrom(b, OTHER.ns)],
  });

  /** A migration for the egress cases: it succeeds, the guest and its translation are on `to` only, no error or warning (the forward's timing is the cases above's). */
  async function migrateEgress(from: Host, to: Host, toAddr: string, label: string) {
    const m = await migrate(from, to, toAddr, label);
    expect(m.r.code, m.r.stderr + diagnose(to)).toBe(0);
    report(label, m, from === a ? 0 : 1);
    expect([domstate(to), domstate(from)]).toEqual(["paused", "none"]);
    expect(m.bad).toEqual([[], []]);
    for (let w = 0; w < 20 && egressRules(to) !== "1"; w++) await sleep(250);
    expect([egressRules(to), egressRules(from)]).toEqual(["1", "0"]);
  }

  it("egress, one rules.d on both hosts: B lacks the address and its statement waits (check says how to add it); with devstack on A the peer sees it from the egress address, the other guest from A's own", () => {
    addInternet(a, b);
    addOther(a, OTHER.ns, OTHER.veth, OTHER.ip);
    addOther(b, OTHER.ns, OTHER.veth, OTHER.ip);
    routeTo(a, EGRESS, "a");
    a.execSync(`ip addr add ${EGRESS}/32 dev up0`);
    for (const h of hosts()) {
      h.execSync("cat > /etc/libvirt/hooks/rules.d/29-egress.rules", EGRESS_RULES);
      const r = h.execSync("virt-hooks apply");
      expect([0, 4], r.stderr + r.stdout).toContain(r.code);
    }
    expect(egressStatus(a)).toEqual([expect.objectContaining({ state: "live", targets: [`${GUEST.ip} → ${EGRESS}`] })]);
    const bWaits = egressStatus(b);
    fig(target, "egress: B's status without the address", JSON.stringify(bWaits));
    expect(bWaits).toEqual([expect.objectContaining({ state: "waiting", detail: `${EGRESS} is not an address of this host` })]);
    const check = b.execSync("virt-hooks check");
    expect(check.stdout + check.stderr).toContain(`hint: if this host should own it: ip addr add ${EGRESS}/32 dev `);
    const s = seen();
    fig(target, "egress: the peer saw (TCP, UDP), devstack on A", JSON.stringify(s));
    expect(s).toEqual({
      aDevstack: [EGRESS, EGRESS], aOther: [UPLINK.a.host, UPLINK.a.host],
      // B's stand-in holds devstack's address, but the guest does not run there: no translation.
      bDevstack: [UPLINK.b.host, UPLINK.b.host], bOther: [UPLINK.b.host, UPLINK.b.host],
    });
    // The admin configures the address on B too: its statement still waits, now for the guest.
    b.execSync(`ip addr add ${EGRESS}/32 dev up0`);
    b.execSync("virt-hooks apply");
    const bNoGuest = egressStatus(b);
    fig(target, "egress: B's status with the address, devstack on A", JSON.stringify(bNoGuest));
    expect(bNoGuest).toEqual([expect.objectContaining({ state: "waiting" })]);
    expect([egressRules(a), egressRules(b)]).toEqual(["1", "0"]);
  });

  it("egress A -> B: the translation moves with the guest (B's hooks add it, A's remove it); routed to B, the peer sees devstack from the egress address through B", async () => {
    await migrateEgress(a, b, LINK.b, "egress A->B");
    routeTo(a, EGRESS, "b");
    const s = seen();
    fig(target, "egress: the peer saw (TCP, UDP), devstack migrated to B", JSON.stringify(s));
    expect(s).toEqual({
      aDevstack: [UPLINK.a.host, UPLINK.a.host], aOther: [UPLINK.a.host, UPLINK.a.host],
      bDevstack: [EGRESS, EGRESS], bOther: [UPLINK.b.host, UPLINK.b.host],
    });
    expect(egressStatus(b)).toEqual([expect.objectContaining({ state: "live", targets: [`${GUEST.ip} → ${EGRESS}`] })]);
    expect(egressStatus(a)).toEqual([expect.objectContaining({ state: "waiting" })]);
  });

  // The rebuilds the watcher and hooks repair, with egress live on B, while devstack opens a new
  // connection every ~60-100 ms: how long they left from another address or failed. A second
  // probe from the other guest (no statement) tells firewalld's own blackout while it reloads
  // (it drops every packet, its own and ours alike; on a loaded 2-core machine 1-3 s) from a
  // missing translation. The bound is the issue's 1 s for what is ours: no connection may leave
  // from another address for longer, nor fail for more than 1 s longer than the other guest's.
  const REBUILDS = ["firewall-cmd --reload", "systemctl restart firewalld", "systemctl restart libvirtd"];
  const TRIALS = 2;
  /** What the peer sees from devstack and the other guest on B, once both are as they should be (or 30 s passed). */
  const settledSources = async () => {
    let got: string[] = [];
    for (let w = 0; w < 60; w++, await sleep(500)) {
      got = [tcpFrom(b, GUEST.ns), tcpFrom(b, OTHER.ns)];
      if (got[0] === EGRESS && got[1] === UPLINK.b.host) break;
    }
    return got;
  };
  for (const action of REBUILDS) {
    it(`egress after \`${action}\` on B: devstack leaves from the egress address again within 1 s (worst of ${TRIALS})`, async () => {
      const outages: number[] = [];
      const wrong: number[] = [];
      const control: number[] = [];
      const mixes: string[] = [];
      let redone = 0;
      for (let i = 0; i < TRIALS; i++) {
        expect(await settledSources(), `trial ${i + 1}: not settled before it\n${diagnose(b)}`).toEqual([EGRESS, UPLINK.b.host]);
        await sleep(1500);
        const tag = `${target}-${action.replace(/[^a-z]/g, "")}-${i}`;
        const probe = SourceProbe.start(b, GUEST.ns, tag);
        const other = SourceProbe.start(b, OTHER.ns, `${tag}-other`);
        await sleep(800);
        const since = Date.now();
        const r = b.execSync(action);
        expect(r.code, `${action}: ${r.stderr}`).toBe(0);
        // Until, for both probes, a wrong or failed attempt is followed by a good one, or 1.5 s pass with none.
        const settled = (p: SourceProbe, want: string) => {
          const after = p.samples().filter((x) => x.t >= since);
          const bad = after.findIndex((x) => x.src !== want);
          return bad < 0 ? after.length > 0 && after[after.length - 1]!.t - since > 1500 : after.slice(bad).some((x) => x.src === want);
        };
        for (const end = Date.now() + 15_000; Date.now() < end && !(settled(probe, EGRESS) && settled(other, UPLINK.b.host)); ) await sleep(200);
        await sleep(500);
        const state = `probe: ${probe.processes()}; other: ${other.processes()}`;
        const stoppedAt = Date.now();
        const samples = probe.stop();
        const others = other.stop();
        // An attempt, answered or not, is recorded within ~0.5 s. A probe silent for seconds is the
        // instrument stalling, not the traffic (a trial of a CI run saw both probes record one failed
        // attempt and then nothing for 15 s, while the sources were right again at once after):
        // that trial measures nothing, is said with what each probe was doing, and is run once more.
        const tail = (x: SourceSample[]) => x.filter((y) => y.t >= since).slice(-4).map((y) => `+${y.t - since} ${y.src}`).join(", ");
        const silentMs = (x: SourceSample[]) => {
          const ts = [since, ...x.filter((y) => y.t >= since).map((y) => y.t), stoppedAt];
          return Math.max(...ts.slice(1).map((t, k) => t - (ts[k] as number)));
        };
        const silent = Math.max(silentMs(samples), silentMs(others));
        if (silent > 3000) {
          fig(target, `trial ${i + 1} of ${action}: a probe recorded nothing for ${silent} ms (${action} took ${r.ms} ms)`, `devstack ${samples.filter((y) => y.t >= since).length} samples, last ${tail(samples)}; other ${others.filter((y) => y.t >= since).length}, last ${tail(others)}; ${state}`);
          if (redone++ < 1) {
            i--;
            continue;
          }
        }
        outages.push(outageSpanMs(samples, since, EGRESS));
        wrong.push(wrongSourceMs(samples, since, EGRESS));
        control.push(outageSpanMs(others, since, UPLINK.b.host));
        mixes.push(outageMix(samples, since, EGRESS));
      }
      fig(target, `egress outage ms, ${action}`, `${outages.join(" ")} (worst ${Math.max(...outages)}); of it from another address: ${wrong.join(" ")}; attempts not from ${EGRESS}: ${mixes.join(" | ")}`);
      fig(target, `the other guest's outage ms (masquerade: firewalld's own blackout), ${action}`, control.join(" "));
      expect([...await settledSources(), udpFrom(b, GUEST.ns)]).toEqual([EGRESS, UPLINK.b.host, EGRESS]);
      expect(Math.max(...wrong)).toBeLessThanOrEqual(1000);
      expect(Math.max(...outages.map((o, i) => o - (control[i] as number)))).toBeLessThanOrEqual(1000);
    }, 180_000);
  }

  it("egress B -> A: back again, and the peer (routed to A) sees devstack from the egress address through A", async () => {
    // firewalld's reload and restart on B dropped the runtime port openings; B is only the source now.
    await migrateEgress(b, a, LINK.a, "egress B->A");
    routeTo(a, EGRESS, "a");
    const s = seen();
    fig(target, "egress: the peer saw (TCP, UDP), devstack back on A", JSON.stringify(s));
    expect(s).toEqual({
      aDevstack: [EGRESS, EGRESS], aOther: [UPLINK.a.host, UPLINK.a.host],
      bDevstack: [UPLINK.b.host, UPLINK.b.host], bOther: [UPLINK.b.host, UPLINK.b.host],
    });
  });
});
