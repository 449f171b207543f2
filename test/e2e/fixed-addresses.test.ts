// End-to-end, issue 17: fixed addresses declared in rules.d (`host NETWORK MAC
// IP [NAME]`) converged by `virt-hooks apply` into a real libvirtd's network,
// live and persistent, through the real virsh; removed when their statement
// goes; a hand-added entry that contradicts one reported with the fix and left
// alone; and the hooks (which never call libvirt) resolving forwards from the
// declaration before any apply. On each firewall backend.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRoot } from "../helpers/binary.js";
import { Lab, type Backend } from "./lab/lab.js";

const HOST = "192.168.1.100";
const CLIENT = "192.168.1.2";
// libvirt's stock default network: the DHCP range spans the whole subnet.
const NAT = `<network><name>default</name><forward mode='nat'/><bridge name='virbr0' stp='off'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>`;
const WEB = { name: "web", mac: "52:54:00:17:00:10", ip: "192.168.122.10" };
const ENTRY = `<host mac='${WEB.mac}' name='web' ip='${WEB.ip}'/>`;
const HAND = `<host mac='52:54:00:17:00:99' name='other' ip='192.168.122.20'/>`;

describe.skipIf(!isRoot).each(["iptables", "nftables"] as Backend[])("e2e: fixed addresses from rules.d (%s backend)", (backend) => {
  let lab: Lab;
  const cli = (...args: string[]) => lab.exec(["/usr/local/sbin/virt-hooks", ...args]);
  const entries = async (inactive: boolean) =>
    (await lab.virsh("net-dumpxml", ...(inactive ? ["--inactive"] : []), "default")).stdout.split("\n").filter((l) => l.includes("<host ")).map((l) => l.trim());

  beforeAll(async () => {
    lab = await Lab.start(backend);
    await lab.install();
    await lab.outside(HOST, CLIENT, 24);
    await lab.startDaemons();
    await lab.defineNetwork(NAT);
    await lab.defineGuest({ ...WEB, network: "default" });
  });

  afterAll(async () => {
    await lab?.dispose();
  });

  it("1. before any apply, the hook resolves a forward by name from the declaration (the network has no entry yet, and no hook calls virsh)", async () => {
    lab.writeRules("50-web.rules", `host default ${WEB.mac} ${WEB.ip} web\nforward tcp 2222 to web:22\n`);
    const mark = lab.journal.lines.length;
    await lab.virsh("start", WEB.name);
    await lab.standIn(WEB.name, WEB.mac, { ip: WEB.ip, prefix: 24, gateway: "192.168.122.1", ports: [22] });
    expect(await lab.journal.waitFor(/^qemu web started begin: .*rules 1 live, 0 waiting, 0 failed/, mark)).toBeTruthy();
    expect(await lab.probe(HOST, 2222, "outside")).toBe(`web:22 ${CLIENT}`);
    expect(await entries(false)).toEqual([]);
    const check = await cli("check");
    expect(check.stdout).toContain(`pending`);
    expect(check.stdout).toContain(`${ENTRY} to add to network "default" (live and persistent)`);
    expect((await cli("status")).code).toBe(5);
  });

  it("2. apply adds it live and persistent with the real virsh, records it as ours, and a second apply changes nothing", async () => {
    const mark = lab.journal.lines.length;
    const r = await cli("apply");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`fixed addresses: added ${ENTRY} to network "default" (live and persistent)`);
    expect(await entries(false)).toEqual([ENTRY]);
    expect(await entries(true)).toEqual([ENTRY]);
    // libvirt ran the network's updated hook in the middle of our virsh call: no deadlock, no lock timeout.
    expect(await lab.journal.waitFor(/^network default updated begin: .*rules 1 live/, mark)).toBeTruthy();
    expect(readFileSync(join(lab.root, "var-lib-libvirt", "virt-hooks", "fixed-addresses.json"), "utf8")).toContain(WEB.mac);
    const again = await cli("apply");
    expect(again.stdout).not.toContain("fixed addresses:");
    expect((await cli("status")).code).toBe(0);
    expect(await lab.probe(HOST, 2222, "outside")).toBe(`web:22 ${CLIENT}`);
  });

  it("3. an entry added by hand that contradicts a statement: reported with the virsh command that frees its place, never touched", async () => {
    await lab.virsh("net-update", "default", "add", "ip-dhcp-host", HAND, "--live", "--config");
    lab.writeRules("60-conflict.rules", "host default 52:54:00:17:00:20 192.168.122.20 db\n");
    const r = await cli("apply");
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`60-conflict.rules:1:1: error: network "default" already gives address 192.168.122.20 to ${HAND} (running network), an entry virt-hooks did not add: it is left as it is [fixed-address-conflict]`);
    expect(r.stderr).toContain(`hint: to let this statement replace it: virsh net-update default delete ip-dhcp-host "${HAND}" --live --config && virt-hooks apply   (or make the statement match it: host default 52:54:00:17:00:99 192.168.122.20 other)`);
    expect(await entries(false)).toEqual([ENTRY, HAND]);
    expect(await entries(true)).toEqual([ENTRY, HAND]);
    const status = await cli("status", "--json");
    const hosts = (JSON.parse(status.stdout) as { hosts: { state: string; origin: string }[] }).hosts;
    expect(hosts.map((h) => `${h.origin} ${h.state}`)).toEqual(["50-web.rules:1 live", "60-conflict.rules:1 failed"]);
    lab.removeRules("60-conflict.rules");
  });

  it("4. the statement leaves rules.d: apply deletes our entry, live and persistent, and leaves the hand-added one", async () => {
    lab.writeRules("50-web.rules", "forward tcp 2222 to web:22\n");
    const r = await cli("apply");
    expect(r.stdout).toContain(`fixed addresses: deleted ${ENTRY} from network "default" (live and persistent)`);
    expect(await entries(false)).toEqual([HAND]);
    expect(await entries(true)).toEqual([HAND]);
    // Without a fixed address the forward fails, and says how to declare one.
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`hint: declare one beside the forwards, for every host: host default ${WEB.mac} 192.168.122.2 web`);
  });
});
