// Binary tier, admin face: status, plan --event, explain and --json, run as the
// compiled executable against a scratch VIRT_HOOKS_ROOT, with the real
// iptables/nft inside a private network namespace (never the host's firewall).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { domainXml, HostTree, isRoot, run, type Run } from "../helpers/binary.js";
import { NetnsPool, type Netns } from "../helpers/netns.js";

const VM2_MAC = "52:54:00:6c:3c:02";
const VM3_MAC = "52:54:00:6c:3c:03";
const RULES = "forward tcp 2222 to vm1:22\nforward tcp,udp 5000-5001 to vm1\nforward tcp 2223 to vm2:22\n";

/** default network (vm1 .10, vm2 .20 fixed), vm1 running, vm2 defined but stopped, dnsmasq's lease for vm1. */
function tree(rules = RULES): HostTree {
  const t = HostTree.withDefaultNetwork([{ mac: VM2_MAC, name: "vm2", ip: "192.168.122.20" }]);
  t.startDomain("vm1", "52:54:00:6c:3c:01");
  t.writeRules("50-vm.rules", rules);
  for (const d of ["etc/libvirt/qemu/networks", "var/lib/libvirt/dnsmasq"]) mkdirSync(join(t.root, d), { recursive: true });
  writeFileSync(join(t.root, "etc/libvirt/qemu/vm1.xml"), domainXml("vm1", "52:54:00:6c:3c:01", "start"));
  writeFileSync(join(t.root, "etc/libvirt/qemu/vm2.xml"), domainXml("vm2", VM2_MAC, "start"));
  lease(t, "192.168.122.10");
  return t;
}

function lease(t: HostTree, ip: string): void {
  writeFileSync(join(t.root, "var/lib/libvirt/dnsmasq/virbr0.status"), JSON.stringify([{ "ip-address": ip, "mac-address": "52:54:00:6c:3c:01", hostname: "vm1", "expiry-time": 1900000000 }], null, 2));
}

describe.skipIf(!isRoot)("binary: status against the real firewall in a private netns", () => {
  const pool = new NetnsPool();
  let t: HostTree;
  let ns: Netns;
  const cli = (...args: string[]): Promise<Run> => ns.exec(t.cliArgv(...args), { env: t.env() });
  const json = async (...args: string[]) => {
    const r = await cli(...args, "--json");
    expect(r.stderr).toBe("");
    return { code: r.code, doc: JSON.parse(r.stdout) };
  };

  beforeAll(async () => {
    t = tree();
    ns = await pool.create();
    expect((await cli("apply")).code).toBe(0);
  });
  afterAll(() => {
    pool.disposeAll();
    t.dispose();
  });

  it("everything as declared: exit 0, one aligned line per rule, the summary", async () => {
    const r = await cli("status");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^RULE +STATE +TARGET +LEASE +CONNS +PKTS +BYTES +STATEMENT$/);
    expect(lines[1]).toMatch(/^50-vm\.rules:1 +live +192\.168\.122\.10:22 +192\.168\.122\.10 +\d+ +\d+ +\d+ +forward tcp 2222 to vm1:22$/);
    expect(lines[3]).toMatch(/^50-vm\.rules:3 +waiting +- +- +- +- +- +forward tcp 2223 to vm2:22 +\(domain "vm2" is not running\)$/);
    // Aligned: every STATE starts in the same column.
    expect(new Set(lines.slice(0, 4).map((l) => l.search(/(STATE|live|waiting)/))).size).toBe(1);
    expect(r.stdout).toContain("3 rule(s): 2 live, 0 drifted, 1 waiting, 0 failed; iptables (");
    expect(r.stdout).toContain("kernel as declared");
    expect(r.stdout).not.toContain("\x1b[");
  });

  it("--json: version 1, rules with targets, lease, counters; no drift", async () => {
    const { code, doc } = await json("status");
    expect(code).toBe(0);
    expect(doc).toMatchObject({ version: 1, command: "status", ok: true, exitCode: 0, backend: { name: "iptables" }, summary: { live: 2, waiting: 1, failed: 0, drifted: 0 }, drift: [], errors: [] });
    expect(doc.rules[0]).toEqual({
      origin: "50-vm.rules:1",
      file: join(t.rulesDir, "50-vm.rules"),
      line: 1,
      kind: "forward",
      text: "forward tcp 2222 to vm1:22",
      state: "live",
      detail: "→ 192.168.122.10:22",
      targets: ["192.168.122.10:22"],
      domain: "vm1",
      mac: "52:54:00:6c:3c:01",
      network: "default",
      lease: { ip: "192.168.122.10", mac: "52:54:00:6c:3c:01", hostname: "vm1", expiry: 1900000000, differs: false },
      counters: { connections: expect.any(Number), packets: expect.any(Number), bytes: expect.any(Number), note: null },
    });
    expect(doc.rules[2]).toMatchObject({ state: "waiting", lease: null, counters: null, domain: "vm2" });
  });

  it("counters count the host's own connection through the forward", async () => {
    // A host address, and the guest's address on lo too, so the DNAT'd SYN has
    // somewhere to go (and is refused there): nat OUTPUT counts the flow.
    await ns.must(["ip", "addr", "add", "10.9.9.9/32", "dev", "lo"]);
    await ns.must(["ip", "addr", "add", "192.168.122.10/32", "dev", "lo"]);
    await ns.exec(["timeout", "2", "bash", "--norc", "-c", "exec 3<>/dev/tcp/10.9.9.9/2222"]);
    const { doc } = await json("status");
    expect(doc.rules[0].counters.connections).toBeGreaterThanOrEqual(1);
  });

  it("a lease that differs from the fixed address: ! in LEASE and a lease-differs warning, exit still 0", async () => {
    lease(t, "192.168.122.57");
    try {
      const r = await cli("status");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/50-vm\.rules:1 +live +192\.168\.122\.10:22 +192\.168\.122\.57! /);
      expect(r.stderr).toContain("50-vm.rules:1:1: warning: \"vm1\" (MAC 52:54:00:6c:3c:01) holds the lease 192.168.122.57, but its fixed address is 192.168.122.10");
      expect(r.stderr.match(/lease-differs/g)).toHaveLength(1);
    } finally {
      lease(t, "192.168.122.10");
    }
  });

  it("drift: our FORWARD jump pushed down by a rule above it, then a rule of ours deleted: exit 5 with the fix; apply heals it", async () => {
    await ns.iptables(4, "-I", "FORWARD", "1", "-j", "ACCEPT");
    await ns.iptables(4, "-t", "nat", "-D", "VIRT_HOOKS_PRE", "1");
    const r = await cli("status");
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/50-vm\.rules:1 +drifted +192\.168\.122\.10:22 .*the kernel lacks 1 of its firewall rule\(s\); run virt-hooks apply/);
    expect(r.stdout).toMatch(/ipv4 +filter FORWARD +jump-not-first +- +-j VIRT_HOOKS_FWD is rule 2, behind 1 other rule\(s\)/);
    expect(r.stdout).toMatch(/ipv4 +nat VIRT_HOOKS_PRE +rule-missing +50-vm\.rules:1 +-A VIRT_HOOKS_PRE /);
    expect(r.stdout).toContain("fix: virt-hooks apply");
    expect(r.stdout).toContain("2 difference(s) in the kernel: run virt-hooks apply");
    const { doc } = await json("status");
    expect(doc).toMatchObject({ ok: false, exitCode: 5, summary: { drifted: 1 } });
    expect(doc.drift.map((d: { kind: string }) => d.kind).sort()).toEqual(["jump-not-first", "rule-missing"]);
    expect((await cli("apply")).code).toBe(0);
    expect((await cli("status")).code).toBe(0);
    await ns.iptables(4, "-D", "FORWARD", "2");
  });

  it("a rule that cannot be resolved: exit 4, the fix on stderr", async () => {
    t.startDomain("vm3", VM3_MAC);
    t.writeRules("60-vm3.rules", "forward tcp 2224 to vm3:22\n");
    try {
      expect((await cli("apply")).code).toBe(4);
      const r = await cli("status");
      expect(r.code).toBe(4);
      expect(r.stdout).toMatch(/60-vm3\.rules:1 +failed /);
      expect(r.stderr).toContain("virsh net-update default add ip-dhcp-host");
    } finally {
      t.removeRules("60-vm3.rules");
      t.stopDomain("vm3");
      await cli("apply");
    }
  });

  it("plan --event: vm2's start would make its rule live (from its definition); vm1's stop would remove its rules", async () => {
    const start = await cli("plan", "--event", "qemu vm2 start begin");
    expect(start.code, start.stderr).toBe(0);
    expect(start.stdout).toContain(`qemu vm2 start begin: reconcile with the view corrected by the event (event XML stood in for by: definition ${join(t.root, "etc/libvirt/qemu/vm2.xml")}); refusable with set on-error block`);
    expect(start.stdout).toMatch(/^waiting → live .*50-vm\.rules:3  forward tcp 2223 to vm2:22  \(→ 192\.168\.122\.20:22\)$/m);
    expect(start.stdout).toMatch(/# ipv4: would apply \(\+\d+ -0 rules\)/);
    const stop = await json("plan", "--event", "qemu vm1 stopped end");
    expect(stop.doc.event).toMatchObject({ driver: "qemu", object: "vm1", op: "stopped", subop: "end", decision: "reconcile", vetoable: false });
    expect(stop.doc.rules.map((r: { before: string; state: string }) => `${r.before}>${r.state}`)).toEqual(["live>waiting", "live>waiting", "waiting>waiting"]);
    expect(stop.doc.families[0]).toMatchObject({ family: 4, inSync: false, added: 0 });
    expect(stop.doc.families[0].removed).toBeGreaterThan(0);
    // Nothing changed for real.
    expect((await cli("status")).code).toBe(0);
  });

  it("plan --event for a guest no rule names: ignored, nothing would change", async () => {
    const r = await cli("plan", "--event", "qemu other start begin");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("qemu other start begin: ignored (no rule names this domain); the hook would change nothing\n");
    const { doc } = await json("plan", "--event", "qemu other start begin");
    expect(doc.event).toMatchObject({ decision: "ignore", why: "no rule names this domain" });
    expect(doc.families).toEqual([]);
  });
});

describe.skipIf(!isRoot)("binary: status on the nftables backend", () => {
  const pool = new NetnsPool();
  let t: HostTree;
  let ns: Netns;
  const cli = (...args: string[]): Promise<Run> => ns.exec(t.cliArgv(...args), { env: t.env() });
  beforeAll(async () => {
    t = tree(`set backend nftables\n${RULES}`);
    ns = await pool.create();
    // libvirt's table and forward chain, as its nftables backend creates them.
    await ns.must(["nft", "add table ip libvirt_network; add chain ip libvirt_network forward { type filter hook forward priority 0; policy accept; }; add rule ip libvirt_network forward counter"]);
    const a = await cli("apply");
    expect(a.code, a.stderr).toBe(0);
  });
  afterAll(() => {
    pool.disposeAll();
    t.dispose();
  });

  it("as declared: exit 0; map-element forwards say they have no per-rule counter", async () => {
    const r = await cli("status", "--json");
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ exitCode: 0, backend: { name: "nftables" }, drift: [] });
    expect(doc.rules[0].state).toBe("live");
    // Unless the renderer declares element counters, forwards without from/in are not counted per rule.
    if (doc.rules[0].counters.note) expect(doc.rules[0].counters).toMatchObject({ connections: null, packets: null, bytes: null, note: "nftables map element: no per-rule counter" });
  });

  it("our accept gone from libvirt's forward chain: exit 5, accept-missing", async () => {
    const list = await ns.must(["nft", "-a", "list", "chain", "ip", "libvirt_network", "forward"]);
    const handle = /comment "virt-hooks" # handle (\d+)/.exec(list.stdout)?.[1];
    expect(handle).toBeDefined();
    await ns.must(["nft", "delete", "rule", "ip", "libvirt_network", "forward", "handle", handle as string]);
    const r = await cli("status");
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/ipv4 +ip libvirt_network forward +accept-missing +- +our accept is gone/);
    expect((await cli("apply")).code).toBe(0);
    expect((await cli("status")).code).toBe(0);
  });

  it("flush removes our table and our accept from libvirt's chain; status then reports the drift", async () => {
    const f = await cli("flush");
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toContain("ipv4: removed the virt_hooks nftables table");
    expect((await ns.must(["nft", "list", "tables"])).stdout).not.toContain("virt_hooks");
    expect((await ns.must(["nft", "list", "chain", "ip", "libvirt_network", "forward"])).stdout).not.toContain("virt-hooks");
    const r = await cli("status", "--json");
    expect(JSON.parse(r.stdout).drift.map((d: { kind: string }) => d.kind)).toEqual(["table-missing", "accept-missing"]);
  });
});

describe("binary: check --json, explain, usage", () => {
  let t: HostTree;
  const cli = (...args: string[]) => run(t.cliArgv(...args), { env: t.env() });
  afterEach(() => t.dispose());

  it("check --json: lint warnings (unknown domain with the closest name, a host address not on this host), exit 0", async () => {
    t = tree("forward tcp 2222 to vm1:22\nforward tcp 8080 to vmm2:80\nforward tcp 192.0.2.77:8081 to vm1:80\n");
    const r = await cli("check", "--json");
    expect(r.stderr).toBe("");
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ version: 1, command: "check", ok: true, exitCode: 0, counts: { files: 1, forwards: 3, errors: 0, warnings: 2, unresolved: 0 } });
    expect(doc.diagnostics).toEqual([
      { severity: "warning", code: "unknown-domain", message: 'no domain named "vmm2" is defined on this host (the rule waits for it)', hint: 'did you mean "vm2"?', file: join(t.rulesDir, "50-vm.rules"), line: 2, column: 1, related: null },
      expect.objectContaining({ code: "not-local-address", line: 3 }),
    ]);
    const text = await cli("check");
    expect(text.stderr).toContain("50-vm.rules:2:1: warning: no domain named \"vmm2\" is defined on this host (the rule waits for it) [unknown-domain]\n  hint: did you mean \"vm2\"?");
    expect(text.code).toBe(0);
  });

  it("explain a running guest: NIC, network, DHCP host entry, lease, rules and what they render", async () => {
    t = tree();
    const r = await cli("explain", "vm1");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`domain vm1: running (${join(t.root, "run/libvirt/qemu/vm1.xml")})`);
    expect(r.stdout).toMatch(/  nic 52:54:00:6c:3c:01 type network tap vnet\d+ on network default \(active, bridge virbr0\)\n    fixed address 192\.168\.122\.10 \(DHCP host entry matched by MAC\)\n    lease 192\.168\.122\.10 hostname vm1, expires 2030-03-17T17:46:40Z\n/);
    expect(r.stdout).toContain("  50-vm.rules:1  forward tcp 2222 to vm1:22\n    live: → 192.168.122.10:22\n    iptables -t nat -A VIRT_HOOKS_PRE -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 2222");
    expect(r.stdout).not.toContain("vm2:22");
  });

  it("explain a stopped guest: what its start would do", async () => {
    t = tree();
    const r = await cli("explain", "vm2");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("domain vm2: defined, not running");
    expect(r.stdout).toContain("fixed address 192.168.122.20 (DHCP host entry matched by MAC)");
    expect(r.stdout).toContain("    waiting now; on start: live: → 192.168.122.20:22");
  });

  it("explain an unknown guest: exit 4 and the closest name", async () => {
    t = tree();
    const r = await cli("explain", "vm9");
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('domain vm9: not running and not defined on this host (did you mean "vm1"?)');
  });

  it("usage errors exit 2", async () => {
    t = tree();
    for (const args of [["apply", "--json"], ["status", "extra"], ["explain"], ["status", "--event", "qemu a start begin"], ["plan", "--event", "qemu"]]) {
      const r = await cli(...args);
      expect(r.code, args.join(" ")).toBe(2);
    }
  });

  it("status --help documents the exit codes", async () => {
    t = tree();
    const r = await cli("status", "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("5  drift: the kernel differs from the rules (run: virt-hooks apply)");
  });
});
