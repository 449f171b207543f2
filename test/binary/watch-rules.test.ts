// Binary tier, rules.d as the watcher's event source (issue 27): the compiled
// `virt-hooks watch` in a private netns with the real nft. A new or edited
// rule file is live within a second of the last write; a half-written (broken)
// one applies nothing, is said once, and the last good rules stay; rules.d
// removed is said once, costs no CPU (no tight loop), and is watched again
// once it is back.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostTree, isRoot, msUntil, sleep } from "../helpers/binary.js";
import { NetnsPool, type Netns } from "../helpers/netns.js";


describe.skipIf(!isRoot)("binary: the watcher follows rules.d", () => {
  const pool = new NetnsPool();
  let t: HostTree;
  let ns: Netns;
  let watcher: ChildProcess;
  let stderr = "";

  const until = (ok: () => Promise<boolean>, limit = 5000) => msUntil(ok, limit, 25);
  const table = async () => (await ns.exec(["nft", "list", "table", "ip", "virt_hooks"])).stdout;
  // Our forwards are map elements: "tcp . PORT : ADDRESS . PORT".
  const hasPort = (port: number) => async () => (await table()).includes(`tcp . ${port} :`);
  /** CPU ticks (utime+stime) of the watcher process. */
  const ticks = () => {
    const stat = readFileSync(`/proc/${watcher.pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  };

  beforeAll(async () => {
    t = HostTree.withDefaultNetwork();
    t.startDomain("vm1", "52:54:00:6c:3c:01");
    t.writeRules("50-vm.rules", "set backend nftables\nforward tcp 2222 to vm1:22\n");
    ns = await pool.create();
    const argv = ns.argv(t.cliArgv("watch"));
    watcher = spawn(argv[0] as string, argv.slice(1), { env: t.env(), stdio: ["ignore", "pipe", "pipe"] });
    watcher.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    expect(await until(hasPort(2222), 20_000), stderr).toBeLessThan(20_000);
    await sleep(1000);
  }, 30_000);
  afterAll(async () => {
    watcher.kill("SIGTERM");
    await until(async () => watcher.exitCode !== null, 3000);
    pool.disposeAll();
    t.dispose();
  });

  it("a new rule file is live within a second of its last write", async () => {
    const t0 = Date.now();
    // As an editor saves: a temporary name, written in two steps, renamed into place.
    const tmp = join(t.rulesDir, ".60-new.rules.swp");
    writeFileSync(tmp, "forward tcp 3333 ");
    writeFileSync(tmp, "forward tcp 3333 to vm1:33\n");
    renameSync(tmp, join(t.rulesDir, "60-new.rules"));
    const ms = await until(hasPort(3333), 5000);
    console.log(`binary-tier: a new rule file was live ${Date.now() - t0} ms after its write`);
    // The product's aim is 1 s (300 ms of quiet, 100 ms debounce, one converge); the bound leaves a loaded CI machine room.
    expect(ms).toBeLessThan(1500);
    expect(await hasPort(2222)()).toBe(true);
  });

  it("a half-written file applies nothing and is said once; the last good rules stay; fixed, it applies", async () => {
    const before = stderr.length;
    t.writeRules("60-new.rules", "forward tcp 4444 to\n");
    const said = () => stderr.slice(before).split("\n").filter((l) => l.includes("rule files have errors"));
    // Said within the debounce and one converge (a loaded machine may take longer)...
    expect(await until(async () => said().length > 0, 5000)).toBeLessThan(5000);
    // ...and only once: a further second of quiet adds no repeat.
    await sleep(1000);
    expect(said()).toHaveLength(1);
    // What was live stays live: 2222 and 3333 (the file's last good text), and nothing of the broken one.
    const live = await table();
    expect(live).toContain("tcp . 2222 :");
    expect(live).toContain("tcp . 3333 :");
    expect(live).not.toContain("tcp . 4444 :");
    t.writeRules("60-new.rules", "forward tcp 4444 to vm1:44\n");
    expect(await until(hasPort(4444), 5000)).toBeLessThan(1500);
    expect(await hasPort(3333)()).toBe(false);
  });

  it("rules.d removed: said once, no tight loop; back: watched and applied again", async () => {
    const before = stderr.length;
    const saved = join(t.root, "rules.d.saved");
    renameSync(t.rulesDir, saved);
    await sleep(300);
    const t0 = ticks();
    await sleep(3000);
    const used = ticks() - t0;
    // A few retries (1 s, 2 s) in 3 s: a handful of ticks, not a core's 300.
    expect(used).toBeLessThan(30);
    expect(stderr.slice(before).match(/not watching rules\.d/g)?.length ?? 0).toBeGreaterThanOrEqual(1);
    mkdirSync(t.rulesDir);
    writeFileSync(join(t.rulesDir, "70-back.rules"), "set backend nftables\nforward tcp 5555 to vm1:55\n");
    expect(await until(hasPort(5555), 10_000)).toBeLessThan(10_000);
    rmSync(saved, { recursive: true, force: true });
  });
});
