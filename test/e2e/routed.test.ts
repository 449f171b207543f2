// End-to-end: the first article's routed network that takes over the host's
// only NIC (`uplink` + `route`), and a fixed address given to a running guest
// without any restart (`virt-hooks host add`, through the real virsh), on each
// of libvirt's firewall backends; and per-guest scripts under a real libvirtd.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRoot } from "../helpers/binary.js";
import { Lab, type Backend } from "./lab/lab.js";

// The article: the host's em1 holds 192.168.1.51/24, the LAN's router is 192.168.1.1.
const HOST = "192.168.1.51";
const ROUTER = "192.168.1.1";
const BEYOND = "203.0.113.1"; // a host past the router: reachable only by the default route
const routeNetwork = `<network><name>route</name><forward mode='route'/><bridge name='virbr1' stp='off'/>
  <ip address='${HOST}' netmask='255.255.255.0'><dhcp><range start='192.168.1.128' end='192.168.1.254'/></dhcp></ip></network>`;
const WEB = { name: "web", mac: "52:54:00:00:01:30", ip: "192.168.1.130" };

const NAT = `<network><name>default</name><forward mode='nat'/><bridge name='virbr0' stp='off'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.100' end='192.168.122.254'/></dhcp></ip></network>`;
const LATE = { name: "late", mac: "52:54:00:6c:3c:50", ip: "192.168.122.50" };

describe.skipIf(!isRoot).each(["iptables", "nftables"] as Backend[])("e2e: routed network on the host's NIC, host add (%s backend)", (backend) => {
  let lab: Lab;
  /** The bridge a device is a port of, as the lab's own sysfs says. */
  const master = async (dev: string) => {
    const r = await lab.exec(["readlink", `/sys/class/net/${dev}/master`]);
    return r.code === 0 ? r.stdout.trim().split("/").pop() : undefined;
  };

  beforeAll(async () => {
    lab = await Lab.start(backend);
    await lab.install();
    // The LAN: a router namespace on em1's link, with a host beyond it.
    await lab.outside(HOST, ROUTER, 24, "em1", "lan");
    await lab.must(["ip", "route", "replace", "default", "via", ROUTER]);
    await lab.must(["ip", "addr", "add", `${BEYOND}/24`, "dev", "lo"], { netns: "lan" });
    await lab.serve("router", [80], "lan");
    await lab.startDaemons();
  });

  afterAll(async () => {
    await lab?.dispose();
  });

  it("uplink + route: the host's only NIC becomes a port of the routed network's bridge, the default route follows, guests sit on the LAN; net-destroy releases the NIC", async () => {
    expect(await lab.probe(BEYOND, 80)).toBe(`router:80 ${HOST}`);
    lab.writeRules("30-route.rules", "uplink route em1\nroute route default via 192.168.1.1\n");
    // The article's own first step: the address leaves em1 so that virbr1 can take it.
    await lab.must(["ip", "addr", "flush", "dev", "em1"]);
    expect(await lab.probe(BEYOND, 80, undefined, 500)).not.toMatch(/^router/);

    const mark = lab.journal.lines.length;
    await lab.defineNetwork(routeNetwork);
    const line = await lab.journal.waitFor(/^network route started begin: /, mark);
    expect(line).toMatch(/uplink em1/);
    expect(await master("em1")).toBe("virbr1");
    const routes = (await lab.must(["ip", "route", "show", "default"])).stdout;
    expect(routes).toMatch(/default via 192\.168\.1\.1 dev virbr1/);
    // The host reaches its LAN and, by the default route, beyond it, through virbr1.
    expect(await lab.probe(ROUTER, 80)).toBe(`router:80 ${HOST}`);
    expect(await lab.probe(BEYOND, 80)).toBe(`router:80 ${HOST}`);

    // A guest of the routed network is on the LAN itself: the router reaches it directly.
    await lab.defineGuest({ ...WEB, network: "route" });
    await lab.virsh("start", WEB.name);
    await lab.standIn(WEB.name, WEB.mac, { ip: WEB.ip, prefix: 24, gateway: ROUTER, ports: [80] });
    expect(await lab.probe(WEB.ip, 80, "lan")).toBe(`web:80 ${ROUTER}`);
    expect(await lab.probe(BEYOND, 80, lab.guestNetns(WEB.name))).toBe(`router:80 ${WEB.ip}`);

    // An event that finds everything in place changes nothing.
    const again = lab.journal.lines.length;
    await lab.virsh("net-update", "route", "add", "ip-dhcp-host", `<host mac='52:54:00:00:01:31' ip='192.168.1.131'/>`, "--live", "--config");
    const updated = await lab.journal.waitFor(/^network route updated begin: /, again);
    expect(updated).not.toMatch(/uplink em1 →/);

    await lab.virsh("destroy", WEB.name);
    await lab.virsh("net-destroy", "route");
    await lab.journal.waitFor(/^network route stopped end: /, mark);
    expect(await master("em1")).toBeUndefined();
    expect((await lab.must(["ip", "-br", "link", "show", "em1"])).stdout).toMatch(/\bUP\b/);
  });

  it("host add: a running guest without a fixed address gets one through the real virsh, and its forward by name works with no restart", async () => {
    await lab.defineNetwork(NAT);
    await lab.defineGuest({ ...LATE, network: "default" });
    lab.writeRules("50-late.rules", "forward tcp 2222 to late:22\n");
    await lab.virsh("start", LATE.name);
    await lab.standIn(LATE.name, LATE.mac, { ip: LATE.ip, prefix: 24, gateway: "192.168.122.1", ports: [22] });
    // Nothing to forward to yet: the log says how to fix it.
    const status = await lab.exec(["/usr/local/sbin/virt-hooks", "status"]);
    expect(status.stdout).toMatch(/failed/);

    const mark = lab.journal.lines.length;
    const r = await lab.exec(["/usr/local/sbin/virt-hooks", "host", "add", "default", LATE.mac, LATE.ip, LATE.name]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    await lab.journal.waitFor(/^network default updated begin: .*rules 1 live/, mark);
    expect(await lab.probe("192.168.122.1", 2222)).toBe(`late:22 192.168.122.1`);
    // Persistent too: the definition libvirt keeps on disk has the entry.
    expect((await lab.virsh("net-dumpxml", "--inactive", "default")).stdout).toContain(`ip='${LATE.ip}'`);

    // A refused one says why and changes nothing.
    const bad = await lab.exec(["/usr/local/sbin/virt-hooks", "host", "add", "default", "52:54:00:6c:3c:51", "192.168.122.1", "x"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr + bad.stdout).toMatch(/the host's own address/);
  });

  it("per-guest scripts: qemu.d/GUEST/prepare/begin/* run with libvirt's arguments and XML; one that fails refuses virsh start with its stderr", async () => {
    const dir = join(lab.root, "etc-libvirt", "hooks", "qemu.d", LATE.name, "prepare", "begin");
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    writeFileSync(join(dir, "10-record"), '#!/bin/sh\necho "$@" > /run/late-prepare.args\ncat > /run/late-prepare.xml\n', { mode: 0o755 });
    await lab.virsh("destroy", LATE.name);
    await lab.virsh("start", LATE.name);
    expect(readFileSync(join(lab.root, "run", "late-prepare.args"), "utf8").trim()).toBe("late prepare begin -");
    expect(readFileSync(join(lab.root, "run", "late-prepare.xml"), "utf8")).toContain(`<name>${LATE.name}</name>`);

    writeFileSync(join(dir, "20-refuse"), '#!/bin/sh\necho "GPU 0000:01:00.0 is still bound to the host" >&2\nexit 1\n', { mode: 0o755 });
    await lab.virsh("destroy", LATE.name);
    const r = await lab.exec(["virsh", "-q", "start", LATE.name]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("GPU 0000:01:00.0 is still bound to the host");
    expect((await lab.virsh("domstate", LATE.name)).stdout.trim()).toBe("shut off");
    rmSync(join(lab.root, "etc-libvirt", "hooks", "qemu.d", LATE.name), { recursive: true });
    expect(existsSync(dir)).toBe(false);
  });
});
