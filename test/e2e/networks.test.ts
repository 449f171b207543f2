// End-to-end, networks (issue 5): masquerade of a routed network, accept
// between two NAT networks, a hot-plugged NIC, IPv6 forwards, and a network
// redefined and restarted under running guests (type='network' and
// type='bridge' NICs, a hot-plugged one among them). Real libvirtd 11.3, the
// installed hooks, real TCP connections, on each firewall backend; the model
// is forwards.test.ts (lab.ts explains the stand-ins).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRoot } from "../helpers/binary.js";
import { Lab, type Backend } from "./lab/lab.js";

const HOST = "192.168.1.100";
const CLIENT = "192.168.1.2";
const HOST6 = "fd00:1::1";
const CLIENT6 = "fd00:1::2";
// "The internet" for the routed network: its own link, a server that says who connected.
const PUBLIC_GW = "203.0.113.1";
const PUBLIC = "203.0.113.2";
const PUBLIC6_GW = "2001:db8:1::1";
const PUBLIC6 = "2001:db8:1::2";

const AY = { name: "ay", mac: "52:54:00:50:00:11", ip: "192.168.122.11" };
/** A type='bridge' NIC on default's bridge, given a DHCP host entry only in test 5. */
const LATE = { name: "late", mac: "52:54:00:50:00:15", ip: "192.168.122.15" };
const RTD = { name: "rtd", mac: "52:54:00:50:00:21", ip: "192.168.100.10", ip6: "fd00:200::10" };
const BEE = { name: "bee", mac: "52:54:00:50:00:22", ip: "10.20.0.10" };
/** bee's second NIC, hot-plugged into `default` in test 3. */
const BEE2 = { mac: "52:54:00:50:00:31", ip: "192.168.122.31" };
const SIX = { name: "six", mac: "52:54:00:50:00:41", ip: "10.30.0.10", ip6: "fd00:100::10" };

const networks = [
  `<network><name>default</name><forward mode='nat'/><bridge name='virbr0' stp='off'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.100' end='192.168.122.254'/>
    <host mac='${AY.mac}' name='ay' ip='${AY.ip}'/>
    <host mac='${BEE2.mac}' name='bee' ip='${BEE2.ip}'/></dhcp></ip></network>`,
  // The first article's routed network.
  `<network><name>route</name><forward mode='route'/><bridge name='virbr1' stp='off'/>
  <ip address='192.168.100.1' prefix='24'><dhcp><range start='192.168.100.100' end='192.168.100.200'/>
    <host mac='${RTD.mac}' name='rtd' ip='${RTD.ip}'/></dhcp></ip>
  <ip family='ipv6' address='fd00:200::1' prefix='64'/></network>`,
  `<network><name>netb</name><forward mode='nat'/><bridge name='virbr2' stp='off'/>
  <ip address='10.20.0.1' prefix='24'><dhcp><range start='10.20.0.100' end='10.20.0.200'/>
    <host mac='${BEE.mac}' name='bee' ip='${BEE.ip}'/></dhcp></ip></network>`,
  // Dual stack: the IPv6 host entry has no MAC (DHCPv6 matches by name).
  `<network><name>six</name><forward mode='nat'/><bridge name='virbr3' stp='off'/>
  <ip address='10.30.0.1' prefix='24'><dhcp><range start='10.30.0.100' end='10.30.0.200'/>
    <host mac='${SIX.mac}' name='six' ip='${SIX.ip}'/></dhcp></ip>
  <ip family='ipv6' address='fd00:100::1' prefix='64'><dhcp><range start='fd00:100::100' end='fd00:100::1ff'/>
    <host name='six' ip='${SIX.ip6}'/></dhcp></ip></network>`,
];

const FORWARDS = `forward tcp 1022 to ay:22
forward tcp 1522 to late:22
forward tcp 4022 to bee@default:22
forward tcp [${HOST6}]:6022 to six:22
forward tcp [${HOST6}]:6023 to [${SIX.ip6}]:22
forward tcp 6024 to six:22
`;

const BACKENDS: Backend[] = ["iptables", "nftables"];

describe.skipIf(!isRoot).each(BACKENDS)("e2e networks (%s backend)", (backend) => {
  let lab: Lab;
  const cli = (...args: string[]) => lab.exec(["/usr/local/sbin/virt-hooks", ...args]);
  // Exit 4: applied, with some rules unresolved (bee is on default from test 3, late has a fixed address from test 5).
  const apply = async () => {
    const r = await cli("apply");
    expect([0, 4], r.stderr + r.stdout).toContain(r.code);
  };
  const gw = (ip: string) => ip.replace(/\.\d+$/, ".1");

  beforeAll(async () => {
    const t0 = Date.now();
    const at = (what: string) => console.log(`[${backend}] ${what}: ${Date.now() - t0} ms`);
    lab = await Lab.start(backend);
    await lab.install();
    lab.writeRules("10-net.rules", FORWARDS);
    await lab.outside(HOST, CLIENT, 24);
    await lab.outsideIPv6(HOST6, CLIENT6, 64);
    await lab.outside(PUBLIC_GW, PUBLIC, 24, "up1", "public");
    await lab.outsideIPv6(PUBLIC6_GW, PUBLIC6, 64, "up1", "public");
    await lab.serve("public", [8080], "public");
    at("lab");
    await lab.startDaemons();
    at("daemons");
    await Promise.all(networks.map((n) => lab.defineNetwork(n)));
    await Promise.all([
      lab.defineGuest({ ...AY, network: "default" }),
      lab.defineGuest({ ...LATE, bridge: "virbr0" }),
      lab.defineGuest({ ...RTD, network: "route" }),
      lab.defineGuest({ ...BEE, network: "netb", hotplug: true }),
      lab.defineGuest({ ...SIX, network: "six" }),
    ]);
    at("defined");
    // At once, as a host's autostart does (and quicker on a loaded machine).
    await Promise.all([AY, LATE, RTD, BEE, SIX].map((g) => lab.virsh("start", g.name)));
    at("started");
    for (const g of [AY, LATE]) await lab.standIn(g.name, g.mac, { ip: g.ip, prefix: 24, gateway: gw(g.ip), ports: [22] });
    await lab.standIn(RTD.name, RTD.mac, { ip: RTD.ip, prefix: 24, gateway: gw(RTD.ip), ip6: RTD.ip6, gateway6: "fd00:200::1", ports: [22] });
    await lab.standIn(BEE.name, BEE.mac, { ip: BEE.ip, prefix: 24, gateway: gw(BEE.ip), ports: [22, 5000, 5001] });
    await lab.standIn(SIX.name, SIX.mac, { ip: SIX.ip, prefix: 24, gateway: gw(SIX.ip), ip6: SIX.ip6, gateway6: "fd00:100::1", ports: [22] });
    at("stand-ins");
  });

  afterAll(async () => {
    await lab?.dispose();
  });

  it("1. masquerade: a routed network's guest reaches the public side with its own address; with `masquerade route` with the host's (IPv4 and IPv6)", async () => {
    const rtd = lab.guestNetns(RTD.name);
    expect(await lab.probe(PUBLIC, 8080, rtd)).toBe(`public:8080 ${RTD.ip}`);
    // The bridge's IPv6 address needs DAD once the guest's tap gave it carrier.
    expect((await lab.probeUntil(PUBLIC6, 8080, rtd, /^public:/, 15_000)).reply).toBe(`public:8080 ${RTD.ip6}`);
    lab.writeRules("20-masq.rules", "masquerade route\n");
    await apply();
    expect(await lab.probe(PUBLIC, 8080, rtd)).toBe(`public:8080 ${PUBLIC_GW}`);
    expect(await lab.probe(PUBLIC6, 8080, rtd)).toBe(`public:8080 ${PUBLIC6_GW}`);
    // Inbound routing to the guest is libvirt's and stays: the public side still reaches it directly.
    expect(await lab.probe(RTD.ip, 22, "public")).toBe(`rtd:22 ${PUBLIC}`);
    // The rule removed: nothing of it is left, the guest's own address is seen again.
    lab.removeRules("20-masq.rules");
    await apply();
    expect(await lab.probe(PUBLIC, 8080, rtd)).toBe(`public:8080 ${RTD.ip}`);
    expect(await lab.probe(PUBLIC6, 8080, rtd)).toBe(`public:8080 ${RTD.ip6}`);
  });

  it("2. accept: a guest on `default` reaches a guest on `netb` only with `accept default to netb tcp 5000`, only that port, only that way, with its real address", async () => {
    const ay = lab.guestNetns(AY.name);
    const bee = lab.guestNetns(BEE.name);
    expect(await lab.probe(BEE.ip, 5000, ay)).toMatch(/refused|timeout|unreachable/);
    lab.writeRules("30-accept.rules", "accept default to netb tcp 5000\n");
    await apply();
    // libvirt's masquerade of `default` is skipped for this flow: bee sees ay's own address.
    expect(await lab.probe(BEE.ip, 5000, ay)).toBe(`bee:5000 ${AY.ip}`);
    expect(await lab.probe(BEE.ip, 5001, ay)).toMatch(/refused|timeout|unreachable/);
    expect(await lab.probe(AY.ip, 22, bee)).toMatch(/refused|timeout|unreachable/);
    // Guests still leave through libvirt's own NAT as before (their source is masqueraded).
    expect(await lab.probe(PUBLIC, 8080, ay)).toBe(`public:8080 ${PUBLIC_GW}`);
    lab.removeRules("30-accept.rules");
    await apply();
    expect(await lab.probe(BEE.ip, 5000, ay)).toMatch(/refused|timeout|unreachable/);
  });

  it("3. hotplug: `virsh attach-interface --live` fires only network port-created; the new NIC's forward (`bee@default`, DHCP host entry for its MAC) works", async () => {
    expect(await lab.probe(HOST, 4022, "outside")).toMatch(/refused|timeout/);
    const mark = lab.journal.lines.length;
    await lab.virsh("attach-interface", BEE.name, "network", "default", "--mac", BEE2.mac, "--model", "e1000", "--live");
    const line = await lab.journal.waitFor(/^network default port-created begin: /, mark);
    expect(line).toMatch(/ipv4 \+\d+/);
    expect(lab.journal.since(mark).filter((l) => /^qemu bee /.test(l))).toEqual([]);
    await lab.standInNic("bee-nic2", BEE.name, BEE2.mac, { ip: BEE2.ip, prefix: 24, gateway: gw(BEE2.ip), ports: [22] });
    expect(await lab.probe(HOST, 4022, "outside")).toBe(`bee-nic2:22 ${CLIENT}`);
  });

  it("4. IPv6: forwards to a guest's DHCPv6 host entry (by name) and to an IPv6 address work from an IPv6 client; a dual-stack forward answers on both", async () => {
    // The bridge's own IPv6 address needs DAD once the guest's tap gave it carrier.
    const first = await lab.probeUntil(HOST6, 6022, "outside", /^six:22 /, 15_000);
    expect(first.reply).toBe(`six:22 ${CLIENT6}`);
    expect(await lab.probe(HOST6, 6023, "outside")).toBe(`six:22 ${CLIENT6}`);
    expect(await lab.probe(HOST6, 6024, "outside")).toBe(`six:22 ${CLIENT6}`);
    expect(await lab.probe(HOST, 6024, "outside")).toBe(`six:22 ${CLIENT}`);
    // Only the forwarded port.
    expect(await lab.probe(HOST6, 6025, "outside")).toMatch(/refused|timeout/);
  });

  it("5. net-update --config + net-destroy/net-start with guests running: the new DHCP host's forward works, and every NIC (type='network', type='bridge', hot-plugged) is back on the bridge at once", async () => {
    expect(await lab.probe(HOST, 1522, "outside")).toMatch(/refused|timeout/);
    await lab.virsh("net-update", "default", "add", "ip-dhcp-host", `<host mac='${LATE.mac}' name='late' ip='${LATE.ip}'/>`, "--config");
    await lab.virsh("net-destroy", "default");
    expect(await lab.probe(HOST, 1022, "outside")).toMatch(/refused|timeout|unreachable/);
    const mark = lab.journal.lines.length;
    await lab.virsh("net-start", "default");
    // net-start returns after the `started` hook: everything is back when it returns.
    const back = await lab.probeUntil(HOST, 1522, "outside", /^late:22 /, 1000);
    expect(back.reply, lab.journal.since(mark).join("\n")).toBe(`late:22 ${CLIENT}`);
    expect(await lab.probe(HOST, 1022, "outside")).toBe(`ay:22 ${CLIENT}`);
    expect(await lab.probe(HOST, 4022, "outside")).toBe(`bee-nic2:22 ${CLIENT}`);
    // Hairpin through the new bridge too.
    expect(await lab.probe(HOST, 1022, lab.guestNetns(LATE.name))).toMatch(/^ay:22 /);
    const bridged = (await lab.must(["ip", "-o", "link", "show", "master", "virbr0"])).stdout;
    for (const tap of [lab.tapOf(AY.name), lab.tapOf(LATE.name), lab.tapOfNic(BEE.name, BEE2.mac)]) expect(bridged).toContain(`: ${tap}: `);
    console.log(`[${backend}] net-start -> first good probe: ${back.ms} ms`);
  });
});
