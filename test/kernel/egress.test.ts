// Kernel tier for egress and map (issue 29): the compiled executable applies
// them with the REAL iptables-restore and nft, in a private netns holding what
// a real libvirtd 11.3 made for the default network. The kernel prints our
// rules back exactly as rendered (so the next event is in sync and changes
// nothing), VIRT_HOOKS_SNAT exists exactly while used, a statement for an
// address this host lacks waits (and check says how to add it), and the
// conntrack deletions are argv the real tool accepts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HostTree, isRoot, type Run } from "../helpers/binary.js";
import { chainRules, NetnsPool, withoutOurs, type Netns } from "../helpers/netns.js";

const LIBVIRT_V4 = readFileSync(join(import.meta.dirname, "libvirt-default.v4.save"), "utf8");
const DEVSTACK = { name: "devstack", mac: "52:54:00:6c:3c:11", ip: "192.168.122.11" };
const RULES = "egress from 203.0.113.5 for devstack\nmap 203.0.113.6 to 192.168.122.50\nforward tcp 192.168.1.100:1122 to devstack:22\n";
const C = (line: number) => `-m comment --comment "virt-hooks 50-egress.rules:${line}"`;

const d = describe.skipIf(!isRoot);

d("kernel: egress and map with the real tools", () => {
  const pool = new NetnsPool();
  let ns: Netns;
  let tree: HostTree;
  const vh = (...args: string[]): Promise<Run> => ns.exec(tree.cliArgv(...args), { env: tree.env() });
  const apply = async (...more: string[]) => {
    const r = await vh("apply", ...more);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    return r;
  };

  beforeEach(async () => {
    ns = await pool.create();
    await ns.restore(4, LIBVIRT_V4);
    tree = HostTree.withDefaultNetwork([DEVSTACK]);
    tree.startDomain(DEVSTACK.name, DEVSTACK.mac);
    tree.writeRules("50-egress.rules", RULES);
  });

  afterEach(() => {
    pool.disposeAll();
    tree.dispose();
  });

  it("1. an address this host lacks: the statements wait, the forward is applied, check gives the ip addr add command", async () => {
    const before = await ns.save(4);
    await apply();
    const after = await ns.save(4);
    expect(after).not.toContain("VIRT_HOOKS_SNAT");
    expect(chainRules(after, "nat", "VIRT_HOOKS_PRE")).toHaveLength(1);
    expect(withoutOurs(after)).toBe(withoutOurs(before));
    const check = await vh("check");
    expect(check.stdout + check.stderr).toContain("50-egress.rules:1:13: warning: 203.0.113.5 is not an address of this host");
    expect(check.stdout + check.stderr).toContain("hint: if this host should own it: ip addr add 203.0.113.5/32 dev ");
    const status = await vh("status", "--json");
    const rules = JSON.parse(status.stdout).rules as { kind: string; state: string; detail: string }[];
    expect(rules.filter((r) => r.kind !== "forward").map((r) => [r.kind, r.state, r.detail])).toEqual([
      ["egress", "waiting", "203.0.113.5 is not an address of this host"],
      ["map", "waiting", "203.0.113.6 is not an address of this host"],
    ]);
  });

  it("2. iptables: printed back exactly as rendered, in sync on the next apply, VIRT_HOOKS_SNAT gone with the last statement", async () => {
    await ns.must(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    await ns.must(["ip", "addr", "add", "203.0.113.5/32", "dev", "up0"]);
    await ns.must(["ip", "addr", "add", "203.0.113.6/32", "dev", "up0"]);
    for (const dev of ["up0", "up1"]) await ns.must(["ip", "link", "set", dev, "up"]);
    await apply();
    const save = await ns.save(4);
    expect(chainRules(save, "nat", "VIRT_HOOKS_SNAT")).toEqual([
      "-A VIRT_HOOKS_SNAT -d 192.168.122.0/24 -j RETURN",
      "-A VIRT_HOOKS_SNAT -d 224.0.0.0/24 -j RETURN",
      "-A VIRT_HOOKS_SNAT -d 255.255.255.255/32 -j RETURN",
      `-A VIRT_HOOKS_SNAT -s 192.168.122.11/32 ${C(1)} -j SNAT --to-source 203.0.113.5`,
      `-A VIRT_HOOKS_SNAT -s 192.168.122.50/32 ${C(2)} -j SNAT --to-source 203.0.113.6`,
    ]);
    expect(chainRules(save, "nat", "VIRT_HOOKS_PRE")[0]).toBe(`-A VIRT_HOOKS_PRE -d 203.0.113.6/32 ${C(2)} -j DNAT --to-destination 192.168.122.50`);
    expect(chainRules(save, "nat", "VIRT_HOOKS_POST")).toContain("-A VIRT_HOOKS_POST -j VIRT_HOOKS_SNAT");
    expect(chainRules(save, "filter", "VIRT_HOOKS_FWD")[0]).toBe(`-A VIRT_HOOKS_FWD -d 192.168.122.50/32 -m conntrack --ctstate DNAT --ctorigdst 203.0.113.6 ${C(2)} -j ACCEPT`);
    // Ours first in POSTROUTING: our SNAT is decided before libvirt's LIBVIRT_PRT masquerade.
    expect(chainRules(save, "nat", "POSTROUTING")[0]).toBe("-A POSTROUTING -j VIRT_HOOKS_POST");
    // The next event finds it in sync: no transaction.
    const again = await apply("-v");
    expect(again.stdout + again.stderr).not.toMatch(/\*nat|\*filter/);
    expect(await ns.save(4)).toBe(save);
    // The statements go: the chain goes with them, in the same transaction.
    tree.writeRules("50-egress.rules", "forward tcp 192.168.1.100:1122 to devstack:22\n");
    await apply();
    const after = await ns.save(4);
    expect(after).not.toContain("VIRT_HOOKS_SNAT");
    expect(chainRules(after, "nat", "VIRT_HOOKS_PRE")).toHaveLength(1);
    // flush removes everything of ours, VIRT_HOOKS_SNAT included.
    tree.writeRules("50-egress.rules", RULES);
    await apply();
    expect(await ns.save(4)).toContain(":VIRT_HOOKS_SNAT");
    expect((await vh("flush")).code).toBe(0);
    expect(withoutOurs(await ns.save(4))).toBe(await ns.save(4));
  });

  it("3. nftables: the table nft accepts, at srcnat - 1, in sync on the next apply", async () => {
    await ns.must(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    await ns.must(["ip", "addr", "add", "203.0.113.5/32", "dev", "up0"]);
    await ns.must(["ip", "addr", "add", "203.0.113.6/32", "dev", "up0"]);
    for (const dev of ["up0", "up1"]) await ns.must(["ip", "link", "set", dev, "up"]);
    tree.writeRules("00-backend.rules", "set backend nftables\n");
    await apply();
    const table = (await ns.must(["nft", "list", "table", "ip", "virt_hooks"])).stdout;
    expect(table).toContain("type nat hook postrouting priority srcnat - 1; policy accept;");
    expect(table).toMatch(/ip saddr 192\.168\.122\.11 ip daddr != \{ 192\.168\.122\.0\/24, 224\.0\.0\.0\/24, 255\.255\.255\.255 \} counter packets 0 bytes 0 snat to 203\.0\.113\.5 comment "virt-hooks 50-egress\.rules:1"/);
    expect(table).toMatch(/ip daddr 203\.0\.113\.6 counter packets 0 bytes 0 dnat to 192\.168\.122\.50 comment "virt-hooks 50-egress\.rules:2"/);
    expect(table).toMatch(/ct status dnat ct original ip daddr 203\.0\.113\.6 counter packets 0 bytes 0 meta mark set meta mark \| 0x10000000 comment "virt-hooks 50-egress\.rules:2"/);
    const again = await apply("-v");
    expect(again.stdout + again.stderr).not.toContain("table ip virt_hooks {");
  });

  it("5. IPv6 (ip6tables): printed back exactly as rendered, in sync on the next apply", async () => {
    await ns.must(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    for (const a of ["2001:db8::5/128", "2001:db8::6/128"]) await ns.must(["ip", "-6", "addr", "add", a, "dev", "up0", "nodad"]);
    for (const dev of ["up0", "up1"]) await ns.must(["ip", "link", "set", dev, "up"]);
    // Line 3: a forward with no port change, whose DNAT ip6tables-save also prints bare.
    tree.writeRules("50-egress.rules", "egress from [2001:db8::5] for [fd00::11]\nmap 2001:db8::6 to [fd00::12]\nforward udp [2001:db8::5]:53 to [fd00::13]\n");
    await apply();
    const save = await ns.save(6);
    expect(chainRules(save, "nat", "VIRT_HOOKS_SNAT")).toEqual([
      "-A VIRT_HOOKS_SNAT -d ff00::/8 -j RETURN",
      `-A VIRT_HOOKS_SNAT -s fd00::11/128 ${C(1)} -j SNAT --to-source 2001:db8::5`,
      `-A VIRT_HOOKS_SNAT -s fd00::12/128 ${C(2)} -j SNAT --to-source 2001:db8::6`,
    ]);
    expect(chainRules(save, "nat", "VIRT_HOOKS_PRE")).toEqual([
      `-A VIRT_HOOKS_PRE -d 2001:db8::6/128 ${C(2)} -j DNAT --to-destination fd00::12`,
      `-A VIRT_HOOKS_PRE -d 2001:db8::5/128 -p udp -m udp --dport 53 ${C(3)} -j DNAT --to-destination fd00::13`,
    ]);
    const again = await apply("-v");
    expect(again.stdout + again.stderr).not.toMatch(/\*nat|\*filter/);
  });

  it("4. the conntrack deletions are argv the real tool takes", async () => {
    for (const argv of [
      ["-D", "-f", "ipv4", "-s", "192.168.122.11", "--src-nat"],
      ["-D", "-f", "ipv4", "-d", "203.0.113.6", "--dst-nat"],
    ]) {
      const r = await ns.exec(["conntrack", ...argv]);
      expect(r.stderr + r.stdout).toMatch(/0 flow entries have been deleted/);
    }
  });
});
