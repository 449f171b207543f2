// Binary tier, the watcher: `virt-hooks watch` run as the compiled executable
// inside a private network namespace with the real nft/iptables. Whatever
// removes our rules there (a ruleset flush, our table deleted, our jump
// deleted) is repaired within a second, by the same reconcile as apply; idle,
// it does nothing (no reconcile loop on its own transactions). No D-Bus in
// the namespace's view of the lab: it says so once and watches netfilter.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostTree, isRoot, msUntil, sleep } from "../helpers/binary.js";
import { NetnsPool, type Netns } from "../helpers/netns.js";


describe.skipIf(!isRoot)("binary: virt-hooks watch repairs what rebuilds the firewall", () => {
  const pool = new NetnsPool();
  let t: HostTree;
  let ns: Netns;
  let watcher: ChildProcess;
  let stderr = "";

  const until = (ok: () => Promise<boolean>, limit = 5000) => msUntil(ok, limit, 50);
  const ours = async () => (await ns.exec(["nft", "list", "table", "ip", "virt_hooks"])).code === 0;
  const jumpFirst = async () => /^-A PREROUTING -j VIRT_HOOKS/m.test((await ns.save(4)).split("\n").filter((l) => l.startsWith("-A PREROUTING")).join("\n"));
  const repairLines = () => stderr.split("\n").filter((l) => /watch: repaired/.test(l));

  beforeAll(async () => {
    t = HostTree.withDefaultNetwork();
    t.startDomain("vm1", "52:54:00:6c:3c:01");
    t.writeRules("50-vm.rules", "set backend nftables\nforward tcp 2222 to vm1:22\n");
    ns = await pool.create();
    // No journal socket in the scratch root: the log sink writes to stderr, which we read.
    watcher = spawn(ns.argv(t.cliArgv("watch"))[0] as string, ns.argv(t.cliArgv("watch")).slice(1), { env: t.env(), stdio: ["ignore", "pipe", "pipe"] });
    watcher.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    watcher.stdout?.on("data", (d: Buffer) => (stderr += `STDOUT: ${d}`));
    // Its first reconcile (on connecting to nft monitor) installs the rules.
    expect(await until(ours, 10_000)).toBeLessThan(10_000);
  });
  afterAll(async () => {
    if (watcher.pid && watcher.exitCode === null) {
      try {
        process.kill(JSON.parse(readFileSync(join(t.root, "run/virt-hooks/watch.json"), "utf8")).pid, "SIGTERM");
      } catch {
        watcher.kill("SIGTERM");
      }
      await until(async () => watcher.exitCode !== null, 3000);
    }
    pool.disposeAll();
    t.dispose();
  });

  it("starts without printing anything on stdout and says what it cannot watch, once", async () => {
    await sleep(1500);
    expect(stderr).not.toContain("STDOUT");
    expect(stderr).toMatch(/watch: started \(pid \d+\)/);
    expect(stderr).not.toMatch(/Warning|--trace-warnings|internal error/);
    // No D-Bus here: said once, with what it still watches.
    expect(stderr.match(/not watching firewalld \(D-Bus\)[^\n]*watching netfilter only/g)).toHaveLength(1);
  });

  it("a flushed ruleset is back within a second", async () => {
    const before = repairLines().length;
    await ns.must(["nft", "flush", "ruleset"]);
    const ms = await until(ours);
    console.log(`binary-tier: watch repaired nft flush ruleset in ${ms} ms`);
    expect(ms).toBeLessThan(1000);
    await sleep(300);
    expect(repairLines().length).toBeGreaterThan(before);
  });

  it("our table deleted by hand is back within a second", async () => {
    await ns.must(["nft", "delete", "table", "ip", "virt_hooks"]);
    const ms = await until(ours);
    console.log(`binary-tier: watch repaired nft delete table ip virt_hooks in ${ms} ms`);
    expect(ms).toBeLessThan(1000);
  });

  it("idle, it does nothing: no reconcile loop on its own transactions", async () => {
    await sleep(1000);
    const n = repairLines().length;
    const checkedBefore = (stderr.match(/watch: /g) ?? []).length;
    await sleep(3000);
    expect(repairLines().length).toBe(n);
    expect((stderr.match(/watch: /g) ?? []).length).toBe(checkedBefore);
  });

  it("records itself for status, and stops on SIGTERM with exit 0", async () => {
    const state = JSON.parse(readFileSync(join(t.root, "run/virt-hooks/watch.json"), "utf8"));
    expect(state).toMatchObject({ sources: { netfilter: "watching" } });
    expect(state.lastRepair?.why).toBeTruthy();
    const st = await ns.exec(t.cliArgv("status", "--json"), { env: t.env() });
    expect(JSON.parse(st.stdout).watcher).toMatchObject({ running: true, pid: state.pid, sources: { netfilter: "watching" } });
    // The watcher itself, not the nsenter in front of it.
    process.kill(state.pid, "SIGTERM");
    const ms = await until(async () => watcher.exitCode !== null || watcher.signalCode !== null, 3000);
    expect(ms, stderr).toBeLessThan(3000);
    expect({ code: watcher.exitCode, signal: watcher.signalCode }).toEqual({ code: 0, signal: null });
    expect(stderr).toMatch(/watch: stopped \(SIGTERM\)/);
  });
});
