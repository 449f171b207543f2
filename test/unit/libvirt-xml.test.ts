import { describe, expect, it } from "vitest";
import { parseDomainStatusXml, parseDomainXml } from "../../src/libvirt/domain.js";
import { parseNetworkHookXml, parseNetworkStatusXml, withEmptyFirewallRecord } from "../../src/libvirt/network.js";
import { parseXml, XmlError, MAX_XML_BYTES } from "../../src/libvirt/xml.js";
import { capturedEvents, fixture } from "../helpers/fixtures.js";

describe("libvirt XML as libvirt 11.3 sent it", () => {
  it("reads every captured event without error", () => {
    const events = capturedEvents();
    expect(events.length).toBe(28);
    for (const e of events) {
      if (e.driver === "qemu") expect(parseDomainXml(e.xml).name, e.id).toBe("vm1");
      else expect(parseNetworkHookXml(e.xml).network.name, e.id).toBe("default");
    }
  });

  it("reads a started domain's NIC: MAC, network, bridge, tap", () => {
    const d = parseDomainXml(fixture("06-qemu-started-begin.xml"));
    expect(d.interfaces).toEqual([{ mac: "52:54:00:6c:3c:01", type: "network", network: "default", bridge: "virbr0", tap: "vnet0" }]);
  });

  it("reads a stopped domain's NICs without taps (match by MAC)", () => {
    const d = parseDomainXml(fixture("17-qemu-stopped-end.xml"));
    expect(d.interfaces.map((i) => [i.mac, i.tap])).toEqual([
      ["52:54:00:6c:3c:01", undefined],
      ["52:54:00:6c:3c:02", undefined],
    ]);
  });

  it("reads the domain status file (<domstatus>)", () => {
    expect(parseDomainXml(fixture("status-qemu-vm1.xml")).interfaces[0]?.mac).toBe("52:54:00:6c:3c:01");
  });

  it("reads a status file's <domain> alone as the whole file reads (and falls back to the whole file)", () => {
    for (const name of ["status-qemu-vm1.xml", "status-qemu-vm1-after-netcycle.xml"]) {
      const xml = fixture(name);
      expect(parseDomainStatusXml(xml), name).toEqual(parseDomainXml(xml));
    }
    const plain = fixture("06-qemu-started-begin.xml");
    expect(parseDomainStatusXml(plain)).toEqual(parseDomainXml(plain));
    // A <domain> cut that does not parse: the whole document decides.
    const odd = fixture("status-qemu-vm1.xml").replace("<domstatus", "<domstatus><!-- </domain> -->");
    expect(parseDomainStatusXml(odd)).toEqual(parseDomainXml(odd));
  });

  it("reads the network: mode, bridge, subnet, DHCP hosts", () => {
    const { network, port } = parseNetworkHookXml(fixture("02-network-started-begin.xml"));
    expect(port).toBeUndefined();
    expect(network).toMatchObject({ name: "default", forwardMode: "nat", bridge: "virbr0" });
    expect(network.subnets).toEqual([
      {
        family: 4,
        gateway: "192.168.122.1",
        cidr: { family: 4, address: "192.168.122.0", prefix: 24 },
        dhcpRanges: [{ start: "192.168.122.100", end: "192.168.122.254" }],
        dhcpHosts: [{ mac: "52:54:00:6c:3c:01", name: "vm1", address: "192.168.122.10" }],
      },
    ]);
  });

  it("reads the port of a port-created event", () => {
    expect(parseNetworkHookXml(fixture("04-network-port-created-begin.xml")).port).toEqual({ owner: "vm1", mac: "52:54:00:6c:3c:01", bridge: "virbr0" });
  });

  it("reads the firewall backend from the network status file", () => {
    expect(parseNetworkStatusXml(fixture("status-network-default.xml")).firewallBackend).toBe("iptables");
  });

  it("empties libvirt's record of its firewall commands before parsing, and only that", () => {
    const status = fixture("status-network-default.xml");
    const cut = withEmptyFirewallRecord(status);
    expect(cut).toContain("<firewall name='fwRemoval' backend='iptables'></firewall>");
    expect(cut).not.toContain("<item>");
    expect(cut.slice(0, cut.indexOf("<firewall"))).toBe(status.slice(0, status.indexOf("<firewall")));
    // Everything else reads as before: the network as without any record, and the backend.
    const without = parseNetworkStatusXml(status.replace(/<firewall[\s\S]*<\/firewall>/, ""));
    expect(parseNetworkStatusXml(status)).toEqual({ ...without, firewallBackend: "iptables" });
    // Anything unexpected: the text as it is.
    for (const odd of [
      "<networkstatus><network/><firewall backend='nftables'><group/></networkstatus>", // not closed
      "<networkstatus><network/><firewall backend='nftables'/></networkstatus>", // nothing inside
      "<networkstatus><network/><firewallx><a/></firewallx></networkstatus>", // another element
      "<networkstatus><network/><firewall backend='x'><firewall/></firewall></networkstatus>", // nested
    ]) expect(withEmptyFirewallRecord(odd)).toBe(odd);
  });

  it("refuses any DTD (so no entity is ever declared, let alone expanded) and oversize input", () => {
    const bomb = `<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><domain><name>&b;</name></domain>`;
    expect(() => parseDomainXml(bomb)).toThrow(/<!DOCTYPE> or <!ENTITY> declaration refused/);
    expect(() => parseDomainXml(bomb)).toThrow(XmlError);
    // An undeclared entity reference stays text: nothing to expand it with.
    expect(parseDomainXml("<domain><name>&b;</name></domain>").name).toBe("&b;");
    expect(() => parseXml("<a>" + "x".repeat(MAX_XML_BYTES) + "</a>")).toThrow(/bytes refused: libvirt's own XML is tens of KiB/);
    // The limit counts bytes, not UTF-16 units.
    expect(() => parseXml("<a>" + "é".repeat(MAX_XML_BYTES / 2 + 1) + "</a>")).toThrow(XmlError);
  });

  it("drops device names and MACs that are not plain, and refuses names with control characters", () => {
    const d = parseDomainXml(
      `<domain><name>a b</name><devices>
        <interface type='bridge'><mac address='52:54:00:AA:BB:CC'/><source bridge='br0 -j ACCEPT'/><target dev='vnet"0'/></interface>
        <interface type='network'><mac address="52:54:00:aa:bb:cc' x"/><source network='default'/></interface>
      </devices></domain>`,
    );
    expect(d.interfaces).toEqual([{ mac: "52:54:00:aa:bb:cc", type: "bridge" }]);
    expect(() => parseDomainXml("<domain><name>a&#10;b</name></domain>")).toThrow(/control character/);
    expect(() => parseNetworkHookXml("<hookData><network><name>n&#27;[31m</name></network></hookData>")).toThrow(XmlError);
    const n = parseNetworkHookXml(`<hookData><network><name>n</name><bridge name='virbr0"; flush ruleset'/>
      <ip address='10.0.0.1' prefix='24'><dhcp><host mac='nonsense' name='x' ip='10.0.0.5'/><host name='y' ip='10.0.0.6'/></dhcp></ip></network></hookData>`).network;
    expect(n.bridge).toBeUndefined();
    // A host entry with an unreadable MAC is dropped, not turned into a by-name entry.
    expect(n.subnets[0]?.dhcpHosts).toEqual([{ address: "10.0.0.6", name: "y" }]);
  });

  it("never reads a name through Object.prototype", () => {
    expect(() => parseDomainXml("<domain><devices/></domain>")).toThrow(/no <name>/);
    expect(() => parseXml("<toString/>")).not.toThrow();
    expect(() => parseDomainXml("<domain><name>x</name><devices><interface><mac address='52:54:00:00:00:01'/><valueOf/></interface></devices></domain>")).not.toThrow();
  });

  it("decodes the predefined entities in names", () => {
    expect(parseDomainXml("<domain><name>a&amp;b &apos;c&apos;</name></domain>").name).toBe("a&b 'c'");
  });
});
