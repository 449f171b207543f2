// The text reader a libvirtd restart's port-created hooks decide with
// (libvirt/port-text.ts, hook/recorded-port.ts): it may only ever say "the same
// port"; anything it does not recognise must fall through to the full path.
import { describe, expect, it } from "vitest";
import { parseNetworkHookXml } from "../../src/libvirt/network.js";
import { portOfHookText, statusHoldsPort } from "../../src/libvirt/port-text.js";
import { capturedEvents, fixture } from "../helpers/fixtures.js";

const restartPort = fixture("07-network-port-created-begin.xml");
const statusBefore = fixture("status-qemu-vm1-after-netcycle.xml"); // vm1 as running when libvirtd restarted (07, 12)

describe("port-created as libvirt formats it", () => {
  it("agrees with the XML parser on every captured port event", () => {
    for (const e of capturedEvents().filter((x) => x.args[1]?.startsWith("port-"))) {
      const text = portOfHookText(e.xml);
      const parsed = parseNetworkHookXml(e.xml);
      expect(text, e.id).toBeDefined();
      expect({ owner: text?.owner, mac: text?.mac, network: text?.network }, e.id).toEqual({ owner: parsed.port?.owner, mac: parsed.port?.mac, network: parsed.network.name });
    }
  });

  it("a libvirtd restart's port-created is a port vm1's status file holds; a hot-plugged NIC's is not", () => {
    for (const id of ["07", "12"]) expect(statusHoldsPort(statusBefore, portOfHookText(fixture(`${id}-network-port-created-begin.xml`))!), id).toBe(true);
    // 16: attach-interface of a second NIC while vm1 runs; 04 and 22: ports of a guest starting.
    expect(statusHoldsPort(statusBefore, portOfHookText(fixture("16-network-port-created-begin.xml"))!)).toBe(false);
    expect(statusHoldsPort(fixture("status-qemu-vm1.xml"), portOfHookText(fixture("04-network-port-created-begin.xml"))!)).toBe(false);
  });

  it("a port in a portgroup (<group> between owner and MAC) is read too", () => {
    const grouped = restartPort.replace("</owner>", "</owner>\n    <group>web</group>");
    expect(portOfHookText(grouped)).toEqual(portOfHookText(restartPort));
  });

  it("the same port id with another MAC, network or owner's file is not the same port", () => {
    const port = portOfHookText(restartPort)!;
    expect(statusHoldsPort(statusBefore, { ...port, mac: "52:54:00:6c:3c:99" })).toBe(false);
    expect(statusHoldsPort(statusBefore, { ...port, network: "other" })).toBe(false);
    expect(statusHoldsPort(statusBefore.replace("<interface type='network'>", "<hostdev>"), port)).toBe(false);
  });

  it("anything but libvirt's plain formatting is not recognised (the full path decides)", () => {
    const variants = [
      restartPort.replace("<name>vm1</name>", "<name>a&amp;b</name>"),
      restartPort.replace("<name>vm1</name>", "<name>../x</name>"),
      restartPort.replace("<name>vm1</name>", "<name>..</name>"),
      restartPort.replace("<name>vm1</name>", "<name>vm\x01</name>"),
      restartPort.replace("<mac address='52:54:00:6c:3c:01'/>", '<mac address="52:54:00:6c:3c:01"/>'),
      restartPort.replace("<mac address='52:54:00:6c:3c:01'/>", "<mac address='52:54:00:6C:3C:01'/>"),
      restartPort.replace("<networkport>", "<networkport>\n<!-- c -->"),
      restartPort.replace("</networkport>", "</networkport><networkport><uuid>x</uuid></networkport>"),
      restartPort.replace("<hookData>", "<hookData><network><name>evil</name></network>"),
      "",
      "<hookData/>",
    ];
    for (const v of variants) expect(portOfHookText(v), v.slice(0, 200)).toBeUndefined();
  });
});
