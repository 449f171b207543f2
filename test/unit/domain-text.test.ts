// The reconnect's "nothing new" test against what real libvirt sends and keeps
// (test/fixtures/libvirt-11.3: a reconnect hook's stdin and the guest's status
// file at that moment). Byte equality never holds there; the facts do.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { domainElement, domainFactsOfText, statusHoldsDomain } from "../../src/libvirt/domain-text.js";
import { parseDomainXml } from "../../src/libvirt/domain.js";

const F = join(__dirname, "../fixtures/libvirt-11.3");
const read = (f: string) => readFileSync(join(F, f), "utf8");

describe("domain-text: does a status file say all a reconnect's XML says", () => {
  it("a libvirtd restart's reconnect against the guest's status file then: the same facts, not the same bytes", () => {
    const s = read("reconnect-status/status.xml"), x = read("reconnect-status/reconnect-begin.xml");
    expect(domainElement(s)).not.toBe(x.trim()); // libvirt formats them differently
    expect(statusHoldsDomain(s, x)).toBe(true);
    // The facts are the parser's (domain.ts): the reader says "the same" only where the parser does.
    expect(parseDomainXml(domainElement(s)!)).toEqual(parseDomainXml(x));
  });

  it("a status file of another moment (vm1 started again since: another tap): not held, as the parser says too", () => {
    const s = read("status-qemu-vm1.xml"), x = read("08-qemu-reconnect-begin.xml");
    expect(statusHoldsDomain(s, x)).toBe(false);
    expect(parseDomainXml(domainElement(s)!)).not.toEqual(parseDomainXml(x));
  });

  const s = read("reconnect-status/status.xml"), x = read("reconnect-status/reconnect-begin.xml");
  const changed: [string, (t: string) => string][] = [
    ["another name", (t) => t.replace("<name>rb000</name>", "<name>rb001</name>")],
    ["another uuid", (t) => t.replace(/<uuid>[0-9a-f]/, "<uuid>0")],
    ["another MAC", (t) => t.replace("52:54:00:ba:00:00", "52:54:00:ba:00:01")],
    ["another network", (t) => t.replace("network='default'", "network='other'")],
    ["another bridge", (t) => t.replace("bridge='virbr0'", "bridge='virbr1'")],
    ["another tap", (t) => t.replace("<target dev='vnet0'/>", "<target dev='vnet9'/>")],
    ["an MTU", (t) => t.replace("<target dev='vnet0'/>", "<target dev='vnet0'/>\n      <mtu size='9000'/>")],
    ["a VLAN", (t) => t.replace("<target dev='vnet0'/>", "<target dev='vnet0'/>\n      <vlan><tag id='42'/></vlan>")],
    ["isolation", (t) => t.replace("<target dev='vnet0'/>", "<target dev='vnet0'/>\n      <port isolated='yes'/>")],
    ["a second NIC", (t) => t.replace("</devices>", "  <interface type='network'>\n      <mac address='52:54:00:ba:00:99'/>\n      <source network='default'/>\n    </interface>\n  </devices>")],
    ["a NIC fewer", (t) => t.replace(/<interface type='network'>[\s\S]*?<\/interface>/, "")],
  ];
  for (const [what, change] of changed) {
    it(`${what} in the hook's XML: not held`, () => {
      const y = change(x);
      expect(y).not.toBe(x);
      expect(statusHoldsDomain(s, y)).toBe(false);
    });
  }

  it("another formatting is not recognised (the full path), never guessed", () => {
    expect(domainFactsOfText(x.replace("network='default'", 'network="default"'))).toBeUndefined();
    expect(domainFactsOfText(x.replace("<source network='default'", "<source network='d&amp;'"))).toBeUndefined();
    expect(domainFactsOfText(x.replace("<interface type='network'>", "<interface  type='network'>"))).toBeUndefined();
    expect(domainFactsOfText("<domain><devices></devices></domain>")).toBeUndefined(); // no name
    expect(statusHoldsDomain(x, x)).toBe(false); // not a status file
  });
});
