// Host tier: seed article 2 on a booted host, as its admin did it and as
// virt-hooks does it. The article pins devstack's address with
// `virsh net-update … add ip-dhcp-host`, publishes 1122→22 and 1180→80 with
// `iptables -t nat -I PREROUTING … -j DNAT`, restarts the network to apply the
// entry (`net-destroy`/`net-start`) and then has to `brctl addif virbr0 vnet0`
// by hand because running guests fell off the bridge. Here: `virt-hooks host
// add`, two forward rules by name, the same restart with no hand work.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolve } from "node:path";
import type { Host } from "./lab/boot.js";
import { bootTarget, describeTargets, rootOf } from "./lab/targets.js";
import {
  addClient, addGuest, connectOnce, installFromCheckout, reattachStandIn, startDefaultNetwork, waitConnect, type Guest,
} from "./lab/scene.js";

const REPO = resolve(__dirname, "../..");
const DEVSTACK: Guest = { name: "devstack", mac: "52:54:00:6c:3c:01", ip: "192.168.122.11", ports: [22, 80], ns: "devstack", veth: "vd" };

describeTargets("articles", "host, seed article 2", (t) => {
  const target = t.name;
  const fig = (k: string, v: unknown) => console.log(`host-tier: ${target}: ${k} = ${v}`);
  let host: Host;
  const tap = () => host.execSync(`virsh domiflist ${DEVSTACK.name} | awk '/network/ {print $1}'`).stdout.trim();

  beforeAll(async () => {
    host = await bootTarget(t, rootOf(t, REPO), `vh-art-${target}-${process.pid}`);
    const inst = installFromCheckout(host, REPO, { prebuilt: true });
    if (inst.code !== 0) throw new Error(`install.sh failed: ${inst.output.slice(-3000)}`);
    startDefaultNetwork(host);
    addClient(host);
  }, 900_000);
  afterAll(async () => { await host?.stop(); });

  it("a fixed address (virt-hooks host add) and two forwards by name reach devstack's 22 and 80", async () => {
    const add = host.execSync(`virt-hooks host add default ${DEVSTACK.mac} ${DEVSTACK.ip} ${DEVSTACK.name}`);
    expect(add.code, add.stderr).toBe(0);
    host.execSync(`mkdir -p /etc/libvirt/hooks/rules.d; cat > /etc/libvirt/hooks/rules.d/50-devstack.rules <<R
forward tcp 10.77.0.1:1122 to devstack:22
forward tcp 10.77.0.1:1180 to devstack:80
R`);
    addGuest(host, DEVSTACK);
    expect(await waitConnect(host, 1122, 5000), "1122 -> devstack:22").toBeGreaterThanOrEqual(0);
    expect(await waitConnect(host, 1180, 5000), "1180 -> devstack:80").toBeGreaterThanOrEqual(0);
    const status = host.execSync("virt-hooks status").stdout;
    console.log(status.split("\n").map((l) => `host-tier: ${target}:   ${l}`).join("\n"));
    expect(status).toMatch(/2 live/);
  });

  it("the article's network restart: devstack's tap is back on virbr0 and both forwards work, no brctl addif", async () => {
    const before = tap();
    const t0 = Date.now();
    const r = host.execSync("virsh net-destroy default >/dev/null && virsh net-start default >/dev/null");
    expect(r.code, r.stderr).toBe(0);
    const stp = reattachStandIn(host, DEVSTACK); // the stand-in is ours to move; the tap is virt-hooks'
    expect(tap()).toBe(before);
    expect(host.execSync(`bridge link show dev ${before}`).stdout).toMatch(/master virbr0/);
    const a = await waitConnect(host, 1122, 10_000);
    const b = await waitConnect(host, 1180, 10_000);
    fig("network restart: net-destroy+net-start+STP (ms)", `${Date.now() - t0 - Math.max(a, 0) - Math.max(b, 0)} (STP ${stp})`);
    fig("then forwards up after (ms)", `${a} / ${b}`);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(b).toBeGreaterThanOrEqual(0);
  });

  it("devstack stopped: its forwards are gone; started again: back", async () => {
    expect(host.execSync(`virsh destroy ${DEVSTACK.name}`).code).toBe(0);
    expect(connectOnce(host, 1122)).toBe(false);
    expect(host.execSync("virt-hooks status").stdout).toMatch(/0 live, 0 drifted, 2 waiting/);
    expect(host.execSync(`virsh start ${DEVSTACK.name} && virsh suspend ${DEVSTACK.name}`).code).toBe(0);
    host.execSync(`ip link set ${DEVSTACK.veth} master virbr0`);
    expect(await waitConnect(host, 1122, 10_000)).toBeGreaterThanOrEqual(0);
  });

  it("every hook and command left one line, none warning", () => {
    const loud = host.execSync("journalctl -t virt-hooks -p warning -o cat").stdout.trim();
    const lines = host.execSync("journalctl -t virt-hooks -o cat").stdout.trim().split("\n");
    fig("journal lines / at warning or above", `${lines.length} / ${loud ? loud.split("\n").length : 0}`);
    expect(loud).toBe("");
  });
});
