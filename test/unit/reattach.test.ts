import { describe, expect, it } from "vitest";
import { planReattach, renderIpBatch, type LinkState } from "../../src/plan/reattach.js";
import { parseDomainXml } from "../../src/libvirt/domain.js";
import { compileText } from "../helpers/rules.js";
import { defaultNet, routeNet } from "../helpers/host.js";
import { fixture } from "../helpers/fixtures.js";

// vm1 as libvirt's status file had it after net-destroy + net-start (fixture).
const vm1 = parseDomainXml(fixture("status-qemu-vm1-after-netcycle.xml"));

describe("re-attach after a network restart", () => {
  it("puts a running guest's tap back on the bridge, with the bridge's MTU, and up", () => {
    const links = new Map<string, LinkState>([["vnet0", { up: false }]]);
    const actions = planReattach(defaultNet, [vm1], links, 1500);
    expect(actions).toEqual([{ domain: "vm1", tap: "vnet0", bridge: "virbr0", mtu: 1500, isolated: false }]);
    expect(renderIpBatch(actions)).toBe("link set dev vnet0 master virbr0\nlink set dev vnet0 mtu 1500\nlink set dev vnet0 up\n");
  });

  it("leaves alone taps already on the bridge and up, taps that are gone, and other networks' guests", () => {
    expect(planReattach(defaultNet, [vm1], new Map([["vnet0", { master: "virbr0", up: true }]]))).toEqual([]);
    expect(planReattach(defaultNet, [vm1], new Map())).toEqual([]);
    expect(planReattach(routeNet, [vm1], new Map([["vnet0", { up: false }]]))).toEqual([]);
  });

  it("handles type='bridge' NICs on the network's bridge and keeps isolation", () => {
    const d = { name: "b", interfaces: [{ mac: "52:54:00:00:00:01", type: "bridge", bridge: "virbr0", tap: "vnet7", isolated: true, mtu: 9000 }] };
    const actions = planReattach(defaultNet, [d], new Map([["vnet7", { master: "virbr9", up: true }]]), 1500);
    expect(renderIpBatch(actions)).toBe("link set dev vnet7 master virbr0\nlink set dev vnet7 mtu 9000\nlink set dev vnet7 type bridge_slave isolated on\nlink set dev vnet7 up\n");
  });

  it("is on by default and can be switched off", () => {
    expect(compileText("").rules.settings.reattach).toBe(true);
    expect(compileText("set reattach off").rules.settings.reattach).toBe(false);
  });
});
