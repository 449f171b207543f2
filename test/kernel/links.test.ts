// uplink/route applied by the real `ip -batch` inside a private netns: a
// bridge standing in for libvirt's virbr1 and a veth "uplink" holding the
// host's addresses and default routes. Never the host's own network.
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HostTree, isRoot, logLines, networkStatusXml, requireBinary, run, SUMMARY } from "../helpers/binary.js";
import { fixture } from "../helpers/fixtures.js";
import { NetnsPool, type Netns } from "../helpers/netns.js";
import { uplinkLab } from "../helpers/uplink-lab.js";
import { compileText } from "../helpers/rules.js";
import { makeCidr, type Cidr } from "../../src/net/ip.js";
import type { NetworkInfo } from "../../src/libvirt/network.js";
import type { RunTool } from "../../src/effects/exec.js";
import { assertLinks } from "../../src/effects/links-apply.js";

const network: NetworkInfo = {
  name: "route",
  bridge: "virbr1",
  forwardMode: "route",
  subnets: [{ family: 4, gateway: "192.168.100.1", cidr: makeCidr("192.168.100.1", 24) as Cidr, dhcpRanges: [], dhcpHosts: [] }],
};

const RULES = "uplink route em1\nroute route default via 192.0.2.1\nroute route default via 2001:db8::1\nroute route 10.20.0.0/16 via 192.168.100.254\n";

describe.skipIf(!isRoot)("uplink and route in a private netns", () => {
  const pool = new NetnsPool();
  let ns: Netns;
  let stateDir: string;
  let runIn: RunTool;
  let calls: string[][];
  const dirs: string[] = [];

  beforeEach(async () => {
    pool.disposeAll();
    ns = await pool.create();
    stateDir = mkdtempSync(join(tmpdir(), "virt-hooks-links-"));
    dirs.push(stateDir);
    calls = [];
    runIn = async (tool, args, input) => {
      calls.push([tool, ...args]);
      const r = await run(ns.argv([tool, ...args]), input === undefined ? {} : { input });
      return { exitCode: r.code ?? 1, stdout: r.stdout, stderr: r.stderr };
    };
    for (const cmd of [
      "link add em1 type veth peer name wan",
      "link set wan up",
      "link set em1 up",
      "address add 192.0.2.5/24 broadcast 192.0.2.255 dev em1",
      "-6 address add 2001:db8::5/64 nodad dev em1",
      "route add default via 192.0.2.1 dev em1",
      "-6 route add default via 2001:db8::1 dev em1",
      "route add 10.9.0.0/16 via 192.0.2.254 dev em1 metric 50",
      "link add virbr1 type bridge",
      "link set virbr1 up",
      "address add 192.168.100.1/24 dev virbr1",
    ]) await ns.must(["ip", ...cmd.split(" ")]);
  });

  afterAll(() => {
    pool.disposeAll();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const addrs = async (dev: string) => {
    const j = JSON.parse((await ns.must(["ip", "-j", "address", "show", "dev", dev])).stdout) as { master?: string; addr_info: { local: string; prefixlen: number; scope: string }[] }[];
    return { master: j[0]?.master, addresses: (j[0]?.addr_info ?? []).filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`) };
  };
  const routes = async (family: 4 | 6) => {
    const j = JSON.parse((await ns.must(["ip", "-j", `-${family}`, "route", "show", "table", "main"])).stdout) as { dst: string; gateway?: string; dev: string; protocol?: string }[];
    return j.filter((r) => r.protocol !== "kernel").map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""} dev ${r.dev}`);
  };

  it("enslaves the uplink, moves its addresses and routes, adds the declared routes, with one ip -batch; again: nothing", async () => {
    const rules = compileText(RULES).rules;
    const up = await assertLinks("up", network, rules, stateDir, runIn);
    expect(up.problems).toEqual([]);
    expect(calls.filter((c) => c.includes("-batch") && !c.includes("-j"))).toHaveLength(1);
    expect(await addrs("em1")).toEqual({ master: "virbr1", addresses: [] });
    expect((await addrs("virbr1")).addresses).toEqual(["192.168.100.1/24", "192.0.2.5/24", "2001:db8::5/64"]);
    expect(await routes(4)).toEqual(["default via 192.0.2.1 dev virbr1", "10.9.0.0/16 via 192.0.2.254 dev virbr1", "10.20.0.0/16 via 192.168.100.254 dev virbr1"]);
    expect(await routes(6)).toContain("default via 2001:db8::1 dev virbr1");
    expect((await routes(6)).filter((r) => r.includes("em1"))).toEqual([]);
    expect(up.notes).toEqual(["uplink em1 → virbr1 (moved 192.0.2.5/24 2001:db8::5/64, 3 route(s))", "route default via 192.0.2.1, default via 2001:db8::1, 10.20.0.0/16 via 192.168.100.254 dev virbr1"]);

    calls = [];
    const again = await assertLinks("up", network, rules, stateDir, runIn);
    expect(again.plan?.commands).toEqual([]);
    expect(again.notes).toEqual([]);
    expect(calls.filter((c) => c.includes("-batch") && !c.includes("-j"))).toHaveLength(0);

    // libvirt's net-destroy deletes the bridge (releasing em1), then the stopped hook puts things back.
    await ns.must(["ip", "link", "del", "virbr1"]);
    const down = await assertLinks("down", network, rules, stateDir, runIn);
    expect(down.problems).toEqual([]);
    expect(await addrs("em1")).toEqual({ master: undefined, addresses: ["192.0.2.5/24", "2001:db8::5/64"] });
    expect(await routes(4)).toEqual(["default via 192.0.2.1 dev em1", "10.9.0.0/16 via 192.0.2.254 dev em1"]);
    expect(await routes(6)).toContain("default via 2001:db8::1 dev em1");
    expect(down.notes).toEqual(["uplink restored: em1 (192.0.2.5/24, 2001:db8::5/64, 3 route(s))"]);
  });

  it("refuses to enslave the interface carrying the default route when no route default is declared, and changes nothing", async () => {
    const rules = compileText("uplink route em1\nroute route default via 192.0.2.1\n").rules;
    const before = [await addrs("em1"), await routes(4), await routes(6)];
    const r = await assertLinks("up", network, rules, stateDir, runIn);
    expect(r.problems.join("\n")).toMatch(/10-test\.rules:1:1: error: enslaving "em1" into virbr1 would drop the host's IPv6 default route \(via 2001:db8::1 dev em1\)[^\n]*\[would-cut-off\]\n  hint: declare the route through the bridge: route route default via 2001:db8::1/);
    expect([await addrs("em1"), await routes(4), await routes(6)]).toEqual(before);
  });
});

// The same through the compiled executable as libvirt's network hook, inside
// the netns: policy → lock → one ip -batch, reported in the one log line.
describe.skipIf(!isRoot)("the network hook asserts and releases the uplink (compiled binary, private netns)", () => {
  const pool = new NetnsPool();
  let ns: Netns;
  let t: HostTree;

  beforeEach(async () => {
    requireBinary();
    pool.disposeAll();
    ns = await pool.create();
    t = HostTree.withDefaultNetwork();
    t.writeRules("20-uplink.rules", "uplink default em1\nroute default default via 192.0.2.1\n");
    await uplinkLab(ns);
  });

  afterEach(() => t.dispose());
  afterAll(() => pool.disposeAll());

  const hook = (line: string, input: string) => ns.exec(t.hookArgv(line), { env: t.env(), input });
  const routes = async () => (await ns.must(["ip", "-4", "route", "show", "default"])).stdout.trim();

  it("started: em1 into virbr0 with its address and the default route; stopped: all back", async () => {
    const started = await hook("network default started begin -", networkStatusXml([], "", "hook"));
    expect(started.code).toBe(0);
    expect(started.stdout).toBe("");
    const lines = logLines(started.stderr);
    expect(lines[0]).toMatch(SUMMARY("network default started begin"));
    expect(lines[0]).toContain("uplink em1 → virbr0 (moved 192.0.2.5/24, 1 route(s)); route default via 192.0.2.1 dev virbr0");
    expect(lines).toHaveLength(1);
    expect((await ns.must(["ip", "-o", "link", "show", "em1"])).stdout).toContain("master virbr0");
    expect(await routes()).toBe("default via 192.0.2.1 dev virbr0");

    const again = await hook("network default updated begin -", networkStatusXml([], "", "hook"));
    expect(logLines(again.stderr)[0]).not.toContain("uplink");

    await ns.must(["ip", "link", "del", "virbr0"]);
    rmSync(join(t.root, "run/libvirt/network/default.xml")); // libvirt removes the status file
    const stopped = await hook("network default stopped end -", fixture("09-network-stopped-end.xml"));
    expect(stopped.code).toBe(0);
    expect(logLines(stopped.stderr)[0]).toContain("uplink restored: em1 (192.0.2.5/24, 1 route(s))");
    expect((await ns.must(["ip", "-o", "-4", "address", "show", "dev", "em1"])).stdout).toContain("192.0.2.5/24");
    expect(await routes()).toBe("default via 192.0.2.1 dev em1");
  });
});
