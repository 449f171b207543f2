// `host NETWORK MAC IP [NAME]`: parse, compile, the plan of DHCP host entries
// against a network's live and persistent sides, and forwards that resolve
// through declared entries. Pure; the e2e tier runs the same against libvirtd.
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { planFixedAddresses, type NetworkSides, type OwnedHost } from "../../src/plan/fixed-addresses.js";
import { resolvePlan } from "../../src/plan/resolve.js";
import { netUpdateArgv } from "../../src/converge/host-entries.js";
import { readOwnedHosts, writeOwnedHosts } from "../../src/effects/state-store.js";
import { formatDiagnostic } from "../../src/rules/diagnostic.js";
import { formatSpan } from "../../src/rules/source.js";
import { compileText } from "../helpers/rules.js";
import { defaultNet, domain, network, view } from "../helpers/host.js";

const MAC = "52:54:00:aa:00:20";
const bare = network("default", "virbr0", "nat", `<ip address='192.168.122.1' prefix='24'><dhcp><range start='192.168.122.100' end='192.168.122.254'/></dhcp></ip>`);
const withEntry = (hostXml: string) => network("default", "virbr0", "nat", `<ip address='192.168.122.1' prefix='24'><dhcp><range start='192.168.122.100' end='192.168.122.254'/>${hostXml}</dhcp></ip>`);

function hostsOf(text: string) {
  const c = compileText(text);
  expect(c.diagnostics.map(formatDiagnostic)).toEqual([]);
  return c.rules.hosts;
}

/** "10-test.rules:1:9 code" per diagnostic (messages here hold MACs, so no parsing of the formatted line). */
const diagnosticsOf = (text: string) => compileText(text).diagnostics.map((d) => `${d.span ? formatSpan(d.span).replace(/^.*\//, "") : "-"} ${d.code}`);

const sides = (s: NetworkSides, name = "default") => new Map([[name, s]]);

describe("host statement: parse and compile", () => {
  it("parses MAC, address and name, normalised", () => {
    const [h] = hostsOf(`host default 52:54:00:AA:00:20 192.168.122.20 web-1`);
    expect(h).toMatchObject({ kind: "host", network: "default", mac: MAC, address: "192.168.122.20", family: 4, name: "web-1" });
    const [v6] = hostsOf(`host default ${MAC} [fd00::0020] web-1`);
    expect(v6).toMatchObject({ address: "fd00::20", family: 6, name: "web-1" });
  });

  it.each([
    ["host", "10-test.rules:1:5 syntax"],
    ["host default", "10-test.rules:1:13 syntax"],
    ["host default 52:54:00:zz:00:20 192.168.122.20", "10-test.rules:1:14 bad-address"],
    ["host default 01:00:5e:00:00:01 192.168.122.20", "10-test.rules:1:14 bad-address"],
    [`host default ${MAC} 192.168.122.300`, "10-test.rules:1:32 bad-address"],
    [`host default ${MAC} 192.168.122.20 web_1`, "10-test.rules:1:47 bad-name"],
    [`host default ${MAC} 192.168.122.20 web extra`, "10-test.rules:1:51 syntax"],
    [`host default ${MAC} fd00::20`, "10-test.rules:1:32 syntax"],
    [`host de/fault ${MAC} 192.168.122.20`, "10-test.rules:1:6 bad-name"],
    [`hots default ${MAC} 192.168.122.20`, "10-test.rules:1:1 unknown-statement"],
  ])("%s -> %s", (text, expected) => {
    expect(diagnosticsOf(text)).toEqual([expected]);
  });

  it("says what a host statement looks like when a word is missing, and suggests host for a typo", () => {
    const [d] = compileText("host default").diagnostics;
    expect(d?.hint).toContain("host NETWORK MAC IP [NAME]");
    expect(compileText("hots x").diagnostics[0]?.hint).toContain('did you mean "host"');
  });

  it("one MAC, one address, one name per network: a later contradiction is a conflict naming both places, a repeat a warning", () => {
    const text = [
      `host default ${MAC} 192.168.122.20 web`,
      `host default ${MAC} 192.168.122.21 web`, // same MAC
      `host default 52:54:00:aa:00:22 192.168.122.20`, // same address
      `host default 52:54:00:aa:00:23 192.168.122.23 web`, // same name
      `host default ${MAC} 192.168.122.20 web`, // repeat
      `host other ${MAC} 192.168.122.20 web`, // another network: fine
    ].join("\n");
    expect(diagnosticsOf(text)).toEqual(["10-test.rules:2:1 conflict", "10-test.rules:3:1 conflict", "10-test.rules:4:1 conflict", "10-test.rules:5:1 duplicate"]);
    const c = compileText(text);
    expect(formatDiagnostic(c.diagnostics[0]!)).toContain("10-test.rules:1:1: the other rule is here");
    expect(c.rules.hosts.map((h) => h.network)).toEqual(["default", "other"]);
  });
});

describe("host statement: the plan against the network", () => {
  const [web] = hostsOf(`host default ${MAC} 192.168.122.20 web`);

  it("adds a missing entry live and persistent in one call, and records it as ours", () => {
    const p = planFixedAddresses([web!], sides({ live: bare, config: bare }), []);
    expect(p.changes).toEqual([{ verb: "add", network: "default", entry: { mac: MAC, name: "web", address: "192.168.122.20" }, parentIndex: 0, live: true, config: true, rule: web }]);
    expect(netUpdateArgv(p.changes[0]!)).toEqual(["net-update", "default", "add", "ip-dhcp-host", `<host mac='${MAC}' name='web' ip='192.168.122.20'/>`, "--parent-index", "0", "--live", "--config"]);
    expect(p.states[0]).toMatchObject({ state: "pending" });
    expect(p.owned).toEqual([{ network: "default", entry: { mac: MAC, name: "web", address: "192.168.122.20" } }]);
  });

  it("adds only to the side that lacks it; nothing when both have it", () => {
    const has = withEntry(`<host mac='${MAC}' name='web' ip='192.168.122.20'/>`);
    expect(planFixedAddresses([web!], sides({ live: has, config: bare }), []).changes.map((c) => [c.live, c.config])).toEqual([[false, true]]);
    expect(planFixedAddresses([web!], sides({ config: bare }), []).changes.map((c) => [c.live, c.config])).toEqual([[false, true]]);
    const same = planFixedAddresses([web!], sides({ live: has, config: has }), []);
    expect(same.changes).toEqual([]);
    expect(same.states[0]).toMatchObject({ state: "live" });
    expect(same.states[0]?.detail).toContain("added by hand");
  });

  it("checks like host add: subnet, gateway, broadcast, with the first free address", () => {
    const cases: [string, RegExp][] = [
      [`host default ${MAC} 10.0.0.5`, /not inside network "default"'s subnet 192.168.122.0\/24/],
      [`host default ${MAC} 192.168.122.1`, /the host's own address/],
      [`host default ${MAC} 192.168.122.255`, /network or broadcast address/],
    ];
    for (const [text, message] of cases) {
      const p = planFixedAddresses(hostsOf(text), sides({ live: bare, config: bare }), []);
      const s = p.states[0]!;
      expect(s.state, text).toBe("failed");
      if (s.state !== "failed") continue;
      expect(s.diagnostic.code).toBe("bad-fixed-address");
      expect(formatDiagnostic(s.diagnostic)).toMatch(/^\/etc\/libvirt\/hooks\/rules.d\/10-test.rules:1:1: error: network "default": /);
      expect(s.diagnostic.message).toMatch(message);
      if (!text.includes("10.0.0.5")) expect(s.diagnostic.hint).toContain("the first free one is 192.168.122.2");
      expect(p.changes).toEqual([]);
    }
  });

  it("inside a DHCP range is fine (dnsmasq reserves it), unless dnsmasq has leased it to another MAC now", () => {
    // libvirt's stock default network: the range spans the whole subnet.
    const stock = network("default", "virbr0", "nat", `<ip address='192.168.122.1' prefix='24'><dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip>`);
    const [h] = hostsOf(`host default ${MAC} 192.168.122.10 web`);
    expect(planFixedAddresses([h!], sides({ live: stock, config: stock, leases: [{ ip: "192.168.122.10", mac: MAC }] }), []).changes).toHaveLength(1);
    const taken = planFixedAddresses([h!], sides({ live: stock, config: stock, leases: [{ ip: "192.168.122.10", mac: "52:54:00:00:00:01", hostname: "other" }, { ip: "192.168.122.2", mac: "52:54:00:00:00:02" }] }), []);
    const s = taken.states[0]!;
    expect(s.state === "failed" && s.diagnostic.message).toBe('network "default": 192.168.122.10 is inside the network\'s DHCP range 192.168.122.2-192.168.122.254 and dnsmasq has leased it to 52:54:00:00:00:01 (other)');
    expect(s.state === "failed" && s.diagnostic.hint).toContain("the first free one is 192.168.122.3");
    expect(taken.changes).toEqual([]);
  });

  it("reports an entry added by hand that contradicts the statement, with the command that frees its place; never touches it", () => {
    const hand = withEntry(`<host mac='${MAC}' name='web' ip='192.168.122.30'/>`);
    const p = planFixedAddresses([web!], sides({ live: hand, config: hand }), []);
    expect(p.changes).toEqual([]);
    const s = p.states[0]!;
    expect(s.state).toBe("failed");
    if (s.state !== "failed") return;
    expect(s.diagnostic.code).toBe("fixed-address-conflict");
    expect(s.diagnostic.message).toBe(`network "default" already gives MAC ${MAC} to <host mac='${MAC}' name='web' ip='192.168.122.30'/> (running network), an entry virt-hooks did not add: it is left as it is`);
    expect(s.diagnostic.hint).toBe(
      `to let this statement replace it: virsh net-update default delete ip-dhcp-host "<host mac='${MAC}' name='web' ip='192.168.122.30'/>" --live --config && virt-hooks apply   (or make the statement match it: host default ${MAC} 192.168.122.30 web)`,
    );
    // Another guest's address or name is as much in the way.
    const byIp = planFixedAddresses([web!], sides({ live: withEntry(`<host mac='52:54:00:aa:00:99' ip='192.168.122.20'/>`) }), []).states[0];
    expect(byIp?.state === "failed" && byIp.diagnostic.message).toContain("already gives address 192.168.122.20");
    const byName = planFixedAddresses([web!], sides({ config: withEntry(`<host mac='52:54:00:aa:00:99' name='web' ip='192.168.122.40'/>`) }), []).states[0];
    expect(byName?.state === "failed" && byName.diagnostic.message).toContain(`already gives name "web"`);
    expect(byName?.state === "failed" && byName.diagnostic.hint).toContain("ip='192.168.122.40'/>\" --config &&");
  });

  it("deletes the entries it added once their statement leaves rules.d, where they still stand as written; keeps hand-added ones", () => {
    const ours: OwnedHost = { network: "default", entry: { mac: MAC, name: "web", address: "192.168.122.20" } };
    const both = withEntry(`<host mac='${MAC}' name='web' ip='192.168.122.20'/><host mac='52:54:00:aa:00:99' name='hand' ip='192.168.122.40'/>`);
    const p = planFixedAddresses([], sides({ live: both, config: both }), [ours]);
    expect(p.changes).toEqual([{ verb: "delete", network: "default", entry: ours.entry, parentIndex: 0, live: true, config: true }]);
    expect(p.owned).toEqual([]);
    // Gone already (deleted by hand): nothing to do, and forgotten.
    expect(planFixedAddresses([], sides({ live: bare, config: bare }), [ours]).changes).toEqual([]);
  });

  it("a changed statement replaces its own old entry: delete first, then add", () => {
    const ours: OwnedHost = { network: "default", entry: { mac: MAC, name: "web", address: "192.168.122.30" } };
    const old = withEntry(`<host mac='${MAC}' name='web' ip='192.168.122.30'/>`);
    const p = planFixedAddresses([web!], sides({ live: old, config: old }), [ours]);
    expect(p.changes.map((c) => `${c.verb} ${c.entry.address}`)).toEqual(["delete 192.168.122.30", "add 192.168.122.20"]);
    expect(p.owned.map((o) => o.entry.address)).toEqual(["192.168.122.20"]);
  });

  it("waits on a host that has no such network (one rules.d for hosts with different networks)", () => {
    const p = planFixedAddresses(hostsOf(`host lab ${MAC} 10.1.0.20`), sides({ live: bare }), []);
    expect(p.states[0]).toMatchObject({ state: "waiting", detail: 'network "lab" is not defined on this host' });
  });

  it("IPv6 entries are matched by name, without a MAC, as libvirt stores them", () => {
    const v6net = network("default", "virbr0", "nat", `<ip family='ipv6' address='fd00::1' prefix='64'><dhcp><range start='fd00::100' end='fd00::1ff'/></dhcp></ip>`);
    const p = planFixedAddresses(hostsOf(`host default ${MAC} [fd00::20] web`), sides({ live: v6net }), []);
    expect(p.changes[0]?.entry).toEqual({ name: "web", address: "fd00::20" });
  });
});

describe("forwards by name resolve through declared fixed addresses", () => {
  const guest = domain("web", [[MAC, "default"]]);

  it("on a host whose network lacks the entry (not converged yet: a guest that just migrated in)", () => {
    const c = compileText(`host default ${MAC} 192.168.122.20 web\nforward tcp 2222 to web:22`);
    const p = resolvePlan(c.rules, view([guest], [bare]));
    expect(p.states[0]).toMatchObject({ state: "live" });
    expect(p.forwards[0]).toMatchObject({ targetAddress: "192.168.122.20" });
  });

  it("the network's own entry wins over a contradicting declaration (it is what dnsmasq gives)", () => {
    const c = compileText(`host default ${MAC} 192.168.122.20 web\nforward tcp 2222 to web:22`);
    const p = resolvePlan(c.rules, view([guest], [withEntry(`<host mac='${MAC}' ip='192.168.122.30'/>`)]));
    expect(p.forwards[0]).toMatchObject({ targetAddress: "192.168.122.30" });
  });

  it("a declaration the network refuses gives no address (the forward says no-fixed-address, with the host statement to write)", () => {
    const c = compileText(`host default ${MAC} 192.168.122.1 web\nforward tcp 2222 to web:22`);
    const s = resolvePlan(c.rules, view([guest], [bare])).states[0];
    expect(s?.state).toBe("failed");
    expect(s?.state === "failed" && s.diagnostic.hint).toContain(`host default ${MAC} 192.168.122.2 web`);
  });

  it("entries of other networks and other NICs are not touched", () => {
    const c = compileText(`host default 52:54:00:00:00:99 192.168.122.99\nforward tcp 1122 to devstack:22`);
    const p = resolvePlan(c.rules, view([domain("devstack", [["52:54:00:6c:3c:11", "default"]])], [defaultNet]));
    expect(p.forwards[0]).toMatchObject({ targetAddress: "192.168.122.11" });
  });
});

describe("the record of what is ours", () => {
  it("round-trips, and is not believed when others could have written it (then nothing is deleted)", () => {
    const dir = mkdtempSync(join(tmpdir(), "vh-owned-"));
    try {
      const file = join(dir, "sub", "fixed-addresses.json");
      expect(readOwnedHosts(file)).toEqual({ owned: [] });
      const owned: OwnedHost[] = [{ network: "default", entry: { mac: MAC, name: "web", address: "192.168.122.20" } }, { network: "six", entry: { name: "web", address: "fd00::20" } }];
      writeOwnedHosts(file, owned);
      expect(readOwnedHosts(file)).toEqual({ owned });
      chmodSync(file, 0o666);
      const r = readOwnedHosts(file);
      expect(r.owned).toEqual([]);
      expect(r.problem).toContain("chmod go-w");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("no hook reaches virsh", () => {
  // A hook calling libvirt deadlocks: the module that runs virsh net-update must
  // not be in the import graph of the hook's entry (static or lazy imports).
  const SRC = resolve(__dirname, "../../src");
  function reachable(entry: string): Set<string> {
    const seen = new Set<string>();
    const todo = [entry];
    while (todo.length) {
      const file = todo.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)/g)) {
        if (/^(?:import|export)\s+type\s/.test(m[0])) continue;
        const spec = (m[1] ?? m[2]) as string;
        todo.push(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
      }
    }
    return seen;
  }

  it("hook/run-hook.ts and everything it loads never import converge/host-entries.ts or converge/admin.ts", () => {
    const graph = reachable(join(SRC, "hook/run-hook.ts"));
    expect(graph.size).toBeGreaterThan(10);
    const rel = [...graph].map((f) => f.slice(SRC.length + 1));
    // It does enter the one door...
    expect(rel).toContain("converge/converge.ts");
    // ...without the step that calls virsh, which only the admin faces pass in.
    expect(rel).not.toContain("converge/host-entries.ts");
    expect(rel).not.toContain("converge/admin.ts");
    // And nothing a hook loads names virsh at all.
    for (const f of graph) expect(readFileSync(f, "utf8"), f).not.toMatch(/findTool\("virsh"\)|"net-update"/);
  });

  it("the converger is reached from apply and the watcher, through converge/admin.ts", () => {
    expect(readdirSync(join(SRC, "converge"))).toContain("host-entries.ts");
    expect([...reachable(join(SRC, "watch/run-watch.ts"))].some((f) => f.endsWith("converge/host-entries.ts"))).toBe(true);
    expect([...reachable(join(SRC, "cli/run-cli.ts"))].some((f) => f.endsWith("converge/host-entries.ts"))).toBe(true);
  });
});
