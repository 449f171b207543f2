// status's pure parts: counters from iptables-save -c and nft -j, drift against
// the rendered rules, dnsmasq leases, and the report that joins them.
import { describe, expect, it } from "vitest";
import { iptablesCounters, nftCounters, withoutCounters } from "../../src/status/counters.js";
import { iptablesDrift, nftDrift } from "../../src/status/drift.js";
import { parseLeases } from "../../src/libvirt/leases.js";
import { buildStatus } from "../../src/status/report.js";
import { resolvePlan } from "../../src/plan/resolve.js";
import { renderIptables } from "../../src/render/iptables.js";
import { renderNft } from "../../src/render/nftables.js";
import { parseIptablesSave } from "../../src/render/observed.js";
import { compileText } from "../helpers/rules.js";
import { defaultNet, domain, view } from "../helpers/host.js";

const devstack = domain("devstack", [["52:54:00:6c:3c:11", "default"]]);
const host = view([devstack], [defaultNet]);
const planOf = (text: string, v = host) => resolvePlan(compileText(text).rules, v);

/** What iptables-save -c prints after our transaction: libvirt's jumps first when `behind`. */
function saved(text: string, o: { behind?: boolean; drop?: number; counters?: [number, number] } = {}): string {
  const rules = renderIptables(planOf(text), 4).rules;
  const [p, b] = o.counters ?? [0, 0];
  const out: string[] = [];
  for (const table of ["filter", "nat"] as const) {
    out.push(`*${table}`);
    const chains = table === "filter" ? [["FORWARD", "VIRT_HOOKS_FWD"]] : [["PREROUTING", "VIRT_HOOKS_PRE"], ["OUTPUT", "VIRT_HOOKS_OUT"], ["POSTROUTING", "VIRT_HOOKS_POST"]];
    for (const [, ours] of chains) out.push(`:${ours} - [0:0]`);
    for (const [builtin, ours] of chains) {
      if (o.behind && builtin === "FORWARD") out.push("[0:0] -A FORWARD -j LIBVIRT_FWX");
      out.push(`[0:0] -A ${builtin} -j ${ours}`);
    }
    rules.filter((r) => r.table === table).forEach((r, i) => {
      if (o.drop === i && table === "nat") return;
      out.push(`[${p}:${b}] -A ${r.chain} ${r.spec}`);
    });
    out.push("COMMIT");
  }
  return out.join("\n") + "\n";
}

describe("counters", () => {
  it("iptables: DNAT hits are connections, FORWARD accepts are traffic, by the rule's FILE:LINE", () => {
    const c = iptablesCounters(saved("forward tcp 1122 to devstack:22\nforward tcp,udp 5000 to devstack", { counters: [3, 180] }));
    // PRE + OUT DNAT for rule 1; two protocols for rule 2.
    expect(c.get("10-test.rules:1")).toEqual({ connections: 6, traffic: { packets: 3, bytes: 180 } });
    expect(c.get("10-test.rules:2")).toEqual({ connections: 12, traffic: { packets: 6, bytes: 360 } });
  });

  it("nft: rule counters by comment, element counters by key, rules per chain", () => {
    const json = JSON.stringify({
      nftables: [
        { table: { family: "ip", name: "virt_hooks" } },
        { map: { family: "ip", name: "dnat_local", table: "virt_hooks", elem: [[{ elem: { val: { concat: ["tcp", 1122] }, counter: { packets: 4, bytes: 240 } } }, { concat: ["192.168.122.11", 22] }]] } },
        { set: { family: "ip", name: "accept_dnat", table: "virt_hooks", elem: [{ concat: ["192.168.122.11", "tcp", { range: [22, 23] }] }] } },
        { rule: { family: "ip", table: "virt_hooks", chain: "prerouting", comment: "virt-hooks 10-test.rules:2", expr: [{ counter: { packets: 2, bytes: 120 } }, { dnat: {} }] } },
        { rule: { family: "ip", table: "virt_hooks", chain: "forward", comment: "virt-hooks 10-test.rules:3", expr: [{ counter: { packets: 9, bytes: 900 } }] } },
      ],
    });
    const o = nftCounters(json);
    expect(o.elements.get("dnat_local")?.get("tcp . 1122")).toEqual({ packets: 4, bytes: 240 });
    expect(o.elements.get("accept_dnat")?.has("192.168.122.11 . tcp . 22-23")).toBe(true);
    expect(o.counters.get("10-test.rules:2")).toEqual({ connections: 2 });
    expect(o.counters.get("10-test.rules:3")).toEqual({ traffic: { packets: 9, bytes: 900 } });
    expect(o.chainRules).toEqual(new Map([["prerouting", 1], ["forward", 1]]));
  });
});

describe("iptables drift", () => {
  const rules = "forward tcp 1122 to devstack:22";
  const desired = renderIptables(planOf(rules), 4);
  const drift = (text: string) => iptablesDrift(4, desired, parseIptablesSave(withoutCounters(text)));

  it("none when the kernel holds exactly the rules, jumps first", () => {
    expect(drift(saved(rules))).toEqual([]);
  });
  it("our FORWARD jump behind libvirt's", () => {
    expect(drift(saved(rules, { behind: true }))).toEqual([
      { family: 4, backend: "iptables", kind: "jump-not-first", where: "filter FORWARD", detail: "-j VIRT_HOOKS_FWD is rule 2, behind 1 other rule(s) (libvirt's REJECTs come first)" },
    ]);
  });
  it("a missing rule names its rule", () => {
    const d = drift(saved(rules, { drop: 0 }));
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ kind: "rule-missing", where: "nat VIRT_HOOKS_PRE", origin: "10-test.rules:1" });
  });
  it("rules nobody asks for (a stopped guest's leftovers) are unexpected", () => {
    const d = iptablesDrift(4, renderIptables(planOf(rules, view([], [defaultNet])), 4), parseIptablesSave(withoutCounters(saved(rules))));
    expect(d.map((x) => x.kind)).toEqual(["rule-unexpected", "rule-unexpected", "rule-unexpected", "rule-unexpected"]);
    expect(d.every((x) => x.origin === "10-test.rules:1")).toBe(true);
  });
  it("chains and jumps gone (iptables -F / flush)", () => {
    expect(drift("*filter\nCOMMIT\n*nat\nCOMMIT\n").map((x) => x.kind)).toEqual([
      "jump-missing", "chain-missing", "jump-missing", "chain-missing", "jump-missing", "chain-missing", "jump-missing", "chain-missing",
    ]);
  });
});

describe("nftables drift", () => {
  const desired = renderNft(planOf("forward tcp 1122 to devstack:22"), 4);
  const base = { family: 4 as const, desired, desiredHash: "h", recordedHash: "h" };
  it("none when our table is there, as applied, and our accept is first", () => {
    expect(nftDrift({ ...base, observed: { ourTable: true, libvirtTable: true, libvirtForward: [{ handle: 9, ours: true }, { handle: 3, ours: false }] } })).toEqual([]);
  });
  it("our accept behind libvirt's rules, or gone; our table gone", () => {
    expect(nftDrift({ ...base, observed: { ourTable: true, libvirtTable: true, libvirtForward: [{ handle: 3, ours: false }, { handle: 9, ours: true }] } }).map((d) => d.kind)).toEqual(["accept-not-first"]);
    expect(nftDrift({ ...base, observed: { ourTable: false, libvirtTable: true, libvirtForward: [{ handle: 3, ours: false }] } }).map((d) => d.kind)).toEqual(["table-missing", "accept-missing"]);
  });
  it("a table applied from other rules, or edited by hand", () => {
    const o = { ourTable: true, libvirtTable: false, libvirtForward: [] };
    expect(nftDrift({ ...base, recordedHash: "old", observed: o }).map((d) => d.kind)).toEqual(["not-applied"]);
    expect(nftDrift({ ...base, observed: o, chainRules: new Map([["prerouting", 1], ["output", 1], ["postrouting", 1]]) }).map((d) => d.kind)).toEqual(["table-changed"]);
  });
  it("a forward's map element deleted (nft delete element), or one added by hand: named, with the rule it belongs to", () => {
    const o = { ourTable: true, libvirtTable: false, libvirtForward: [] };
    const listed = (dnat: string[]) => new Map([["dnat_local", new Map(dnat.map((k) => [k, undefined]))], ["accept_dnat", new Map([["192.168.122.11 . tcp . 22", undefined]])]]);
    expect(nftDrift({ ...base, observed: o, elements: listed(["tcp . 1122"]) })).toEqual([]);
    expect(nftDrift({ ...base, observed: o, elements: listed([]) })).toEqual([
      { family: 4, backend: "nftables", kind: "element-missing", where: "ip virt_hooks dnat_local", detail: "{ tcp . 1122 }", origin: "10-test.rules:1" },
    ]);
    expect(nftDrift({ ...base, observed: o, elements: listed(["tcp . 1122", "tcp . 9999"]) }).map((d) => [d.kind, d.detail])).toEqual([["element-unexpected", "{ tcp . 9999 }"]]);
  });
});

describe("leases and the report", () => {
  it("parses dnsmasq's status file; garbage is no leases", () => {
    expect(parseLeases('[{"ip-address":"192.168.122.57","mac-address":"52:54:00:6C:3C:11","hostname":"devstack","expiry-time":1900000000,"client-id":"x"}]')).toEqual([
      { ip: "192.168.122.57", mac: "52:54:00:6c:3c:11", hostname: "devstack", expiry: 1900000000 },
    ]);
    expect(parseLeases("not json")).toEqual([]);
    expect(parseLeases('{"a":1}')).toEqual([]);
  });

  const report = (leases: string, text = "forward tcp 1122 to devstack:22\nforward tcp 1180 to devstack:80\nforward tcp 5432 to db") =>
    buildStatus({ plan: planOf(text), view: host, leasesOf: (br) => (br === "virbr0" ? parseLeases(leases) : []), backend: "iptables", counters: new Map(), drift: [] });

  it("a lease that differs from the fixed address: ! in the rule, one warning per guest NIC", () => {
    const r = report('[{"ip-address":"192.168.122.57","mac-address":"52:54:00:6c:3c:11"}]');
    expect(r.rules.map((x) => [x.state, x.targets, x.lease?.ip, x.lease?.differs])).toEqual([
      ["live", ["192.168.122.11:22"], "192.168.122.57", true],
      ["live", ["192.168.122.11:80"], "192.168.122.57", true],
      ["waiting", [], undefined, undefined],
    ]);
    expect(r.diagnostics.map((d) => d.code)).toEqual(["lease-differs"]);
  });
  it("the matching lease, and no lease at all", () => {
    expect(report('[{"ip-address":"192.168.122.11","mac-address":"52:54:00:6c:3c:11"}]').rules[0]?.lease).toMatchObject({ ip: "192.168.122.11", differs: false });
    expect(report("[]").rules[0]?.lease).toBeNull();
  });
  it("a rule whose kernel rules are missing is drifted", () => {
    const r = buildStatus({
      plan: planOf("forward tcp 1122 to devstack:22"),
      view: host,
      leasesOf: () => [],
      backend: "iptables",
      drift: [{ family: 4, backend: "iptables", kind: "rule-missing", where: "nat VIRT_HOOKS_PRE", detail: "-A …", origin: "10-test.rules:1" }],
    });
    expect(r.rules[0]).toMatchObject({ state: "drifted", detail: "the kernel lacks 1 of its firewall rule(s); run virt-hooks apply", counters: null });
  });
});
