// Host tier, issue 16's bound: whatever rebuilds the firewall, a published
// port is back within a second. On each target (lab/targets.ts: Debian 12 stock,
// libvirt 9.0 on its iptables backend; + bookworm-backports, libvirt 11.3 on
// nftables; Debian 13, libvirt 11.3 on either backend), with firewalld running and virt-hooks installed by the README's command, every
// case below runs 5 times while a client opens a new TCP connection through
// the forward every ~60-100 ms; the worst outage of each case must be ≤ 1 s.
// Figures are printed with a "host-tier:" prefix.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolve } from "node:path";
import type { Host } from "./lab/boot.js";
import { bootTarget, describeTargets, rootOf, type Target } from "./lab/targets.js";
import {
  addClient, addGuest, diagnose, installFromCheckout, outageMs, Probe, reattachStandIn, startDefaultNetwork, waitConnect, type Guest,
} from "./lab/scene.js";

const REPO = resolve(__dirname, "../..");
const TRIALS = 5;
const BOUND_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Case {
  name: string;
  /** Shell run in the host; the outage is measured from when it starts... */
  action: string;
  /** ...or from when it returns (a network restart: the network being down is the admin's doing). */
  measureFrom?: "start" | "end";
  /** The stand-in guest's veth must be put back on the new bridge (libvirt knows nothing of it). */
  restartsNetwork?: boolean;
  /**
   * Puts back what the case broke that is neither ours nor repaired by its owner
   * (firewalld's and libvirt's rules after a flush), so the next case starts from
   * a whole host. A restart, not a reload: firewalld 1.3.3's reload fails when its
   * own table is gone and leaves its drop-everything policy table in place. Its
   * restart makes libvirt re-add its rules too (NameOwnerChanged).
   */
  restore?: string;
}
const RESTORE_NEIGHBOURS = "systemctl restart firewalld && sleep 2";

const WEB: Guest = { name: "web", mac: "52:54:00:77:00:50", ip: "192.168.122.50", ports: [80], ns: "guest", veth: "vg" };
const PORT = 8080;

const common: Case[] = [
  { name: "firewall-cmd --reload", action: "firewall-cmd --reload >/dev/null" },
  { name: "systemctl reload firewalld", action: "systemctl reload firewalld" },
  { name: "systemctl restart firewalld", action: "systemctl restart firewalld" },
  { name: "systemctl reload libvirtd", action: "systemctl reload libvirtd" },
  { name: "systemctl restart libvirtd", action: "systemctl restart libvirtd" },
  { name: "nft flush ruleset", action: "nft flush ruleset", restore: RESTORE_NEIGHBOURS },
  { name: "iptables -F", action: "iptables -F", restore: RESTORE_NEIGHBOURS },
];
// A deleted libvirt table needs a libvirtd restart before the network can start
// again: libvirt (9.0 and 11.3 alike) creates its private chains or table once per
// daemon, and net-start alone then fails in libvirt itself ("No such file or
// directory" / "No chain/target/match by that name").
// Seed article 2's restart (to apply a new DHCP host entry): the running guest's
// tap must be back on the new bridge and its forward working, with no `brctl addif`.
const ARTICLE_RESTART: Case = {
  name: "net-destroy/net-start default (running guest re-attached)",
  action: "virsh net-destroy default >/dev/null; virsh net-start default >/dev/null",
  measureFrom: "end", restartsNetwork: true,
};
const perBackend: Record<Target["backend"], Case[]> = {
  iptables: [
    { name: "iptables -D FORWARD -j VIRT_HOOKS_FWD", action: "iptables -D FORWARD -j VIRT_HOOKS_FWD" },
    { name: "iptables -t nat -F VIRT_HOOKS_PRE", action: "iptables -t nat -F VIRT_HOOKS_PRE" },
    {
      name: "libvirt's tables deleted (nft delete table ip filter/nat), libvirtd restarted, network restarted",
      action: "nft delete table ip filter; nft delete table ip nat; systemctl restart libvirtd; virsh net-destroy default >/dev/null; virsh net-start default >/dev/null",
      measureFrom: "end", restartsNetwork: true,
    },
    ARTICLE_RESTART,
  ],
  nftables: [
    {
      name: "our accept rule deleted from libvirt's forward chain",
      action: `h=$(nft -a list chain ip libvirt_network forward | sed -n 's/.*comment "virt-hooks".*# handle \\([0-9]*\\).*/\\1/p' | head -n1); nft delete rule ip libvirt_network forward handle "$h"`,
    },
    { name: "nft delete table ip virt_hooks", action: "nft delete table ip virt_hooks" },
    {
      name: "libvirt's table deleted (nft delete table ip libvirt_network), libvirtd restarted, network restarted",
      action: "nft delete table ip libvirt_network; systemctl restart libvirtd; virsh net-destroy default >/dev/null; virsh net-start default >/dev/null",
      measureFrom: "end", restartsNetwork: true,
    },
    ARTICLE_RESTART,
  ],
};

describeTargets("outages", "host outages", (t) => {
  const target = t.name;
  const fig = (k: string, v: unknown) => console.log(`host-tier: ${target}: ${k} = ${v}`);
  let host: Host;

  beforeAll(async () => {
    host = await bootTarget(t, rootOf(t, REPO), `vh-out-${target}-${process.pid}`);
    const inst = installFromCheckout(host, REPO, { prebuilt: true });
    if (inst.code !== 0) throw new Error(`install.sh failed: ${inst.output.slice(-3000)}`);
    fig("install time (s)", (inst.ms / 1000).toFixed(1));
    startDefaultNetwork(host);
    addGuest(host, WEB);
    addClient(host);
    // By name, with a fixed address: the guest's own events (its reconnect on a
    // libvirtd restart) are then ours to handle, as on an admin's host.
    const add = host.execSync(`virt-hooks host add default ${WEB.mac} ${WEB.ip} ${WEB.name}`);
    if (add.code !== 0) throw new Error(`host add: ${add.stderr}`);
    host.execSync(`mkdir -p /etc/libvirt/hooks/rules.d
echo 'forward tcp 10.77.0.1:${PORT} to ${WEB.name}:80' > /etc/libvirt/hooks/rules.d/50-host-tier.rules
virt-hooks apply`);
  }, 900_000);
  afterAll(async () => { await host?.stop(); });

  /**
   * One trial: a probe running, `act` breaks something; the outage counts from
   * when `act` started, or from the time it returns (after a network restart).
   */
  const outageOf = async (tag: string, act: () => number | void): Promise<number> => {
    const probe = Probe.start(host, PORT, tag);
    await sleep(800);
    const started = Date.now();
    const since = act() ?? started;
    await probe.awaitRecovery(since, 15_000);
    return outageMs(probe.stop(), since);
  };
  /** Damage to our own objects only, for the watcher's degraded cases. */
  // (Our DNAT, which breaks the forward whatever else is in place: a stopped firewalld
  // takes libvirt's REJECT rules with it, so a missing FORWARD jump would not show.)
  const damage = t.backend === "iptables" ? "iptables -t nat -F VIRT_HOOKS_PRE" : "nft delete table ip virt_hooks";

  it("the watcher runs and watches both firewalld and netfilter", () => {
    expect(host.execSync("systemctl is-active virt-hooks-watch").stdout.trim()).toBe("active");
    const s = JSON.parse(host.execSync("virt-hooks status --json").stdout) as { watcher?: unknown };
    fig("status --json watcher", JSON.stringify(s.watcher));
    expect(JSON.stringify(s.watcher)).toMatch(/watching/);
  });

  it("the forward carries TCP before anything is rebuilt", async () => {
    expect(await waitConnect(host, PORT, 10_000)).toBeGreaterThanOrEqual(0);
  });

  // VH_HOST_CASES=REGEX runs only the cases whose names match (while working on one).
  const only = process.env.VH_HOST_CASES ? new RegExp(process.env.VH_HOST_CASES) : undefined;
  const cases = [...common, ...perBackend[t.backend]].filter((c) => (!only || only.test(c.name)) && (!t.outages || t.outages.test(c.name)));
  for (const c of cases) {
    it(`${c.name}: back within ${BOUND_MS} ms (worst of ${TRIALS})`, async () => {
      const outages: number[] = [];
      const stpWaits: number[] = [];
      for (let i = 0; i < TRIALS; i++) {
        // Each trial starts from a working forward with the previous repair settled.
        if (await waitConnect(host, PORT, 30_000) < 0) {
          throw new Error(`trial ${i + 1}: the forward is not up before the trial\n${diagnose(host)}`);
        }
        await sleep(1500);
        outages.push(await outageOf(`${target}-${i}`, () => {
          const started = Date.now();
          const r = host.execSync(c.action);
          expect(r.code, `${c.action}: ${r.stderr}`).toBe(0);
          // The bridge's own wait for a new port (STP forward delay) is not an outage of ours.
          if (c.restartsNetwork) stpWaits.push(reattachStandIn(host, WEB));
          return c.measureFrom === "end" ? Date.now() : started;
        }));
        if (c.restore) expect(host.execSync(c.restore).code).toBe(0);
      }
      const worst = Math.max(...outages);
      fig(`outage ms, ${c.name}`, `${outages.join(" ")} (worst ${worst})`);
      if (stpWaits.length) fig(`new bridge port forwarding after (ms, STP), ${c.name}`, stpWaits.join(" "));
      expect(worst).toBeLessThanOrEqual(BOUND_MS);
    }, 300_000);
  }

  it.runIf(cases[cases.length - 1] === ARTICLE_RESTART)("a network restart re-attaches the running guest's own tap", () => {
    // The last case restarted the network: the paused domain's tap is ours to put back
    // (seed article 2: `brctl addif virbr0 vnet0` by hand, until now).
    const tap = host.execSync(`virsh domiflist ${WEB.name} | awk '/network/ {print $1}'`).stdout.trim();
    expect(tap).toMatch(/^vnet/);
    expect(host.execSync(`bridge link show dev ${tap}`).stdout).toMatch(/master virbr0/);
  });

  it.runIf(cases.some((c) => c.action === "systemctl restart libvirtd"))("libvirtd's restarts: web's reconnect was left to the watcher each time (no lock, no child)", () => {
    // Issue 28: real libvirt formats the reconnect's XML apart from the status
    // file (libvirt/domain-text.ts); the hand-off must hold against it, not
    // only against the binary tier's written status files.
    const lines = host.execSync(`journalctl -t virt-hooks -o cat | grep '^qemu ${WEB.name} reconnect begin:'`).stdout.trim().split("\n").filter(Boolean);
    fig("web's reconnect lines", lines.length);
    expect(lines.length).toBeGreaterThanOrEqual(TRIALS);
    expect(lines.filter((l) => !l.includes("left to the watcher")), lines.join("\n")).toEqual([]);
  });

  it("idle, the watcher uses no CPU (no polling loop); its memory", async () => {
    const pid = host.execSync("systemctl show -p MainPID --value virt-hooks-watch").stdout.trim();
    const ticks = () => {
      const f = host.execSync(`cat /proc/${pid}/stat`).stdout.split(") ")[1]!.split(" ");
      return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks
    };
    await sleep(3000);
    const a = ticks();
    await sleep(10_000);
    const used = ticks() - a;
    const rss = host.execSync(`grep VmRSS /proc/${pid}/status`).stdout.trim();
    const children = host.execSync(`ps -o rss=,comm= --ppid ${pid}`).stdout.trim().replace(/\s+/g, " ");
    fig("watcher CPU ticks in 10 s idle", used);
    fig("watcher memory", `${rss}; children (RSS KiB, name): ${children}`);
    expect(used).toBeLessThanOrEqual(1);
  }, 60_000);

  it("the watcher killed: systemd restarts it, and it repairs again within a second", async () => {
    const before = host.execSync("systemctl show -p MainPID --value virt-hooks-watch").stdout.trim();
    host.execSync("systemctl kill -s KILL virt-hooks-watch");
    let after = before;
    for (let i = 0; i < 100 && (after === before || after === "0"); i++) {
      await sleep(100);
      after = host.execSync("systemctl show -p MainPID --value virt-hooks-watch").stdout.trim();
    }
    fig("watcher restarted by systemd", `pid ${before} -> ${after}`);
    expect(after).not.toBe(before);
    await sleep(2000); // its monitors count as up after a second
    const out = await outageOf(`${target}-killed`, () => void host.execSync(damage));
    fig("outage ms after the restarted watcher's first repair", out);
    expect(out).toBeLessThanOrEqual(BOUND_MS);
  }, 60_000);

  it("firewalld stopped: the watcher watches netfilter alone and still repairs; firewalld back: both", async () => {
    const c = host.execSync("journalctl -t virt-hooks -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p'").stdout.trim();
    expect(host.execSync("systemctl stop firewalld").code).toBe(0);
    await sleep(1500);
    expect(await waitConnect(host, PORT, 5000)).toBeGreaterThanOrEqual(0);
    const out = await outageOf(`${target}-nofirewalld`, () => void host.execSync(damage));
    fig("outage ms with firewalld stopped", out);
    expect(out).toBeLessThanOrEqual(BOUND_MS);
    expect(host.execSync("systemctl start firewalld").code).toBe(0);
    expect(await waitConnect(host, PORT, 5000)).toBeGreaterThanOrEqual(0);
    const lines = host.execSync(`journalctl -t virt-hooks -o cat --after-cursor='${c}'`).stdout.trim().split("\n");
    for (const l of lines) console.log(`host-tier: ${target}:   ${l}`);
    expect(JSON.stringify(JSON.parse(host.execSync("virt-hooks status --json").stdout).watcher)).toMatch(/"firewalld":"watching"/);
  }, 60_000);

  it("each repair left one journal line, and nothing warned or failed", () => {
    const lines = host.execSync("journalctl -t virt-hooks -o cat").stdout.trim().split("\n");
    // Priority warning and above: what an admin's log watch would page on.
    const loud = host.execSync("journalctl -t virt-hooks -p warning -o cat").stdout.trim().split("\n").filter(Boolean);
    fig("journal lines under virt-hooks", lines.length);
    fig("watch repairs logged", lines.filter((l) => l.startsWith("watch: repaired")).length);
    fig("warning/error lines", loud.length);
    for (const l of loud) console.log(`host-tier: ${target}:   ${l}`);
    expect(loud).toEqual([]);
    // status names the last repair: when, why, and how long after the first event.
    const w = (JSON.parse(host.execSync("virt-hooks status --json").stdout) as { watcher: { lastRepair: { outMs?: number } | null } }).watcher;
    fig("status --json watcher.lastRepair", JSON.stringify(w.lastRepair));
    expect(w.lastRepair?.outMs).toBeGreaterThanOrEqual(0);
    expect(host.execSync("journalctl -b -o cat | grep -c -e ExperimentalWarning -e 'at .*node:internal' || true").stdout.trim()).toBe("0");
  });
});
