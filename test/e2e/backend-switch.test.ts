// End-to-end: an admin switches libvirt's firewall backend (network.conf, then
// a daemon restart, as libvirt documents). Our rules must follow libvirt to the
// new backend and leave nothing behind in the old one, with the forward working
// throughout the change's end state. Both directions.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRoot } from "../helpers/binary.js";
import { Lab, type Backend } from "./lab/lab.js";

const HOST = "192.168.1.100";
const CLIENT = "192.168.1.2";
const GUEST = { name: "devstack", mac: "52:54:00:6c:3c:11", ip: "192.168.122.11" };
const network = `<network><name>default</name><forward mode='nat'/><bridge name='virbr0' stp='off'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.100' end='192.168.122.254'/>
    <host mac='${GUEST.mac}' name='devstack' ip='${GUEST.ip}'/></dhcp></ip></network>`;

const other = (b: Backend): Backend => (b === "iptables" ? "nftables" : "iptables");

describe.skipIf(!isRoot).each(["iptables", "nftables"] as Backend[])("e2e: libvirt's backend switched from %s", (from) => {
  let lab: Lab;

  /** Our rules in each backend, as text (empty when there are none). */
  async function ourRules(): Promise<Record<Backend, string>> {
    const ipt = (await lab.iptablesSave()).split("\n").filter((l) => l.includes("VIRT_HOOKS")).join("\n");
    const nft = (await lab.nftRuleset()).split("\n").filter((l) => /table ip6? virt_hooks|comment "virt-hooks"/.test(l)).join("\n");
    return { iptables: ipt, nftables: nft };
  }

  beforeAll(async () => {
    lab = await Lab.start(from);
    await lab.install();
    lab.writeRules("50-web.rules", `forward tcp ${HOST}:1122 to devstack:22\n`);
    await lab.outside(HOST, CLIENT, 24);
    await lab.startDaemons();
    await lab.defineNetwork(network);
    await lab.defineGuest({ ...GUEST, network: "default" });
    await lab.virsh("start", GUEST.name);
    await lab.standIn(GUEST.name, GUEST.mac, { ip: GUEST.ip, prefix: 24, gateway: "192.168.122.1", ports: [22] });
  });

  afterAll(async () => {
    await lab?.dispose();
  });

  it(`the forward lives in ${from} first, then follows libvirt to ${other(from)} and leaves nothing in ${from}`, async () => {
    expect(await lab.probe(HOST, 1122, "outside")).toBe(`devstack:22 ${CLIENT}`);
    const before = await ourRules();
    expect(before[from]).not.toBe("");
    expect(before[other(from)]).toBe("");

    // The admin's switch: network.conf, then restart the daemon and the network
    // (libvirt keeps a running network on the backend it was started with).
    const conf = join(lab.root, "etc-libvirt", "network.conf");
    // The uncommented line only (Debian's file documents the setting in a comment).
    writeFileSync(conf, readFileSync(conf, "utf8").replace(/^firewall_backend = .*$/m, `firewall_backend = "${other(from)}"`));
    const mark = lab.journal.lines.length;
    await lab.restartLibvirtd();
    await lab.journal.waitFor(/^qemu devstack reconnect begin: /, mark);
    await lab.virsh("net-destroy", "default");
    await lab.virsh("net-start", "default");
    await lab.journal.waitFor(/^network default started begin: /, mark);

    const { reply } = await lab.probeUntil(HOST, 1122, "outside", /^devstack:22 /, 3000);
    expect(reply, lab.journal.since(mark).join("\n")).toBe(`devstack:22 ${CLIENT}`);
    const after = await ourRules();
    expect(after[from], lab.journal.since(mark).join("\n")).toBe("");
    expect(after[other(from)]).not.toBe("");
  });
});
