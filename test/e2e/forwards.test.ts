// End-to-end: the compiled virt-hooks, installed by install.sh as libvirt's
// hooks, against a real libvirtd 11.3 with real networks and real (diskless)
// guests, on each of libvirt's firewall backends. Services "inside" guests are
// stand-in namespaces spliced onto the guests' own taps (lab.ts), clients are
// namespaces on their own link. Every assertion is a real TCP connection or
// the exact firewall state.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRoot } from "../helpers/binary.js";
import { Lab, type Backend } from "./lab/lab.js";
import { chainRules } from "../helpers/netns.js";

const HOST = "192.168.1.100"; // the second article's host address, on the lab's "uplink"
const CLIENT = "192.168.1.2";
const DEVSTACK = { name: "devstack", mac: "52:54:00:6c:3c:11", ip: "192.168.122.11" };
const VM2 = { name: "vm2", mac: "52:54:00:6c:3c:12", ip: "192.168.122.12" };
const NOFIX = { name: "nofix", mac: "52:54:00:6c:3c:13" };

const defaultNetwork = `<network><name>default</name><forward mode='nat'/><bridge name='virbr0' stp='off'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.100' end='192.168.122.254'/>
    <host mac='${DEVSTACK.mac}' name='devstack' ip='${DEVSTACK.ip}'/>
    <host mac='${VM2.mac}' name='vm2' ip='${VM2.ip}'/></dhcp></ip></network>`;

const ARTICLE2 = `# The second article: publish devstack's ssh and web ports on the host's address.
forward tcp ${HOST}:1122 to devstack:22
forward tcp ${HOST}:1180 to devstack:80
`;

const standIn = (ip: string, ports: number[]) => ({ ip, prefix: 24, gateway: "192.168.122.1", ports });

/** What a client outside sees through the host's address. */
const reaches = (domain: string, port: number) => new RegExp(`^${domain}:${port} `);

const BACKENDS: Backend[] = ["iptables", "nftables"];

describe.skipIf(!isRoot).each(BACKENDS)("e2e (%s backend)", (backend) => {
  let lab: Lab;

  async function startGuest(g: { name: string; mac: string; ip: string }, ports: number[], first = false): Promise<void> {
    await lab.virsh("start", g.name);
    if (first) await lab.standIn(g.name, g.mac, standIn(g.ip, ports));
    else await lab.splice(g.name);
  }

  beforeAll(async () => {
    lab = await Lab.start(backend);
    await lab.install();
    lab.writeRules("50-article2.rules", ARTICLE2);
    await lab.outside(HOST, CLIENT, 24);
    await lab.serve("outside", [1122], "outside");
    await lab.startDaemons();
    await lab.defineNetwork(defaultNetwork);
    for (const g of [DEVSTACK, VM2]) await lab.defineGuest({ ...g, network: "default" });
    await lab.defineGuest({ ...NOFIX, network: "default" });
    await startGuest(DEVSTACK, [22, 80], true);
    await startGuest(VM2, [22], true);
  });

  afterAll(async () => {
    await lab?.dispose();
  });

  it("1. the second article: outside, the host itself and another guest (hairpin) reach devstack; its own outbound :1122 is not redirected", async () => {
    expect(await lab.probe(HOST, 1122, "outside")).toBe(`devstack:22 ${CLIENT}`);
    expect(await lab.probe(HOST, 1180, "outside")).toBe(`devstack:80 ${CLIENT}`);
    expect(await lab.probe(HOST, 1122)).toMatch(reaches("devstack", 22));
    expect(await lab.probe(HOST, 1180, lab.guestNetns("vm2"))).toMatch(reaches("devstack", 80));
    // devstack's own connection to another host on port 1122 goes to that host.
    expect(await lab.probe(CLIENT, 1122, lab.guestNetns("devstack"))).toBe(`outside:1122 ${HOST}`);
    // A port nobody forwards stays closed.
    expect(await lab.probe(HOST, 1123, "outside")).toMatch(/refused|timeout/);
  });
});
