// The uplink/route planner as a table: host state in, ip -batch lines and
// diagnostics out. No process, no kernel.
import { describe, expect, it } from "vitest";
import { compileText } from "../helpers/rules.js";
import { formatDiagnostic } from "../../src/rules/diagnostic.js";
import { makeCidr, type Cidr } from "../../src/net/ip.js";
import type { NetworkInfo } from "../../src/libvirt/network.js";
import { parseIpAddr, parseIpRoute, planLinksDown, planLinksUp, type HostAddress, type HostLink, type HostNet, type HostRoute, type LinkRecords } from "../../src/plan/links.js";

// The first article's routed network: virbr1 with 192.168.100.1/24 (or the host's own 192.168.1.51/24).
const routeNet = (gateway = "192.168.100.1", prefix = 24): NetworkInfo => ({
  name: "route",
  bridge: "virbr1",
  forwardMode: "route",
  subnets: [{ family: 4, gateway, cidr: makeCidr(gateway, prefix) as Cidr, dhcpRanges: [], dhcpHosts: [] }],
});

const v4 = (local: string, prefixlen = 24, more: Partial<HostAddress> = {}): HostAddress => ({ family: 4, local, prefixlen, scope: "global", ...more });
const v6 = (local: string, prefixlen = 64, more: Partial<HostAddress> = {}): HostAddress => ({ family: 6, local, prefixlen, scope: local.startsWith("fe80") ? "link" : "global", ...more });
const link = (name: string, addresses: HostAddress[] = [], more: Partial<HostLink> = {}): [string, HostLink] => [name, { name, up: true, addresses, ...more }];

function host(links: [string, HostLink][], routes: HostRoute[]): HostNet {
  return { links: new Map(links), routes };
}

const em1Routes: HostRoute[] = [
  { family: 4, dst: "0.0.0.0/0", gateway: "192.168.1.1", dev: "em1" },
  { family: 4, dst: "10.9.0.0/16", gateway: "192.168.1.254", dev: "em1", metric: 50 },
  { family: 4, dst: "192.168.1.0/24", dev: "em1", protocol: "kernel", scope: "link", prefsrc: "192.168.1.51" },
  { family: 4, dst: "192.168.100.0/24", dev: "virbr1", protocol: "kernel", scope: "link", prefsrc: "192.168.100.1" },
];

/** The host before the network starts: em1 holds the address and the routes. */
const classic = () =>
  host(
    [link("lo", [v4("127.0.0.1", 8, { scope: "host" })]), link("em1", [v4("192.168.1.51", 24, { broadcast: "192.168.1.255" }), v6("fe80::1:2")]), link("virbr1", [v4("192.168.100.1")], { kind: "bridge" })],
    em1Routes,
  );

const rulesOf = (text: string) => {
  const c = compileText(text);
  expect(c.diagnostics).toEqual([]);
  return c.rules;
};
const codes = (p: { diagnostics: readonly { code: string }[] }) => p.diagnostics.map((d) => d.code);

describe("planLinksUp", () => {
  it("moves the uplink's address and routes to the bridge in the documented order", () => {
    const p = planLinksUp(routeNet(), rulesOf("uplink route em1\nroute route default via 192.168.1.1"), classic(), {});
    expect(codes(p)).toEqual([]);
    expect(p.commands).toEqual([
      "link set dev em1 master virbr1",
      "link set dev em1 up",
      "route del 0.0.0.0/0 via 192.168.1.1 dev em1",
      "route del 10.9.0.0/16 via 192.168.1.254 dev em1 metric 50",
      "address del 192.168.1.51/24 dev em1",
      "address add 192.168.1.51/24 broadcast 192.168.1.255 dev virbr1",
      "route replace 10.9.0.0/16 via 192.168.1.254 dev virbr1 metric 50",
      "route replace 0.0.0.0/0 via 192.168.1.1 dev virbr1",
    ]);
    expect(p.records).toEqual({
      em1: {
        network: "route",
        bridge: "virbr1",
        addresses: [v4("192.168.1.51", 24, { broadcast: "192.168.1.255" })],
        routes: em1Routes.slice(0, 2),
      },
    });
    expect(p.notes).toEqual(["uplink em1 → virbr1 (moved 192.168.1.51/24, 2 route(s))", "route default via 192.168.1.1 dev virbr1"]);
  });

  it("the article's way: the network owns the host's address, the uplink has none left", () => {
    const h = host([link("em1", []), link("virbr1", [v4("192.168.1.51")], { kind: "bridge" })], [{ family: 4, dst: "192.168.1.0/24", dev: "virbr1", protocol: "kernel" }]);
    const p = planLinksUp(routeNet("192.168.1.51"), rulesOf("uplink route em1\nroute route default via 192.168.1.1"), h, {});
    expect(codes(p)).toEqual([]);
    expect(p.commands).toEqual(["link set dev em1 master virbr1", "link set dev em1 up", "route replace 0.0.0.0/0 via 192.168.1.1 dev virbr1"]);
  });

  it("plans nothing once the host is as declared (a second started, updated)", () => {
    const rules = rulesOf("uplink route em1\nroute route default via 192.168.1.1");
    const first = planLinksUp(routeNet(), rules, classic(), {});
    const after = host(
      [link("em1", [v6("fe80::1:2")], { master: "virbr1" }), link("virbr1", [v4("192.168.100.1"), v4("192.168.1.51", 24, { broadcast: "192.168.1.255" })], { kind: "bridge" })],
      [
        { family: 4, dst: "0.0.0.0/0", gateway: "192.168.1.1", dev: "virbr1" },
        { family: 4, dst: "10.9.0.0/16", gateway: "192.168.1.254", dev: "virbr1", metric: 50 },
      ],
    );
    const again = planLinksUp(routeNet(), rules, after, first.records);
    expect(again.commands).toEqual([]);
    expect(again.records).toEqual(first.records);
    expect(again.notes).toEqual([]);
  });

  it.each([
    ["uplink route em1", "would-cut-off", "hint: declare the route through the bridge: route route default via 192.168.1.1"],
    ["uplink route em1\nroute route default via 10.0.0.1", "unreachable-gateway,would-cut-off", "the gateway 10.0.0.1 is not in a subnet on virbr1"],
    ["uplink route em1\nroute route default via 192.168.100.1", "bad-gateway,would-cut-off", "is one of this host's own addresses"],
    ["uplink route eth9\nroute route default via 192.168.1.1", "no-interface,unreachable-gateway", 'interface "eth9" does not exist'],
    ["uplink route virbr1", "bad-interface", "network \"route\"'s own bridge"],
  ])("refuses %j (%s) and leaves the uplink alone", (text, expected, message) => {
    const p = planLinksUp(routeNet(), rulesOf(text), classic(), {});
    expect(codes(p).join(",")).toBe(expected);
    expect(p.commands.filter((c) => c.includes("em1"))).toEqual([]);
    expect(p.records).toEqual({});
    expect(p.diagnostics.map(formatDiagnostic).join("\n")).toContain(message);
  });

  it("points at the uplink statement with file:line:col", () => {
    const p = planLinksUp(routeNet(), rulesOf("# routed\nuplink route em1"), classic(), {});
    expect(formatDiagnostic(p.diagnostics[0]!)).toMatch(/^\/etc\/libvirt\/hooks\/rules\.d\/10-test\.rules:2:1: error: enslaving "em1" into virbr1 would drop the host's IPv4 default route \(via 192\.168\.1\.1 dev em1\)/);
  });

  it("refuses an interface that is another bridge's port, or a bridge", () => {
    const h = host([link("em1", [], { master: "br0" }), link("br0", [], { kind: "bridge" }), link("virbr1", [], { kind: "bridge" })], []);
    expect(codes(planLinksUp(routeNet(), rulesOf("uplink route em1"), h, {}))).toEqual(["busy-interface"]);
    expect(codes(planLinksUp(routeNet(), rulesOf("uplink route br0"), h, {}))).toEqual(["bad-interface"]);
  });

  it("needs a libvirt bridge that exists", () => {
    const h = host([link("em1")], []);
    expect(codes(planLinksUp(routeNet(), rulesOf("uplink route em1"), h, {}))).toEqual(["no-bridge"]);
    expect(codes(planLinksUp({ ...routeNet(), bridge: undefined }, rulesOf("route route 10.0.0.0/8 via 192.168.100.2"), h, {}))).toEqual(["no-bridge"]);
  });

  it("IPv6: a default route of each family needs its own route statement", () => {
    const h = host(
      [link("em1", [v4("192.0.2.5"), v6("2001:db8::5"), v6("2001:db8::abcd", 64, { dynamic: true }), v6("fe80::5")]), link("virbr1", [v4("192.168.100.1")], { kind: "bridge" })],
      [
        { family: 4, dst: "0.0.0.0/0", gateway: "192.0.2.1", dev: "em1" },
        { family: 6, dst: "::/0", gateway: "fe80::1", dev: "em1", metric: 1024, protocol: "ra" },
        { family: 6, dst: "2001:db8::/64", dev: "em1", protocol: "kernel", metric: 256 },
      ],
    );
    const only4 = planLinksUp(routeNet(), rulesOf("uplink route em1\nroute route default via 192.0.2.1"), h, {});
    expect(only4.diagnostics.map(formatDiagnostic).join("\n")).toContain("IPv6 default route (via fe80::1 dev em1)");
    expect(only4.commands).toEqual([]);
    expect(codes(only4)).toEqual(["would-cut-off", "unreachable-gateway"]);
    const both = planLinksUp(routeNet(), rulesOf("uplink route em1\nroute route default via 192.0.2.1\nroute route default via fe80::1"), h, {});
    expect(codes(both)).toEqual([]);
    expect(both.commands).toEqual([
      "link set dev em1 master virbr1",
      "link set dev em1 up",
      "route del 0.0.0.0/0 via 192.0.2.1 dev em1",
      "route del ::/0 via fe80::1 dev em1 metric 1024",
      "address del 192.0.2.5/24 dev em1",
      "address add 192.0.2.5/24 dev virbr1",
      "address del 2001:db8::5/64 dev em1",
      "address add 2001:db8::5/64 nodad dev virbr1",
      "route replace 0.0.0.0/0 via 192.0.2.1 dev virbr1",
      "route replace ::/0 via fe80::1 dev virbr1",
    ]);
  });

  it("a route without an uplink goes through the bridge to a router among the guests", () => {
    const h = host([link("virbr1", [v4("192.168.100.1")], { kind: "bridge", up: false })], []);
    const p = planLinksUp(routeNet(), rulesOf("route route 10.20.0.0/16 via 192.168.100.254"), h, {});
    expect(p.commands).toEqual(["link set dev virbr1 up", "route replace 10.20.0.0/16 via 192.168.100.254 dev virbr1"]);
  });

  it("ignores other networks' statements", () => {
    const p = planLinksUp(routeNet(), rulesOf("uplink other em1\nroute other default via 192.168.1.1"), classic(), {});
    expect(p).toEqual({ commands: [], records: {}, diagnostics: [], notes: [] });
  });
});

describe("planLinksDown", () => {
  const record: LinkRecords = {
    em1: { network: "route", bridge: "virbr1", addresses: [v4("192.168.1.51", 24, { broadcast: "192.168.1.255" })], routes: em1Routes.slice(0, 2) },
  };

  it("puts back what was moved once libvirt deleted the bridge", () => {
    const h = host([link("em1", [v6("fe80::1:2")])], []);
    const p = planLinksDown("route", "virbr1", rulesOf("uplink route em1\nroute route default via 192.168.1.1"), h, record);
    expect(p.commands).toEqual([
      "address add 192.168.1.51/24 broadcast 192.168.1.255 dev em1",
      "route replace 0.0.0.0/0 via 192.168.1.1 dev em1",
      "route replace 10.9.0.0/16 via 192.168.1.254 dev em1 metric 50",
    ]);
    expect(p.records).toEqual({});
    expect(p.notes).toEqual(["uplink restored: em1 (192.168.1.51/24, 2 route(s))"]);
  });

  it("releases the uplink and clears the bridge when the bridge is still there", () => {
    const h = host(
      [link("em1", [], { master: "virbr1" }), link("virbr1", [v4("192.168.1.51", 24)], { kind: "bridge" })],
      [{ family: 4, dst: "0.0.0.0/0", gateway: "192.168.1.1", dev: "virbr1" }],
    );
    const p = planLinksDown("route", "virbr1", rulesOf("uplink route em1\nroute route default via 192.168.1.1"), h, record);
    expect(p.commands.slice(0, 5)).toEqual([
      "route del 0.0.0.0/0 via 192.168.1.1 dev virbr1",
      "link set dev em1 nomaster",
      "link set dev em1 up",
      "address del 192.168.1.51/24 dev virbr1",
      "address add 192.168.1.51/24 broadcast 192.168.1.255 dev em1",
    ]);
  });

  it("restores from the record even when the uplink statement was removed meanwhile", () => {
    const h = host([link("em1", [])], []);
    expect(planLinksDown("route", undefined, rulesOf(""), h, record).commands).toHaveLength(3);
    expect(planLinksDown("other", undefined, rulesOf(""), h, record).commands).toEqual([]);
  });
});

describe("reading ip -j", () => {
  it("keeps what the planner needs and drops what it cannot trust", () => {
    const links = parseIpAddr([
      { ifname: "em1", flags: ["BROADCAST", "UP"], master: "virbr1", addr_info: [{ family: "inet", local: "192.0.2.5", prefixlen: 24, scope: "global", broadcast: "192.0.2.255" }, { family: "inet6", local: "2001:DB8::5", prefixlen: 64, scope: "global", dynamic: true }] },
      { ifname: "bad name", flags: [], addr_info: [] },
      { ifname: "virbr1", flags: [], linkinfo: { info_kind: "bridge" }, addr_info: [{ family: "inet", local: "nonsense", prefixlen: 24 }] },
    ]);
    expect([...links.keys()]).toEqual(["em1", "virbr1"]);
    expect(links.get("em1")).toEqual({ name: "em1", up: true, master: "virbr1", addresses: [v4("192.0.2.5", 24, { broadcast: "192.0.2.255" }), v6("2001:db8::5", 64, { dynamic: true })] });
    expect(links.get("virbr1")).toEqual({ name: "virbr1", up: false, kind: "bridge", addresses: [] });
    const routes = parseIpRoute(
      [
        { dst: "default", gateway: "192.0.2.1", dev: "em1", flags: [] },
        { dst: "10.0.0.0/8", nexthops: [{ gateway: "192.0.2.2", dev: "em1" }] },
        { dst: "198.51.100.0/24", dev: "em1", type: "unreachable" },
        { dst: "192.0.2.0/24", dev: "em1", protocol: "kernel", scope: "link", prefsrc: "192.0.2.5" },
      ],
      4,
    );
    expect(routes).toEqual([
      { family: 4, dst: "0.0.0.0/0", gateway: "192.0.2.1", dev: "em1" },
      { family: 4, dst: "192.0.2.0/24", dev: "em1", protocol: "kernel", scope: "link", prefsrc: "192.0.2.5" },
    ]);
  });
});
