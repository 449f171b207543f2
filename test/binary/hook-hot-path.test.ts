// Binary tier, the hook's hot path (issue 8): what makes it fast must not make
// it wrong. An ignored event starts no process at all; a recorded "already in
// sync" is never trusted over what the kernel holds (nftables: our table
// flushed behind our back is rewritten by the next event). Behaviour only:
// timings live in bench/, not here.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { domainXml, HostTree, isRoot, networkStatusXml, REPO, run } from "../helpers/binary.js";
import { NetnsPool, unshared, type Netns } from "../helpers/netns.js";
import { fixture } from "../helpers/fixtures.js";

const hasStrace = spawnSync("strace", ["-V"]).status === 0;
/** argv in a throw-away netns when we can (root): events that reconcile really apply there. */
const isolated = (argv: string[]) => (isRoot ? unshared(argv) : argv);
const VM = { name: "web", mac: "52:54:00:6c:3c:21", ip: "192.168.122.21" };

describe.skipIf(!hasStrace)("binary: events the hook ignores", () => {
  let tree: HostTree;
  afterEach(() => tree.dispose());

  for (const [what, line] of [
    ["a domain no rule names", "qemu other start begin -"],
    ["an operation with nothing to do", "qemu web prepare begin -"],
  ] as const) {
    it(`${what}: exit 0, one log line, and no child process at all`, async () => {
      tree = HostTree.withDefaultNetwork([VM]);
      tree.writeRules("50-web.rules", "forward tcp 8080 to web:80\n");
      const trace = join(tree.root, "execve.trace");
      const r = await run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", trace, ...tree.hookArgv(line)], {
        env: tree.env(),
        input: domainXml(line.split(" ")[1] as string, VM.mac, "start"),
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/ignored/);
      const execs = readFileSync(trace, "utf8").split("\n").filter((l) => /execve\(.* = 0$/.test(l));
      expect(execs, execs.join("\n")).toHaveLength(1); // the hook itself
    });
  }
});

/** A port-created for VM as libvirt sends it; `portId` 22's (the one startDomain's status file holds) or 16's (a hot-plugged NIC's). */
const portCreated = (fixtureId: "22" | "16") =>
  fixture(`${fixtureId}-network-port-created-begin.xml`)
    .replace(/52:54:00:6c:3c:0[12]/g, VM.mac)
    .replace("<name>vm1</name>", `<name>${VM.name}</name>`)
    .replace("name='vm1' ip='192.168.122.10'", `name='${VM.name}' ip='${VM.ip}'`);

describe.skipIf(!hasStrace)("binary: a libvirtd restart's port-created (issue 28)", () => {
  let tree: HostTree;
  afterEach(() => tree.dispose());

  const traced = async (input: string) => {
    const trace = join(tree.root, "execve.trace");
    const r = await run(isolated(["strace", "-f", "-qq", "-e", "trace=execve", "-o", trace, ...tree.hookArgv("network default port-created begin -")]), { env: tree.env(), input });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    const execs = readFileSync(trace, "utf8").split("\n").filter((l) => /execve\(.* = 0$/.test(l));
    return { log: r.stderr, children: execs.length - 1 };
  };

  it("a port the running guest's status file already holds: ignored, no child; a hot-plugged NIC's port: reconciled", async () => {
    tree = HostTree.withDefaultNetwork([VM]);
    tree.writeRules("50-web.rules", "forward tcp 8080 to web:80\n");
    tree.startDomain(VM.name, VM.mac);
    // The first event compiles rules.d and records its interest; the restart's storm then decides from that record.
    await traced(portCreated("16"));
    const known = await traced(portCreated("22"));
    expect(known.log).toMatch(/ignored \(a recorded port of running guest web: its reconnect or start follows\)/);
    expect(known.children).toBe(0);
    // Rules changed since (no cached interest): decided the same way once compiled.
    tree.writeRules("50-web.rules", "forward tcp 8081 to web:80\n");
    expect((await traced(portCreated("22"))).log).toMatch(/ignored \(a recorded port of running guest web/);
    const hotplug = await traced(portCreated("16"));
    expect(hotplug.log).not.toMatch(/ignored/);
    expect(hotplug.children, hotplug.log).toBeGreaterThan(0);
  });
});

describe("binary: the cached rule interest", () => {
  let tree: HostTree;
  afterEach(() => tree.dispose());

  it("an edit to rules.d decides the very next event (the cache is keyed by the exact text)", async () => {
    tree = HostTree.withDefaultNetwork([VM, { name: "bob", mac: "52:54:00:6c:3c:22", ip: "192.168.122.22" }]);
    tree.writeRules("50-web.rules", "forward tcp 8080 to web:80\n");
    const event = async () => {
      const r = await run(isolated(tree.hookArgv("qemu bob start begin -")), { env: tree.env(), input: domainXml("bob", "52:54:00:6c:3c:22", "start") });
      expect(r.code, r.stderr).toBe(0);
      return r.stderr;
    };
    expect(await event()).toMatch(/ignored \(no rule names this domain\)/);
    expect(await event()).toMatch(/ignored \(no rule names this domain\)/); // from the cache
    // Same file, same length, one name changed.
    tree.writeRules("50-web.rules", "forward tcp 8080 to bob:80\n");
    expect(await event()).not.toMatch(/ignored/);
    tree.removeRules("50-web.rules");
    tree.writeRules("60-web.rules", "forward tcp 8080 to web:80\n");
    expect(await event()).toMatch(/ignored \(no rule names this domain\)/);
  });
});

const LIBVIRT_NFT = `table ip libvirt_network {
	chain forward {
		type filter hook forward priority filter; policy accept;
		counter jump guest_input
	}
	chain guest_input {
		oifname "virbr0" ip daddr 192.168.122.0/24 ct state established,related counter accept
		oifname "virbr0" counter reject
	}
}
`;

describe.skipIf(!isRoot)("binary: nftables, our table changed behind our back", () => {
  const pool = new NetnsPool();
  let ns: Netns;
  let tree: HostTree;

  beforeEach(async () => {
    ns = await pool.create();
    await ns.must(["nft", "-f", "-"], { input: LIBVIRT_NFT });
    tree = new HostTree();
    tree.setNetwork("default", networkStatusXml([VM]).replace("backend='iptables'", "backend='nftables'"));
    tree.writeRules("50-web.rules", "forward tcp 192.168.1.100:8080 to web:80\nforward tcp 192.168.1.100:2222 to web:22\n");
  });
  afterEach(() => {
    pool.disposeAll();
    tree.dispose();
  });

  const hook = async (line: string) => {
    const r = await ns.exec(tree.hookArgv(line), { env: tree.env(), input: domainXml(VM.name, VM.mac, "start") });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    return r.stderr;
  };
  const ourTable = async () => (await ns.must(["nft", "-s", "list", "table", "ip", "virt_hooks"])).stdout;

  it("a flushed chain is rewritten by the next reconnect, then left alone", async () => {
    await hook("qemu web start begin -");
    tree.setDomainStatus(VM.name, domainXml(VM.name, VM.mac));
    const applied = await ourTable();
    expect(applied).toContain("192.168.1.100 . tcp . 8080 : 192.168.122.21 . 80");
    expect(await hook("qemu web reconnect begin -")).toMatch(/nft ipv4 unchanged/);

    await ns.must(["nft", "flush", "chain", "ip", "virt_hooks", "prerouting"]);
    expect(await ourTable()).not.toEqual(applied);
    expect(await hook("qemu web reconnect begin -")).not.toMatch(/unchanged/);
    expect(await ourTable()).toEqual(applied);
    expect(await hook("qemu web reconnect begin -")).toMatch(/nft ipv4 unchanged/);
  });

  it("a map emptied behind our back is refilled", async () => {
    await hook("qemu web start begin -");
    tree.setDomainStatus(VM.name, domainXml(VM.name, VM.mac));
    const applied = await ourTable();
    await ns.must(["nft", "flush", "map", "ip", "virt_hooks", "dnat_addr"]);
    await hook("qemu web reconnect begin -");
    expect(await ourTable()).toEqual(applied);
  });
});

describe.skipIf(!isRoot)("binary: a reconnect storm (libvirtd restarted with guests running)", () => {
  const pool = new NetnsPool();
  afterEach(() => pool.disposeAll());

  /** `count` running guests on default, one forward each, and libvirt's iptables rules in a fresh netns. */
  async function runningGuests(count: number, prefix: string, macByte: number, firstIp: number, firstPort: number) {
    const ns = await pool.create();
    await ns.restore(4, readFileSync(join(REPO, "test/kernel/libvirt-default.v4.save"), "utf8"));
    const guests = Array.from({ length: count }, (_, i) => ({ name: `${prefix}${i}`, mac: `52:54:00:6c:${macByte.toString(16)}:${(16 + i).toString(16)}`, ip: `192.168.122.${firstIp + i}` }));
    const tree = HostTree.withDefaultNetwork(guests);
    tree.writeRules(`50-${prefix}.rules`, guests.map((g, i) => `forward tcp 192.168.1.100:${firstPort + i} to ${g.name}:22\n`).join(""));
    for (const g of guests) tree.startDomain(g.name, g.mac);
    return { ns, guests, tree };
  }

  /** What libvirt hands a reconnect hook: the live <domain>, as its status file holds it. */
  const liveDomain = (g: { name: string; mac: string }) => {
    const status = domainXml(g.name, g.mac);
    return status.slice(status.indexOf("<domain "), status.lastIndexOf("</domain>") + "</domain>".length);
  };

  /** Every guest's reconnect at once, while a stand-in holds our lock (an abstract socket in this netns) for `holdMs`, until all have started. */
  async function stormBehindHeldLock(ns: Netns, guests: readonly { name: string; mac: string }[], tree: HostTree, holdMs: number) {
    const stateDir = join(tree.root, "run/virt-hooks");
    const holder = ns.exec([process.execPath, "-e", `require("net").createServer().listen({ path: "\\0virt-hooks:" + process.argv[1], exclusive: true }, () => setTimeout(() => process.exit(0), ${holdMs}))`, stateDir]);
    await new Promise((r) => setTimeout(r, 300));
    const storm = Promise.all(guests.map((g) => ns.exec(tree.hookArgv(`qemu ${g.name} reconnect begin -`), { env: tree.env(), input: liveDomain(g) })));
    expect((await holder).code).toBe(0);
    return storm;
  }

  it("parallel reconnects leave exactly the desired rules, whoever does the work", async () => {
    const { ns, guests, tree } = await runningGuests(8, "g", 0x3d, 40, 3000);
    try {
      const storm = () =>
        Promise.all(guests.map((g) => ns.exec(tree.hookArgv(`qemu ${g.name} reconnect begin -`), { env: tree.env(), input: domainXml(g.name, g.mac, "start") })));
      for (const round of [1, 2]) {
        const runs = await storm();
        for (const r of runs) {
          expect(r.code, r.stderr).toBe(0);
          expect(r.stderr).not.toMatch(/FAILED|error/);
        }
        const changed = runs.filter((r) => /ipv4 \+/.test(r.stderr)).length;
        expect(changed, `round ${round}`).toBe(round === 1 ? 1 : 0);
        const dnat = (await ns.save(4)).split("\n").filter((l) => l.startsWith("-A VIRT_HOOKS_PRE") && l.includes("DNAT"));
        expect(dnat).toHaveLength(guests.length);
      }
    } finally {
      tree.dispose();
    }
  });

  it("hooks queued behind one that looks after they started are covered without reading the host", async () => {
    const { ns, guests, tree } = await runningGuests(6, "c", 0x3e, 60, 4000);
    try {
      const runs = await stormBehindHeldLock(ns, guests, tree, 3000);
      for (const r of runs) {
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).not.toMatch(/FAILED|error/);
      }
      const covered = runs.filter((r) => /verified by a hook that started after this one/.test(r.stderr));
      expect(covered, runs.map((r) => r.stderr).join("")).toHaveLength(guests.length - 1);
      for (const r of covered) expect(r.stderr).toMatch(/rules 6 live, 0 waiting, 0 failed/);
      expect(runs.filter((r) => /ipv4 \+24 -0/.test(r.stderr))).toHaveLength(1);

      // Later hooks started after that look: each looks for itself (nothing to change).
      const again = await ns.exec(tree.hookArgv("qemu c0 reconnect begin -"), { env: tree.env(), input: liveDomain(guests[0]!) });
      expect(again.stderr).toMatch(/ipv4 unchanged; rules 6 live/);
      expect(again.stderr).not.toMatch(/verified by a hook/);
      const dnat = (await ns.save(4)).split("\n").filter((l) => l.startsWith("-A VIRT_HOOKS_PRE") && l.includes("DNAT"));
      expect(dnat).toHaveLength(guests.length);
    } finally {
      tree.dispose();
    }
  });

  it("a covered hook still reports a warning in rules.d (such rules take the full path)", async () => {
    const { ns, guests, tree } = await runningGuests(4, "w", 0x3f, 80, 5000);
    try {
      // A duplicate: rules.d compiles with a warning, which only the full path (the compiler) can report.
      tree.writeRules("60-dup.rules", "masquerade default\nmasquerade default\n");
      const runs = await stormBehindHeldLock(ns, guests, tree, 2000);
      for (const r of runs) {
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/60-dup\.rules:2:1.*already masqueraded/);
      }
      expect(runs.filter((r) => /verified by a hook that started after this one/.test(r.stderr))).toHaveLength(guests.length - 1);
    } finally {
      tree.dispose();
    }
  });
});
