import { describe, expect, it } from "vitest";
import { resolvePlan } from "../../src/plan/resolve.js";
import { correctView } from "../../src/host/view.js";
import { compileText } from "../helpers/rules.js";
import { defaultNet, domain, network, routeNet, view } from "../helpers/host.js";

const devstack = domain("devstack", [["52:54:00:6c:3c:11", "default"]]);

function plan(rules: string, host = view([devstack], [defaultNet, routeNet])) {
  const compiled = compileText(rules);
  expect(compiled.diagnostics).toEqual([]);
  return resolvePlan(compiled.rules, host);
}

describe("resolving targets by name", () => {
  it("uses the DHCP host entry that matches the domain's MAC", () => {
    const p = plan("forward tcp 192.168.1.100:1122 to devstack:22");
    expect(p.forwards).toHaveLength(1);
    expect(p.forwards[0]).toMatchObject({ family: 4, targetAddress: "192.168.122.11", hostAddress: "192.168.1.100", hairpinSources: [{ address: "192.168.122.0", prefix: 24 }] });
    expect(p.states[0]).toMatchObject({ state: "live" });
  });

  it("waits while the domain is not running", () => {
    const p = plan("forward tcp 1122 to devstack:22", view([], [defaultNet]));
    expect(p.forwards).toEqual([]);
    expect(p.states[0]).toMatchObject({ state: "waiting", detail: 'domain "devstack" is not running' });
  });

  it("fails with the host statement and the exact virsh net-update command when there is no fixed address", () => {
    const p = plan("forward tcp 2222 to nofix:22", view([domain("nofix", [["52:54:00:aa:bb:cc", "default"]])], [defaultNet]));
    const s = p.states[0];
    expect(s?.state).toBe("failed");
    if (s?.state !== "failed") return;
    expect(s.diagnostic.hint).toBe(
      `declare one beside the forwards, for every host: host default 52:54:00:aa:bb:cc 192.168.122.2 nofix   (virt-hooks apply adds it to the network); or on this host only: virsh net-update default add ip-dhcp-host "<host mac='52:54:00:aa:bb:cc' name='nofix' ip='192.168.122.2'/>" --live --config   (then restart the guest's DHCP client, or the guest)`,
    );
  });

  it("waits (not fails) while the guest's network is down, e.g. between net-destroy and net-start", () => {
    const p = plan("forward tcp 2222 to devstack:22", view([domain("devstack", [["52:54:00:6c:3c:11", "default"]])], []));
    expect(p.states[0]?.state).toBe("waiting");
    expect(p.states[0]?.detail).toBe('network "default" of domain "devstack" is not active');
  });

  it("suggests a free address outside the DHCP range and not taken", () => {
    const net = network("n", "br9", "nat", `<ip address='10.9.0.1' prefix='24'><dhcp><range start='10.9.0.2' end='10.9.0.100'/><host mac='52:54:00:00:00:01' ip='10.9.0.101'/></dhcp></ip>`);
    const p = plan("forward tcp 1 to x", view([domain("x", [["52:54:00:00:00:09", "n"]])], [net]));
    expect(p.states[0]?.state === "failed" && p.states[0].diagnostic.hint).toContain("ip='10.9.0.102'");
  });

  it("refuses to guess between fixed addresses on several networks, and says how to pick", () => {
    const two = domain("web", [["52:54:00:6c:3c:11", "default"], ["52:54:00:00:01:01", "route"]]);
    const p = plan("forward tcp 80 to web", view([two], [defaultNet, routeNet]));
    expect(p.states[0]?.state).toBe("failed");
    expect(p.states[0]?.state === "failed" && p.states[0].diagnostic.hint).toBe("say which network: web@default or web@route");
    const pinned = plan("forward tcp 80 to web@route", view([two], [defaultNet, routeNet]));
    expect(pinned.forwards.map((f) => f.targetAddress)).toEqual(["192.168.100.10"]);
  });

  it("finds the network of a type='bridge' NIC by its bridge", () => {
    const d = { name: "b", interfaces: [{ mac: "52:54:00:6c:3c:11", type: "bridge", bridge: "virbr0" }] };
    expect(plan("forward tcp 1 to b:2", view([d], [defaultNet])).forwards[0]?.targetAddress).toBe("192.168.122.11");
  });

  it("uses name-only host entries (IPv6 DHCP hosts) for the domain of that name", () => {
    const v6 = network("v6", "virbr6", "nat", `<ip family='ipv6' address='fd00:6::1' prefix='64'><dhcp><host name='six' ip='fd00:6::10'/></dhcp></ip>`);
    const p = plan("forward tcp [2001:db8::1]:80 to six", view([domain("six", [["52:54:00:00:00:06", "v6"]])], [v6]));
    expect(p.forwards[0]).toMatchObject({ family: 6, targetAddress: "fd00:6::10" });
  });
});

describe("masquerade and accept", () => {
  it("masquerades a routed network's subnets", () => {
    const p = plan("masquerade route");
    expect(p.masquerades).toEqual([expect.objectContaining({ subnet: { family: 4, address: "192.168.100.0", prefix: 24 }, bridge: "virbr1" })]);
  });

  it("adds nothing for a NAT network (libvirt masquerades it already)", () => {
    const p = plan("masquerade default");
    expect(p.masquerades).toEqual([]);
    expect(p.states[0]?.state).toBe("live");
  });

  it("waits for an inactive network", () => {
    expect(plan("masquerade route", view([], [defaultNet])).states[0]?.state).toBe("waiting");
  });

  it("accepts network to network with bridges, keeping the source when FROM is NATed", () => {
    const p = plan("accept default to route tcp 22\naccept route to default");
    expect(p.accepts.map((a) => [a.fromBridge, a.toBridge, a.keepSource])).toEqual([
      ["virbr0", "virbr1", true],
      ["virbr1", "virbr0", false],
    ]);
  });
});

describe("a domain letting go of its NICs (port-deleted before stopped)", () => {
  const twoNics = domain("devstack", [["52:54:00:6c:3c:11", "default"], ["52:54:00:6c:3c:12", "default"]]);

  it("waits, not fails, once its last NIC on a libvirt network is released (outgoing migration, shutdown)", () => {
    const host = correctView(view([devstack], [defaultNet]), [{ kind: "port-down", owner: "devstack", mac: "52:54:00:6c:3c:11" }]);
    const p = plan("forward tcp 1122 to devstack:22", host);
    expect(p.states[0]).toMatchObject({ state: "waiting", detail: 'domain "devstack" is not running' });
  });

  it("keeps forwarding through the NICs that are still plugged", () => {
    const host = correctView(view([twoNics], [defaultNet]), [{ kind: "port-down", owner: "devstack", mac: "52:54:00:6c:3c:12" }]);
    expect(host.domains.get("devstack")?.interfaces.map((i) => i.mac)).toEqual(["52:54:00:6c:3c:11"]);
    expect(plan("forward tcp 1122 to devstack:22", host).states[0]).toMatchObject({ state: "live" });
  });
});
