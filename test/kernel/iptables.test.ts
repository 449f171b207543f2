// Kernel tier: the compiled executable applies its rules with the REAL
// iptables-restore, inside a private netns that already holds exactly what a
// real libvirtd 11.3 made for the default NAT network (libvirt-default.v*.save).
// Checked with iptables-save: our chains hold the rendered rules, our jumps are
// first, and every byte of libvirt's state is left as it was.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { domainXml, HostTree, isRoot, logLines, networkStatusXml, SUMMARY, type Run } from "../helpers/binary.js";
import { chainRules, NetnsPool, noCounters, withoutOurs, type Netns } from "../helpers/netns.js";

const LIBVIRT_V4 = readFileSync(join(import.meta.dirname, "libvirt-default.v4.save"), "utf8");
const LIBVIRT_V6 = readFileSync(join(import.meta.dirname, "libvirt-default.v6.save"), "utf8");
const GOLDEN = join(import.meta.dirname, "..", "unit", "golden");

// Same rules file name, domain, MAC and address as the unit tier's goldens, so
// what the kernel prints back can be compared with what the renderer wrote.
const RULES_FILE = "50-golden.rules";
const ARTICLE2 = "forward tcp 192.168.1.100:1122 to devstack:22\nforward tcp 192.168.1.100:1180 to devstack:80\n";
const IPV6_RULES = "forward tcp [2001:db8::1]:8080 to [fd00::10]:80\nforward tcp 2222 to [fd00::10]:22\n";
const DEVSTACK = { name: "devstack", mac: "52:54:00:6c:3c:11", ip: "192.168.122.11" };

const JUMPS = [
  { table: "nat", chain: "PREROUTING", ours: "VIRT_HOOKS_PRE" },
  { table: "nat", chain: "OUTPUT", ours: "VIRT_HOOKS_OUT" },
  { table: "nat", chain: "POSTROUTING", ours: "VIRT_HOOKS_POST" },
  { table: "filter", chain: "FORWARD", ours: "VIRT_HOOKS_FWD" },
] as const;

/**
 * How iptables-save prints a --ctorigdst host address: without its /32 or /128
 * (the renderer writes them, so the kernel never prints back what was rendered).
 */
const asKernelPrints = (line: string) => line.replace(/--ctorigdst (\S+)\/(?:32|128) /, "--ctorigdst $1 ");

/** The "-A VIRT_HOOKS_*" lines of a unit-tier golden transaction, per our chain (`kernel`: as iptables-save prints them). */
function goldenRules(file: string, kernel = true): Map<string, string[]> {
  const byChain = new Map<string, string[]>(JUMPS.map((j) => [j.ours, []]));
  for (const line of readFileSync(join(GOLDEN, file), "utf8").split("\n")) {
    const m = /^-A (VIRT_HOOKS_\w+) /.exec(line);
    if (m) byChain.get(m[1] as string)?.push(kernel ? asKernelPrints(line) : line);
  }
  return byChain;
}

function expectOurChains(save: string, expected: Map<string, string[]>): void {
  for (const j of JUMPS) expect(chainRules(save, j.table, j.ours), j.ours).toEqual(expected.get(j.ours));
}

/** Each of our jumps exactly once and rule #1 of its built-in chain; the rest of the chain is libvirt's, in libvirt's order. */
function expectJumpsFirst(save: string, libvirtSave: string): void {
  for (const j of JUMPS) {
    const rules = chainRules(save, j.table, j.chain);
    expect(rules[0], `${j.table} ${j.chain}`).toBe(`-A ${j.chain} -j ${j.ours}`);
    expect(rules.slice(1), `${j.table} ${j.chain}`).toEqual(chainRules(libvirtSave, j.table, j.chain));
  }
}

const d = describe.skipIf(!isRoot);

d("kernel: iptables-restore beside libvirt's chains", () => {
  const pool = new NetnsPool();
  let ns: Netns;
  let tree: HostTree;
  /** The libvirt-only state, as this kernel prints it. */
  let before4: string;
  let before6: string;

  const vh = (argv: string[], input?: string, pathFirst?: string): Promise<Run> => ns.exec(argv, { env: tree.env(pathFirst), ...(input !== undefined ? { input } : {}) });
  const apply = async () => {
    const r = await vh(tree.cliArgv("apply"));
    expect(r.code, r.stderr).toBe(0);
    return r;
  };
  /** A hook event; qemu start/reconnect get devstack's live XML, network events the live network. */
  const hook = async (line: string) => {
    const xml = line.startsWith("qemu") ? domainXml(DEVSTACK.name, DEVSTACK.mac, "start") : networkStatusXml([DEVSTACK], "", "hook");
    const r = await vh(tree.hookArgv(line), xml);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    return r;
  };

  beforeEach(async () => {
    ns = await pool.create();
    await ns.restore(4, LIBVIRT_V4);
    await ns.restore(6, LIBVIRT_V6);
    before4 = await ns.save(4);
    before6 = await ns.save(6);
    expect(withoutOurs(before4)).toBe(before4);
    tree = HostTree.withDefaultNetwork([DEVSTACK]);
    tree.startDomain(DEVSTACK.name, DEVSTACK.mac);
    tree.writeRules(RULES_FILE, ARTICLE2);
  });

  afterEach(() => {
    pool.disposeAll();
    tree.dispose();
  });

  // inSync() compares text, so what we render must be what iptables-save prints
  // (e.g. "--ctorigdst A", never "A/32"), or every event rewrites our chains.
  it("0. the kernel prints our rules back exactly as rendered (what inSync compares)", async () => {
    await apply();
    expectOurChains(await ns.save(4), goldenRules("article2-forwards.restore", false));
    // The IPv6 golden was rendered from the same file name, lines 1-2.
    tree.writeRules(RULES_FILE, IPV6_RULES);
    await apply();
    expectOurChains(await ns.save(6), goldenRules("ipv6.restore", false));
  });

  it("1. apply: our chains hold exactly the rendered rules, our jumps come first, libvirt's bytes are untouched", async () => {
    await apply();
    const after = await ns.save(4);
    expectOurChains(after, goldenRules("article2-forwards.restore"));
    expectJumpsFirst(after, before4);
    expect(chainRules(after, "filter", "FORWARD")).toEqual(["-A FORWARD -j VIRT_HOOKS_FWD", "-A FORWARD -j LIBVIRT_FWX", "-A FORWARD -j LIBVIRT_FWI", "-A FORWARD -j LIBVIRT_FWO"]);
    expect(chainRules(after, "nat", "POSTROUTING")).toEqual(["-A POSTROUTING -j VIRT_HOOKS_POST", "-A POSTROUTING -j LIBVIRT_PRT"]);
    expect(withoutOurs(after)).toBe(before4);
    // No IPv6 rules: that family is not touched at all.
    expect(await ns.save(6)).toBe(before6);
  });

  it("1b. a qemu start hook (no status file yet, the XML on stdin) applies the same rules", async () => {
    tree.stopDomain(DEVSTACK.name);
    const r = await hook("qemu devstack start begin -");
    expect(logLines(r.stderr)).toEqual([expect.stringMatching(SUMMARY("qemu devstack start begin"))]);
    expect(r.stderr).toContain("ipv4 +8 -0");
    const after = await ns.save(4);
    expectOurChains(after, goldenRules("article2-forwards.restore"));
    expectJumpsFirst(after, before4);
    expect(withoutOurs(after)).toBe(before4);
  });

  /** One apply, a packet counted by our nat OUTPUT rule, then five more events: none may make a transaction. */
  async function expectIdempotent(family: 4 | 6 = 4): Promise<void> {
    await apply();
    const once = await ns.save(family);
    if (family === 4) {
      // The host's own connection to 192.168.1.100:1122 is DNAT'd by VIRT_HOOKS_OUT to
      // devstack's address (local here, so refused at once): that rule's counter becomes 1.
      await ns.must(["ip", "link", "add", "name", "vh-a", "type", "veth", "peer", "name", "vh-b"]);
      await ns.must(["ip", "addr", "add", "192.168.1.100/24", "dev", "vh-a"]);
      await ns.must(["ip", "addr", "add", `${DEVSTACK.ip}/24`, "dev", "vh-a"]);
      for (const dev of ["vh-a", "vh-b"]) await ns.must(["ip", "link", "set", dev, "up"]);
      await ns.exec(["bash", "--norc", "-c", "exec 3<>/dev/tcp/192.168.1.100/1122"]);
    }
    const counted = await ns.save(family, true);
    if (family === 4) expect(chainRules(counted, "nat", "VIRT_HOOKS_OUT").find((l) => l.includes("--dport 1122"))).toMatch(/^\[1:\d+\] -A VIRT_HOOKS_OUT /);
    const events = [
      () => apply(),
      () => hook("qemu devstack start begin -"),
      () => hook("qemu devstack reconnect begin -"),
      () => hook("network default started begin -"),
      () => hook("network default updated begin -"),
    ];
    for (const event of events) {
      const r = await event();
      const out = r.stdout + r.stderr;
      expect(out).toContain(`ipv${family} unchanged`);
      expect(out).not.toMatch(/ipv\d \+/);
    }
    // Our rules' counters survive: no transaction recreated our chains.
    const ourLines = (save: string) => save.split("\n").filter((l) => l.includes("VIRT_HOOKS_"));
    expect(ourLines(await ns.save(family, true))).toEqual(ourLines(counted));
    // And nothing else moved (chain policy counters do, with the packet above).
    expect(noCounters(await ns.save(family))).toBe(noCounters(once));
  }

  it("2a. idempotence (forwards on any host address): five more applies and hook events change nothing, counters survive", async () => {
    tree.writeRules(RULES_FILE, "forward tcp 1122 to devstack:22\nforward udp,tcp 1180 to devstack:80\n");
    await expectIdempotent();
  });

  it("2b. idempotence with the second article's forwards (host address 192.168.1.100)", async () => {
    await expectIdempotent();
  });

  it("3a. libvirt re-adds its jumps at position 1 above ours: the next event puts ours first again, once", async () => {
    await apply();
    const good = await ns.save(4);
    // What libvirt does when its jump is missing: insert it at the top.
    await ns.iptables(4, "-D", "FORWARD", "-j", "LIBVIRT_FWX");
    await ns.iptables(4, "-I", "FORWARD", "1", "-j", "LIBVIRT_FWX");
    await ns.iptables(4, "-t", "nat", "-D", "POSTROUTING", "-j", "LIBVIRT_PRT");
    await ns.iptables(4, "-t", "nat", "-I", "POSTROUTING", "1", "-j", "LIBVIRT_PRT");
    const buried = await ns.save(4);
    expect(chainRules(buried, "filter", "FORWARD")[0]).toBe("-A FORWARD -j LIBVIRT_FWX");
    const r = await hook("qemu devstack reconnect begin -");
    // Same rules: only the jumps move back to the top.
    expect(r.stderr).toMatch(/ipv4 re-asserted/);
    const after = await ns.save(4);
    expectJumpsFirst(after, before4);
    expect(after).toBe(good);
  });

  it("3b. FORWARD and POSTROUTING flushed, then only libvirt's jumps re-added: the next event restores ours, no duplicates", async () => {
    await apply();
    const good = await ns.save(4);
    await ns.iptables(4, "-F", "FORWARD");
    await ns.iptables(4, "-t", "nat", "-F", "POSTROUTING");
    for (const chain of ["LIBVIRT_FWO", "LIBVIRT_FWI", "LIBVIRT_FWX"]) await ns.iptables(4, "-I", "FORWARD", "1", "-j", chain);
    await ns.iptables(4, "-t", "nat", "-I", "POSTROUTING", "1", "-j", "LIBVIRT_PRT");
    await hook("network default started begin -");
    expect(await ns.save(4)).toBe(good);
  });

  it("3c. a duplicate or misplaced jump of ours is reduced to one, first", async () => {
    await apply();
    const good = await ns.save(4);
    await ns.iptables(4, "-A", "FORWARD", "-j", "VIRT_HOOKS_FWD");
    await ns.iptables(4, "-t", "nat", "-D", "PREROUTING", "-j", "VIRT_HOOKS_PRE");
    await ns.iptables(4, "-t", "nat", "-A", "PREROUTING", "-j", "VIRT_HOOKS_PRE");
    await apply();
    expect(await ns.save(4)).toBe(good);
  });

  it("4a. a domain stopping removes its rules and leaves libvirt's", async () => {
    await hook("qemu devstack start begin -");
    // libvirt may still have the status file while the stopped hook runs.
    const r = await hook("qemu devstack stopped end -");
    expect(r.stderr).toMatch(/ipv4 \+0 -8/);
    tree.stopDomain(DEVSTACK.name);
    const after = await ns.save(4);
    for (const j of JUMPS) {
      expect(chainRules(after, j.table, j.ours), j.ours).toEqual([]);
      const jumps = chainRules(after, j.table, j.chain).filter((l) => l.includes(j.ours));
      expect(jumps.length).toBeLessThanOrEqual(1);
      if (jumps.length) expect(chainRules(after, j.table, j.chain)[0]).toBe(jumps[0]);
    }
    expect(withoutOurs(after)).toBe(before4);
    // ...and the next apply agrees: nothing to do.
    expect((await apply()).stdout).toContain("ipv4 unchanged");
  });

  it("4b. a rule deleted from rules.d disappears at the next apply; the others stay", async () => {
    tree.writeRules("60-extra.rules", "forward tcp 8022 to devstack:22\n");
    await apply();
    const both = await ns.save(4);
    expect(both).toContain("60-extra.rules:1");
    tree.removeRules("60-extra.rules");
    await apply();
    const after = await ns.save(4);
    expect(after).not.toContain("60-extra.rules");
    expectOurChains(after, goldenRules("article2-forwards.restore"));
    expectJumpsFirst(after, before4);
  });

  it("4c. flush removes our jumps and chains (both families) and leaves libvirt's intact", async () => {
    tree.writeRules("60-v6.rules", IPV6_RULES);
    await apply();
    expect(await ns.save(6)).toContain("VIRT_HOOKS_FWD");
    const r = await vh(tree.cliArgv("flush"));
    expect(r.code, r.stderr).toBe(0);
    expect(await ns.save(4)).toBe(before4);
    expect(await ns.save(6)).toBe(before6);
    // A second flush finds nothing to do and still succeeds.
    expect((await vh(tree.cliArgv("flush"))).code).toBe(0);
  });

  it("5. IPv6 forwards go through ip6tables-restore the same way; IPv4 is left alone", async () => {
    tree.removeRules(RULES_FILE);
    tree.writeRules(RULES_FILE, IPV6_RULES);
    const r = await apply();
    expect(r.stdout).toMatch(/ipv6 \+\d+ -0/);
    const after6 = await ns.save(6);
    expectOurChains(after6, goldenRules("ipv6.restore"));
    expectJumpsFirst(after6, before6);
    expect(withoutOurs(after6)).toBe(before6);
    expect(await ns.save(4)).toBe(before4);
  });

  it("5b. IPv6 idempotence for a forward on any host address", async () => {
    tree.removeRules(RULES_FILE);
    // With a rule naming devstack too, so that its qemu events reconcile.
    tree.writeRules(RULES_FILE, "forward tcp 2222 to [fd00::10]:22\nforward tcp 1122 to devstack:22\n");
    await expectIdempotent(6);
  });

  // BUG (see 0.): "--ctorigdst 2001:db8::1/128" comes back as "--ctorigdst 2001:db8::1".
  it("5c. IPv6 idempotence with a host address", async () => {
    tree.removeRules(RULES_FILE);
    tree.writeRules(RULES_FILE, IPV6_RULES + "forward tcp 1122 to devstack:22\n");
    await expectIdempotent(6);
  });

  it("6a. a transaction iptables-restore refuses leaves the previous rules whole (apply exits 3, a hook still 0)", async () => {
    await apply();
    const good = await ns.save(4);
    const fake = tree.fakeTools({ "iptables-restore": 'cat >/dev/null; echo "iptables-restore: fake failure for the test" >&2; exit 1' });
    tree.writeRules("60-extra.rules", "forward tcp 8022 to devstack:22\n");
    const r = await vh(tree.cliArgv("apply"), undefined, fake);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("fake failure for the test");
    expect(await ns.save(4)).toBe(good);
    const h = await vh(tree.hookArgv("qemu devstack reconnect begin -"), domainXml(DEVSTACK.name, DEVSTACK.mac, "start"), fake);
    expect(h.code).toBe(0);
    expect(h.stdout).toBe("");
    expect(h.stderr).toMatch(/ipv4 FAILED/);
    expect(await ns.save(4)).toBe(good);
  });

  // iptables-restore commits each table at its own COMMIT; filter goes first
  // and a refused later table is rolled back, so either way nothing is half-applied.
  it("6b. a transaction refused in its last table (nat) leaves the first (filter) as it was too", async () => {
    await apply();
    const good = await ns.save(4);
    // The real iptables-restore, fed the product's transaction with one bad line added to
    // its last table whenever it carries the new forward (so the rollback itself goes through).
    const fake = tree.fakeTools({
      "iptables-restore": `t=$(cat)
if grep -q 8022 <<<"$t"; then t=$(awk '/^COMMIT$/ { n++; if (n == 2) print "-A VIRT_HOOKS_FWD -j NO_SUCH_CHAIN" } { print }' <<<"$t"); fi
printf '%s\\n' "$t" | /usr/sbin/iptables-restore "$@"`,
    });
    tree.writeRules("60-extra.rules", "forward tcp 8022 to devstack:22\n");
    const r = await vh(tree.cliArgv("apply"), undefined, fake);
    expect(r.code).toBe(3);
    expect(await ns.save(4)).toBe(good);
  });
});
