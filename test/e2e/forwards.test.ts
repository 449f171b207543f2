// End-to-end: the compiled virt-hooks, installed by install.sh as libvirt's
// hooks, against a real libvirtd 11.3 with real networks and real (diskless)
// guests, on each of libvirt's firewall backends. Services "inside" guests are
// stand-in namespaces spliced onto the guests' own taps (lab.ts), clients are
// namespaces on their own link. Every assertion is a real TCP connection or
// the exact firewall state.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRoot } from "../helpers/binary.js";
import { Lab, type Backend } from "./lab/lab.js";
import { chainRules } from "../helpers/netns.js";

const HOST = "192.168.1.100"; // the second article's host address, on the lab's "uplink"
const CLIENT = "192.168.1.2";
const DEVSTACK = { name: "devstack", mac: "52:54:00:6c:3c:11", ip: "192.168.122.11" };
const VM2 = { name: "vm2", mac: "52:54:00:6c:3c:12", ip: "192.168.122.12" };
const NOFIX = { name: "nofix", mac: "52:54:00:6c:3c:13" };

const defaultNetwork = `<network><name>default</name><forward mode='nat'/><bridge name='virbr0' stp='off'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.100' end='192.168.122.254'/>
    <host mac='${DEVSTACK.mac}' name='devstack' ip='${DEVSTACK.ip}'/>
    <host mac='${VM2.mac}' name='vm2' ip='${VM2.ip}'/></dhcp></ip></network>`;

const ARTICLE2 = `# The second article: publish devstack's ssh and web ports on the host's address.
forward tcp ${HOST}:1122 to devstack:22
forward tcp ${HOST}:1180 to devstack:80
`;

const WEB = { name: "web", mac: "52:54:00:20:00:10", ip: "10.20.0.10" };
const net2 = `<network><name>net2</name><forward mode='nat'/><bridge name='virbr2' stp='off'/>
  <ip address='10.20.0.1' prefix='24'><dhcp><range start='10.20.0.100' end='10.20.0.200'/>
    <host mac='${WEB.mac}' name='web' ip='${WEB.ip}'/></dhcp></ip></network>`;

const standIn = (ip: string, ports: number[]) => ({ ip, prefix: 24, gateway: "192.168.122.1", ports });

/** What a client outside sees through the host's address. */
const reaches = (domain: string, port: number) => new RegExp(`^${domain}:${port} `);

const BACKENDS: Backend[] = ["iptables", "nftables"];

describe.skipIf(!isRoot).each(BACKENDS)("e2e (%s backend)", (backend) => {
  let lab: Lab;

  async function startGuest(g: { name: string; mac: string; ip: string }, ports: number[], first = false): Promise<void> {
    await lab.virsh("start", g.name);
    if (first) await lab.standIn(g.name, g.mac, standIn(g.ip, ports));
    else await lab.splice(g.name);
  }

  beforeAll(async () => {
    lab = await Lab.start(backend);
    await lab.install();
    lab.writeRules("50-article2.rules", ARTICLE2);
    await lab.outside(HOST, CLIENT, 24);
    await lab.serve("outside", [1122], "outside");
    await lab.startDaemons();
    await lab.defineNetwork(defaultNetwork);
    for (const g of [DEVSTACK, VM2]) await lab.defineGuest({ ...g, network: "default" });
    await lab.defineGuest({ ...NOFIX, network: "default" });
    await startGuest(DEVSTACK, [22, 80], true);
    await startGuest(VM2, [22], true);
  });

  afterAll(async () => {
    await lab?.dispose();
  });

  it("1. the second article: outside, the host itself and another guest (hairpin) reach devstack; its own outbound :1122 is not redirected", async () => {
    expect(await lab.probe(HOST, 1122, "outside")).toBe(`devstack:22 ${CLIENT}`);
    expect(await lab.probe(HOST, 1180, "outside")).toBe(`devstack:80 ${CLIENT}`);
    expect(await lab.probe(HOST, 1122)).toMatch(reaches("devstack", 22));
    expect(await lab.probe(HOST, 1180, lab.guestNetns("vm2"))).toMatch(reaches("devstack", 80));
    // devstack's own connection to another host on port 1122 goes to that host.
    expect(await lab.probe(CLIENT, 1122, lab.guestNetns("devstack"))).toBe(`outside:1122 ${HOST}`);
    // A port nobody forwards stays closed.
    expect(await lab.probe(HOST, 1123, "outside")).toMatch(/refused|timeout/);
  });

  /** Everything of ours in the kernel, as text (to look for an address, or for nothing at all). */
  async function ours(): Promise<string> {
    if (backend === "iptables") return (await lab.iptablesSave()).split("\n").filter((l) => l.includes("VIRT_HOOKS")).join("\n");
    const rules = await lab.nftRuleset();
    const table = /table ip virt_hooks \{[\s\S]*?\n\}/.exec(rules)?.[0] ?? "";
    return [table, ...rules.split("\n").filter((l) => l.includes('comment "virt-hooks"'))].join("\n").trim();
  }

  /** libvirt's own rules, with every trace of ours removed, sorted (a SIGHUP rebuild reorders them). */
  async function libvirtsOwn(): Promise<string> {
    if (backend === "iptables") return (await lab.iptablesSave()).split("\n").filter((l) => !l.includes("VIRT_HOOKS")).sort().join("\n");
    const rules = (await lab.nftRuleset()).replace(/table ip6? virt_hooks \{[\s\S]*?\n\}\n?/g, "");
    return rules.split("\n").filter((l) => !l.includes('comment "virt-hooks"')).map((l) => l.replace(/ # handle \d+$/, "").replace(/counter packets \d+ bytes \d+/, "counter")).sort().join("\n");
  }

  /** Our accept is first where libvirt's rejects would otherwise see the packet first. */
  async function expectOursFirst(): Promise<void> {
    if (backend === "iptables") {
      expect(chainRules(await lab.iptablesSave(), "filter", "FORWARD")[0]).toBe("-A FORWARD -j VIRT_HOOKS_FWD");
    } else {
      const chain = (await lab.must(["nft", "list", "chain", "ip", "libvirt_network", "forward"])).stdout;
      const rules = chain.split("\n").map((l) => l.trim()).filter((l) => /^(meta|jump|counter|accept|ip|ct)/.test(l));
      expect(rules[0]).toMatch(/comment "virt-hooks"$/);
    }
  }

  const cli = (...args: string[]) => lab.exec(["/usr/local/sbin/virt-hooks", ...args]);

  it("2a. survival: three libvirtd restarts, each followed by its reconnect hooks: the forwards work after each", async () => {
    for (let i = 0; i < 3; i++) {
      const mark = lab.journal.lines.length;
      await lab.restartLibvirtd();
      await lab.journal.waitFor(/^qemu devstack reconnect begin: /, mark);
      await lab.journal.waitFor(/^qemu vm2 reconnect begin: /, mark);
      expect(await lab.probe(HOST, 1122, "outside")).toBe(`devstack:22 ${CLIENT}`);
      await expectOursFirst();
      // Issue 28: the ports libvirtd re-announces one after another as it starts are recognised
      // as running guests' recorded ports (real libvirt's formatting) and cost no reconcile.
      const ports = lab.journal.since(mark).filter((l) => / port-created begin: /.test(l));
      expect(ports.length, ports.join("\n")).toBeGreaterThanOrEqual(2);
      for (const l of ports) expect(l).toMatch(/ignored \((a recorded port of running guest (devstack|vm2): its reconnect or start follows|no rule names this port's domain)\)/);
      expect(ports.filter((l) => /recorded port of running guest devstack/.test(l)), ports.join("\n")).toHaveLength(1);
    }
  });

  it("2b. survival: SIGHUP (systemctl reload libvirtd) rebuilds libvirt's rules and no hook fires; the forwards still work", async () => {
    const mark = lab.journal.lines.length;
    await lab.sighupLibvirtd();
    expect(await lab.probe(HOST, 1122, "outside")).toBe(`devstack:22 ${CLIENT}`);
    expect(await lab.probe(HOST, 1180, lab.guestNetns("vm2"))).toMatch(reaches("devstack", 80));
    await expectOursFirst();
    expect(lab.journal.since(mark).filter((l) => / reconnect begin: /.test(l))).toEqual([]);
  });

  it("2c. survival: libvirt's forward jumps deleted (iptables -F FORWARD / its nft chain flushed), then a restart: libvirt's rules come back above ours, the reconnect puts ours first again", async () => {
    if (backend === "iptables") await lab.must(["iptables", "-w", "-F", "FORWARD"]);
    else await lab.must(["nft", "flush", "chain", "ip", "libvirt_network", "forward"]);
    const mark = lab.journal.lines.length;
    await lab.restartLibvirtd();
    await lab.journal.waitFor(/^qemu devstack reconnect begin: /, mark);
    await lab.journal.waitFor(/^qemu vm2 reconnect begin: /, mark);
    await expectOursFirst();
    expect(await lab.probe(HOST, 1122, "outside")).toBe(`devstack:22 ${CLIENT}`);
  });

  it("3a. lifecycle: virsh destroy removes devstack's forwards (no rule of ours mentions it); start brings them back", async () => {
    await lab.virsh("destroy", DEVSTACK.name);
    expect(await ours()).not.toContain(DEVSTACK.ip);
    expect(await lab.probe(HOST, 1122, "outside")).toMatch(/refused|timeout/);
    await startGuest(DEVSTACK, [22, 80]);
    expect(await ours()).toContain(DEVSTACK.ip);
    expect(await lab.probe(HOST, 1122, "outside")).toBe(`devstack:22 ${CLIENT}`);
  });

  it("3b. lifecycle: rules.d edited, then virt-hooks apply: the new forward works and the removed one is gone", async () => {
    lab.writeRules("50-article2.rules", `forward tcp ${HOST}:1122 to devstack:22\nforward tcp ${HOST}:2280 to devstack:80\n`);
    const r = await cli("apply");
    expect(r.code, r.stderr).toBe(0);
    expect(await lab.probe(HOST, 2280, "outside")).toBe(`devstack:80 ${CLIENT}`);
    expect(await lab.probe(HOST, 1180, "outside")).toMatch(/refused|timeout/);
    expect(await ours()).not.toMatch(/1180/);
    lab.writeRules("50-article2.rules", ARTICLE2);
    expect((await cli("apply")).code).toBe(0);
  });

  it("4. two networks, three guests started at once: the rules are exactly the desired ones, nothing duplicated or missing", async () => {
    await lab.defineNetwork(net2);
    await lab.defineGuest({ ...WEB, network: "net2" });
    lab.writeRules("60-three.rules", `forward tcp 2201 to devstack:22\nforward tcp 2202 to vm2:22\nforward tcp 2203 to web:22\n`);
    await Promise.all([DEVSTACK, VM2].map((g) => lab.virsh("destroy", g.name)));
    await Promise.all([DEVSTACK, VM2, WEB].map((g) => lab.virsh("start", g.name)));
    await lab.splice(DEVSTACK.name);
    await lab.splice(VM2.name);
    await lab.standIn(WEB.name, WEB.mac, { ip: WEB.ip, prefix: 24, gateway: "10.20.0.1", ports: [22] });
    // Converged: a reconcile from scratch finds nothing to change.
    const plan = await cli("plan");
    expect(plan.stdout, plan.stdout + plan.stderr).toMatch(/ipv4: the firewall already matches the rules/);
    if (backend === "iptables") {
      const lines = (await ours()).split("\n").filter((l) => l.startsWith("-A "));
      expect(new Set(lines).size).toBe(lines.length);
    } else {
      expect((await lab.nftRuleset()).split("\n").filter((l) => l.includes('comment "virt-hooks"'))).toHaveLength(1);
    }
    expect(await lab.probe(HOST, 2201, "outside")).toBe(`devstack:22 ${CLIENT}`);
    expect(await lab.probe(HOST, 2202, "outside")).toBe(`vm2:22 ${CLIENT}`);
    expect(await lab.probe(HOST, 2203, "outside")).toBe(`web:22 ${CLIENT}`);
    await lab.virsh("destroy", WEB.name);
    lab.removeRules("60-three.rules");
  });

  it("5a. bad input: a rule file with an error does not stop a guest; the log names file:line:col", async () => {
    lab.writeRules("70-broken.rules", "forward tcp 99999 to devstack:22\n");
    const mark = lab.journal.lines.length;
    await lab.virsh("destroy", DEVSTACK.name);
    await startGuest(DEVSTACK, [22, 80]);
    const logged = lab.journal.since(mark).join("\n");
    expect(logged).toMatch(/70-broken\.rules:1:\d+: /);
    // The good rules still hold.
    expect(await lab.probe(HOST, 1122, "outside")).toBe(`devstack:22 ${CLIENT}`);
    lab.removeRules("70-broken.rules");
  });

  it("6. a guest with no fixed address, targeted by name: the log gives the exact virsh net-update; other forwards still work", async () => {
    lab.writeRules("80-nofix.rules", "forward tcp 3022 to nofix:22\n");
    const mark = lab.journal.lines.length;
    await lab.virsh("start", NOFIX.name);
    const hint = await lab.journal.waitFor(/virsh net-update default add ip-dhcp-host/, mark);
    expect(hint).toContain(`"<host mac='${NOFIX.mac}' name='nofix' ip='`);
    expect(hint).toContain("--live --config");
    expect(await lab.probe(HOST, 1122, "outside")).toBe(`devstack:22 ${CLIENT}`);
    await lab.virsh("destroy", NOFIX.name);
  });

  it("5b. set on-error block: starting a guest whose forward cannot be applied fails, and virsh shows our reason", async () => {
    lab.writeRules("00-strict.rules", "set on-error block\n");
    const r = await lab.exec(["virsh", "-q", "start", NOFIX.name]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/virt-hooks: refusing to start nofix \(set on-error block\)/);
    expect(r.stderr).toContain("virsh net-update default add ip-dhcp-host");
    expect((await lab.exec(["virsh", "-q", "domstate", NOFIX.name])).stdout.trim()).toBe("shut off");
    lab.removeRules("00-strict.rules");
    lab.removeRules("80-nofix.rules");
  });

  it("R. a network restart (net-destroy + net-start) with guests running: their taps are back on the bridge and the forward works within a second", async () => {
    await lab.virsh("net-destroy", "default");
    expect(await lab.probe(HOST, 1122, "outside")).toMatch(/refused|timeout|unreachable/);
    const t0 = Date.now();
    const mark = lab.journal.lines.length;
    await lab.virsh("net-start", "default");
    const { reply, ms } = await lab.probeUntil(HOST, 1122, "outside", /^devstack:22 /, 1000);
    expect(reply, lab.journal.since(mark).join("\n") + (await lab.exec(["ip", "-br", "link"])).stdout).toBe(`devstack:22 ${CLIENT}`);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(ms).toBeLessThanOrEqual(1000);
    expect(await lab.probe(HOST, 1180, lab.guestNetns("vm2"))).toMatch(reaches("devstack", 80));
    await expectOursFirst();
  });

  it("S. virt-hooks status from a real run: guests up, one guest down, one rule drifted; apply repairs it", async () => {
    lab.writeRules("60-status.rules", `forward tcp ${HOST}:2202 to vm2:22\nforward tcp ${HOST}:2203 to web:22\n`);
    expect((await cli("apply")).code).toBe(0);
    expect(await lab.probe(HOST, 2202, "outside")).toBe(`vm2:22 ${CLIENT}`);
    // Someone deletes vm2's DNAT behind our back.
    if (backend === "iptables") {
      const index = chainRules(await lab.iptablesSave(), "nat", "VIRT_HOOKS_PRE").findIndex((l) => l.includes("--dport 2202"));
      expect(index).toBeGreaterThanOrEqual(0);
      await lab.must(["iptables", "-w", "-t", "nat", "-D", "VIRT_HOOKS_PRE", String(index + 1)]);
    } else {
      await lab.must(["nft", "delete", "element", "ip", "virt_hooks", "dnat_addr", `{ ${HOST} . tcp . 2202 }`]);
    }
    expect(await lab.probe(HOST, 2202, "outside")).toMatch(/refused|timeout/);
    const screen = await cli("status");
    // The screen as an admin sees it, kept in the test output (the closing note of issue 6 quotes it).
    console.log(`virt-hooks status (${backend} backend), exit ${screen.code}:\n${screen.stdout}`);
    expect(screen.code).toBe(5);
    expect(screen.stdout).toMatch(/50-article2\.rules:2 +live +192\.168\.122\.11:22 +/);
    expect(screen.stdout).toMatch(/60-status\.rules:1 +drifted +192\.168\.122\.12:22 .*run virt-hooks apply/);
    expect(screen.stdout).toMatch(/60-status\.rules:2 +waiting +- .*\(domain "web" is not running\)/);
    expect(screen.stdout).toMatch(/rule-missing|element-missing|missing/);
    expect((await cli("apply")).code).toBe(0);
    expect(await lab.probe(HOST, 2202, "outside")).toBe(`vm2:22 ${CLIENT}`);
    expect((await cli("status")).code).toBe(0);
    lab.removeRules("60-status.rules");
    expect((await cli("apply")).code).toBe(0);
  });

  it("7. install.sh --uninstall: our hooks and rules are gone, libvirt's own rules are intact", async () => {
    const libvirtBefore = await libvirtsOwn();
    await lab.install("--uninstall");
    for (const d of ["qemu", "network"]) expect(existsSync(join(lab.root, "etc-libvirt", "hooks", d))).toBe(false);
    expect(await ours()).toBe("");
    // install.sh reloads libvirtd (SIGHUP), which rebuilds its rules in the background.
    let libvirtAfter = "";
    for (let i = 0; i < 100 && libvirtAfter !== libvirtBefore; i++) {
      await new Promise((r) => setTimeout(r, 100));
      libvirtAfter = await libvirtsOwn();
    }
    expect(libvirtAfter.split("\n")).toEqual(libvirtBefore.split("\n"));
    expect(await lab.probe(HOST, 1122, "outside")).toMatch(/refused|timeout/);
  });
});
