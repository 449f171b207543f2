// egress and map statements (issue 29): the grammar's errors with their
// places, the resolver (targets as forwards resolve them, waiting for an
// address this host lacks, one address per guest), and the exact rules on
// both backends (goldens, checked against the real tools by the kernel tier).
import { describe, expect, it } from "vitest";
import { resolvePlan } from "../../src/plan/resolve.js";
import { renderIptables } from "../../src/render/iptables.js";
import { renderRestore, inSync, renderRemoval } from "../../src/render/iptables-restore.js";
import { parseIptablesSave } from "../../src/render/observed.js";
import { renderNft } from "../../src/render/nftables.js";
import { formatDiagnostic } from "../../src/rules/diagnostic.js";
import { compileText, diagnosticsOf } from "../helpers/rules.js";
import { defaultNet, domain, network, routeNet, view } from "../helpers/host.js";
import type { HostView } from "../../src/host/view.js";

const PUBLIC = "203.0.113.5";
const host = (local?: string[]): HostView => ({
  ...view(
    [domain("devstack", [["52:54:00:6c:3c:11", "default"]]), domain("vm2", [["52:54:00:6c:3c:12", "default"]]), domain("web", [["52:54:00:00:01:01", "route"]])],
    [defaultNet, routeNet],
  ),
  ...(local ? { localAddresses: new Set(local) } : {}),
});

const FILE = "/etc/libvirt/hooks/rules.d/50-golden.rules";
function plan(rules: string, v: HostView = host()) {
  const c = compileText(rules, FILE);
  expect(c.diagnostics.map((d) => formatDiagnostic(d))).toEqual([]);
  return resolvePlan(c.rules, v);
}

describe("egress/map grammar", () => {
  it.each([
    ["egress from 203.0.113.5 for devstack", []],
    ["egress from 203.0.113.5 for devstack@default", []],
    ["egress from 203.0.113.5 for 192.168.122.50", []],
    ["egress from [2001:db8::5] for [fd00::10]", []],
    ["egress from 2001:db8::5 for six", []],
    ["map 203.0.113.6 to devstack", []],
    ["map 203.0.113.6 to \"my vm\"@default", []],
    ["egress 203.0.113.5 for devstack", ["10-test.rules:1:8 syntax"]],
    ["egress from 203.0.113.5 to devstack", ["10-test.rules:1:25 syntax"]],
    ["egress from 203.0.113.5", ["10-test.rules:1:24 syntax"]],
    ["egress from mail.example for devstack", ["10-test.rules:1:13 bad-address"]],
    ["egress from 203.0.113.0/24 for devstack", ["10-test.rules:1:13 bad-address"]],
    ["egress from 203.0.113.5:25 for devstack", ["10-test.rules:1:13 bad-address"]],
    ["egress from 127.0.0.1 for devstack", ["10-test.rules:1:13 bad-address"]],
    ["egress from 224.0.0.5 for devstack", ["10-test.rules:1:13 bad-address"]],
    ["egress from 203.0.113.5 for devstack:25", ["10-test.rules:1:29 syntax"]],
    ["egress from 203.0.113.5 for [fd00::10]", ["10-test.rules:1:29 family-mismatch"]],
    ["egress from 203.0.113.5 for devstack extra", ["10-test.rules:1:38 syntax"]],
    ["map 203.0.113.6 devstack", ["10-test.rules:1:17 syntax"]],
    ["map 203.0.113.6 to a/b", ["10-test.rules:1:20 bad-name"]],
    ["egres from 203.0.113.5 for devstack", ["10-test.rules:1:1 unknown-statement"]],
  ])("%s", (text, want) => {
    expect(diagnosticsOf(text)).toEqual(want);
  });

  it("says where and how to fix it", () => {
    const [d] = compileText("egress from 203.0.113.5 for devstack:25").diagnostics;
    expect(formatDiagnostic(d!)).toBe(
      "/etc/libvirt/hooks/rules.d/10-test.rules:1:29: error: egress and map take the guest, not a port [syntax]\n" +
        "  hint: egress from ADDRESS for TARGET   (e.g. egress from 203.0.113.5 for mail; TARGET a domain, NAME@NETWORK or an address); for one port use forward",
    );
    const [u] = compileText("egres from 203.0.113.5 for devstack").diagnostics;
    expect(u!.hint).toContain('did you mean "egress"?');
  });

  it("a mapped address belongs to one guest; a guest leaves from one address; egress addresses may be shared", () => {
    expect(diagnosticsOf("map 203.0.113.6 to devstack\nmap 203.0.113.6 to vm2")).toEqual(["10-test.rules:2:5 conflict"]);
    expect(diagnosticsOf("map 203.0.113.6 to devstack\negress from 203.0.113.6 for vm2")).toEqual(["10-test.rules:2:13 conflict"]);
    expect(diagnosticsOf("egress from 203.0.113.6 for vm2\nmap 203.0.113.6 to devstack")).toEqual(["10-test.rules:2:5 conflict"]);
    expect(diagnosticsOf("egress from 203.0.113.5 for devstack\nmap 203.0.113.6 to devstack")).toEqual(["10-test.rules:2:1 conflict"]);
    expect(diagnosticsOf("map 203.0.113.6 to devstack\nforward tcp 203.0.113.6:80 to vm2")).toEqual(["10-test.rules:2:1 conflict"]);
    expect(diagnosticsOf("forward tcp 203.0.113.6:80 to vm2\nmap 203.0.113.6 to devstack")).toEqual(["10-test.rules:2:1 conflict"]);
    expect(diagnosticsOf("egress from 203.0.113.5 for devstack\negress from 203.0.113.5 for vm2")).toEqual([]);
    expect(diagnosticsOf("egress from 203.0.113.5 for devstack\negress from [2001:db8::5] for devstack")).toEqual([]);
    // A forward without a host address may sit beside a map: it does not catch the mapped address.
    expect(diagnosticsOf("map 203.0.113.6 to devstack\nforward tcp 80 to vm2")).toEqual([]);
    const c = compileText("map 203.0.113.6 to devstack\nforward tcp 203.0.113.6:80 to vm2");
    expect(c.rules.forwards).toEqual([]);
    expect(c.rules.egress.map((e) => e.kind)).toEqual(["map"]);
  });
});

describe("egress/map resolution", () => {
  it("resolves targets as forwards do and excludes every libvirt subnet", () => {
    const p = plan(`egress from ${PUBLIC} for devstack\nmap 203.0.113.6 to web`);
    expect(p.egress.map((e) => [e.guestAddress, e.hostAddress, e.inbound, e.excluded.map((c) => `${c.address}/${c.prefix}`), e.hairpinSources.map((c) => `${c.address}/${c.prefix}`)])).toEqual([
      ["192.168.122.11", PUBLIC, false, ["192.168.100.0/24", "192.168.122.0/24", "224.0.0.0/24", "255.255.255.255/32"], []],
      ["192.168.100.10", "203.0.113.6", true, ["192.168.100.0/24", "192.168.122.0/24", "224.0.0.0/24", "255.255.255.255/32"], ["192.168.100.0/24"]],
    ]);
    expect(p.states.map((s) => [s.state, s.detail])).toEqual([
      ["live", `192.168.122.11 leaves from ${PUBLIC}`],
      ["live", "203.0.113.6 ⇄ 192.168.100.10 (every port in, new connections out)"],
    ]);
  });

  it("waits for a guest that is not running, and for an address this host lacks", () => {
    const p = plan(`egress from ${PUBLIC} for nosuch\negress from 198.51.100.7 for devstack\negress from ${PUBLIC} for vm2`, host([PUBLIC, "192.168.122.1"]));
    expect(p.states.map((s) => [s.state, s.detail])).toEqual([
      ["waiting", 'domain "nosuch" is not running'],
      ["waiting", "198.51.100.7 is not an address of this host"],
      ["live", `192.168.122.12 leaves from ${PUBLIC}`],
    ]);
    expect(p.egress).toHaveLength(1);
  });

  it("one guest reached two ways is a conflict when resolved", () => {
    const p = plan(`egress from ${PUBLIC} for devstack\negress from 203.0.113.9 for 192.168.122.11`);
    expect(p.states[1]).toMatchObject({ state: "failed", diagnostic: { code: "conflict" } });
    expect(p.egress).toHaveLength(1);
  });

  it("a guest without a fixed address fails with the host statement to add", () => {
    const v = view([domain("nofix", [["52:54:00:aa:bb:cc", "default"]])], [defaultNet]);
    const p = plan(`egress from ${PUBLIC} for nofix`, v);
    expect(p.states[0]).toMatchObject({ state: "failed", diagnostic: { code: "no-fixed-address" } });
    expect((p.states[0] as { diagnostic: { hint: string } }).diagnostic.hint).toContain("host default 52:54:00:aa:bb:cc 192.168.122.");
  });

  it("IPv6: the guest's fixed IPv6 address, libvirt's IPv6 subnets excluded", () => {
    const six = network("six", "virbr3", "nat", `<ip address='10.30.0.1' prefix='24'/><ip family='ipv6' address='fd00:100::1' prefix='64'><dhcp><host name='six' ip='fd00:100::10'/></dhcp></ip>`);
    const p = plan("egress from [2001:db8::5] for six", view([domain("six", [["52:54:00:50:00:41", "six"]])], [six]));
    expect(p.egress.map((e) => [e.family, e.guestAddress, e.excluded.map((c) => `${c.address}/${c.prefix}`)])).toEqual([[6, "fd00:100::10", ["fd00:100::/64", "ff00::/8"]]]);
  });
});

describe("egress/map rendering (golden)", () => {
  const RULES = `egress from ${PUBLIC} for devstack\nmap 203.0.113.6 to web\nforward tcp 8080 to vm2:80\nmasquerade route\naccept route to default tcp 22\n`;

  it("iptables: DNAT of the mapped address first; SNAT in VIRT_HOOKS_SNAT after the hairpins, before masquerade", async () => {
    const text = renderRestore(renderIptables(plan(RULES), 4), parseIptablesSave(""));
    await expect(text).toMatchFileSnapshot("golden/egress.restore");
  });

  it("nftables: the same in our table, postrouting at srcnat - 1", async () => {
    await expect(renderNft(plan(RULES), 4).body).toMatchFileSnapshot("golden/egress.nft");
  });

  it("IPv6 on both", async () => {
    const six = network("six", "virbr3", "nat", `<ip address='10.30.0.1' prefix='24'/><ip family='ipv6' address='fd00:100::1' prefix='64'><dhcp><host name='six' ip='fd00:100::10'/></dhcp></ip>`);
    const p = plan("map [2001:db8::6] to six", view([domain("six", [["52:54:00:50:00:41", "six"]])], [six]));
    await expect(renderRestore(renderIptables(p, 6), parseIptablesSave("")) + "\n" + renderNft(p, 6).body).toMatchFileSnapshot("golden/egress-ipv6.txt");
  });

  it("VIRT_HOOKS_SNAT exists only while used: in sync with it, deleted when the last egress goes, removed by flush", () => {
    const d = renderIptables(plan(RULES), 4);
    const nat = d.rules.filter((r) => r.table === "nat");
    const applied = [
      "*nat",
      ":VIRT_HOOKS_PRE - [0:0]",
      ":VIRT_HOOKS_OUT - [0:0]",
      ":VIRT_HOOKS_POST - [0:0]",
      ":VIRT_HOOKS_SNAT - [0:0]",
      "-A PREROUTING -j VIRT_HOOKS_PRE",
      "-A OUTPUT -j VIRT_HOOKS_OUT",
      "-A POSTROUTING -j VIRT_HOOKS_POST",
      ...nat.map((r) => `-A ${r.chain} ${r.spec}`),
      "COMMIT",
      "*filter",
      ":VIRT_HOOKS_FWD - [0:0]",
      "-A FORWARD -j VIRT_HOOKS_FWD",
      ...d.rules.filter((r) => r.table === "filter").map((r) => `-A ${r.chain} ${r.spec}`),
      "COMMIT",
    ].join("\n");
    expect(inSync(d, parseIptablesSave(applied))).toBe(true);
    expect(inSync(d, parseIptablesSave(applied.replace(/-A VIRT_HOOKS_SNAT -s [^\n]*\n/, "")))).toBe(false);
    const without = renderIptables(plan("forward tcp 8080 to vm2:80"), 4);
    expect(inSync(without, parseIptablesSave(applied))).toBe(false);
    const t = renderRestore(without, parseIptablesSave(applied));
    expect(t).toMatch(/:VIRT_HOOKS_SNAT - \[0:0\]\n(-A [^\n]*\n)*-X VIRT_HOOKS_SNAT\nCOMMIT/);
    expect(renderRemoval(parseIptablesSave(applied))).toContain("-F VIRT_HOOKS_POST\n-F VIRT_HOOKS_SNAT\n-X VIRT_HOOKS_PRE\n-X VIRT_HOOKS_OUT\n-X VIRT_HOOKS_POST\n-X VIRT_HOOKS_SNAT");
  });
});

describe("egress/map in the hook's interest", () => {
  it("a guest named only by egress or map is one whose events the hook acts on", async () => {
    const { interestOf } = await import("../../src/plan/interest.js");
    const i = interestOf(compileText("egress from 203.0.113.5 for mail\nmap 203.0.113.6 to one@default\negress from 203.0.113.5 for 192.168.122.9").rules);
    expect(i.anyRules).toBe(true);
    expect([...i.domains].sort()).toEqual(["mail", "one"]);
  });
});
