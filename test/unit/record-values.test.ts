// Our records read back from disk are data (plan/record-values.ts): what this
// version writes passes whole; a value that could add a word or a line to
// `ip -batch`, nft or iptables text is refused, and with it the record.
import { describe, expect, it } from "vitest";
import { validDomainInfo, validHostEntry, validLinkRecords } from "../../src/plan/record-values.js";

const moved = {
  network: "default",
  bridge: "virbr0",
  addresses: [{ family: 4, local: "192.0.2.5", prefixlen: 24, scope: "global", broadcast: "192.0.2.255" }, { family: 6, local: "2001:db8::5", prefixlen: 64, scope: "global", dynamic: false }],
  routes: [{ family: 4, dst: "0.0.0.0/0", gateway: "192.0.2.1", dev: "em1", metric: 100, protocol: "static" }],
};
const INJECT = "\nlink add x type bridge";

describe("record values", () => {
  it("uplink records as this version writes them pass whole", () => {
    expect(validLinkRecords({ em1: moved })).toEqual({ records: { em1: moved }, dropped: 0 });
  });

  it.each([
    ["an address with a second line", { addresses: [{ ...moved.addresses[0], local: `192.0.2.5/24 dev em1${INJECT}` }] }],
    ["an address of the other family", { addresses: [{ ...moved.addresses[0], local: "2001:db8::1" }] }],
    ["a prefix beyond the family's", { addresses: [{ ...moved.addresses[0], prefixlen: 33 }] }],
    ["a scope with a space", { addresses: [{ ...moved.addresses[0], scope: "global dev lo" }] }],
    ["a broadcast that is no address", { addresses: [{ ...moved.addresses[0], broadcast: `1.2.3.4${INJECT}` }] }],
    ["a route destination with more words", { routes: [{ ...moved.routes[0], dst: "0.0.0.0/0 table 5" }] }],
    ["a route device that is no device name", { routes: [{ ...moved.routes[0], dev: `em1${INJECT}` }] }],
    ["a route protocol with a newline", { routes: [{ ...moved.routes[0], protocol: `static${INJECT}` }] }],
    ["a gateway of the other family", { routes: [{ ...moved.routes[0], gateway: "2001:db8::1" }] }],
    ["a metric that is text", { routes: [{ ...moved.routes[0], metric: "100 proto x" }] }],
    ["a bridge that is no device name", { bridge: `virbr0${INJECT}` }],
    ["no addresses list", { addresses: "192.0.2.5" }],
  ])("%s: the record is dropped", (_, change) => {
    expect(validLinkRecords({ em1: { ...moved, ...change }, em2: moved })).toEqual({ records: { em2: moved }, dropped: 1 });
  });

  it("an interface key that is no device name drops its record; a non-object is no record at all", () => {
    expect(validLinkRecords({ [`em1${INJECT}`]: moved })).toEqual({ records: {}, dropped: 1 });
    expect(validLinkRecords([moved])).toEqual({ records: {}, dropped: 1 });
    expect(validLinkRecords({ __proto__: moved } as unknown)).toEqual({ records: {}, dropped: 0 });
  });

  it("fixed-address entries: as a host rule declares them, or not at all", () => {
    expect(validHostEntry({ network: "default", mac: "52:54:00:aa:bb:cc", ip: "192.168.122.10", name: "web" })).toEqual({ network: "default", entry: { address: "192.168.122.10", mac: "52:54:00:aa:bb:cc", name: "web" } });
    for (const bad of [
      { network: "default", ip: "192.168.122.10'/><host ip='1.2.3.4" },
      { network: "default", ip: "192.168.122.10", mac: "52:54:00:aa:bb" },
      { network: "default", ip: "192.168.122.10", name: "web'/>" },
      { network: "def\nault", ip: "192.168.122.10" },
      { ip: "192.168.122.10" },
    ]) expect(validHostEntry(bad)).toBeUndefined();
  });

  it("cached domain status: only what parsing libvirt's XML could give", () => {
    const d = { name: "vm1", interfaces: [{ mac: "52:54:00:6c:3c:01", type: "network", network: "default", bridge: "virbr0", tap: "vnet0", mtu: 1500, vlanTags: [10] }] };
    expect(validDomainInfo(d)).toEqual(d);
    for (const nic of [{ tap: `vnet0${INJECT}` }, { bridge: "virbr0 ; x" }, { mac: "52:54:00:6C:3C:01" }, { mtu: 0 }, { vlanTags: [5000] }, { network: "a\nb" }]) {
      expect(validDomainInfo({ ...d, interfaces: [{ ...d.interfaces[0], ...nic }] })).toBeUndefined();
    }
  });
});
