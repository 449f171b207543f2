// Binary tier, the watcher and the hooks of issue 28. Its quiet record
// (effects/quiet-record.ts): while the watcher runs and has heard no change
// since it verified, a `started` whose inputs are unchanged does nothing at all
// (no child); the record is withdrawn by what the watcher hears, and never
// believed once its watcher is gone or the hook's own inputs differ. And a
// libvirtd restart's `reconnect` is left to a watcher that hears everything
// (hook/handed-to-watcher.ts): the watcher repairs what the rebuild broke.
// Both backends' tools are iptables-nft / nft here, which nft monitor hears.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { domainElement } from "../../src/libvirt/domain-text.js";
import { HostTree, isRoot, msUntil, sleep } from "../helpers/binary.js";
import { NetnsPool, type Netns } from "../helpers/netns.js";

const VM = { name: "vm1", mac: "52:54:00:6c:3c:01" };

describe.skipIf(!isRoot)("binary: the watcher's quiet record", () => {
  const pool = new NetnsPool();
  let t: HostTree;
  let ns: Netns;
  let watcher: ChildProcess | undefined;
  let stderr = "";

  const quietFile = () => join(t.root, "run/virt-hooks/quiet.json");
  const watcherPid = () => JSON.parse(readFileSync(join(t.root, "run/virt-hooks/watch.json"), "utf8")).pid as number;
  const ourTable = async () => (await ns.exec(["nft", "list", "table", "ip", "virt_hooks"])).stdout;

  async function start(backend: "nftables" | "iptables") {
    t = HostTree.withDefaultNetwork();
    t.startDomain(VM.name, VM.mac);
    t.writeRules("50-vm.rules", `set backend ${backend}\nforward tcp 2222 to vm1:22\n`);
    ns = await pool.create();
    stderr = "";
    const argv = ns.argv(t.cliArgv("watch"));
    watcher = spawn(argv[0] as string, argv.slice(1), { env: t.env(), stdio: ["ignore", "pipe", "pipe"] });
    watcher.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    expect(await msUntil(async () => existsSync(quietFile()), 15_000, 50), stderr).toBeLessThan(15_000);
  }

  /** A qemu event for vm1 as libvirt sends it (the <domain> its status file holds), traced: its log line and how many children it started. */
  async function qemuEvent(op: "started" | "reconnect") {
    const xml = domainElement(readFileSync(join(t.root, "run/libvirt/qemu/vm1.xml"), "utf8"))!;
    const trace = join(t.root, `execve-${Date.now()}.trace`);
    const r = await ns.exec(["strace", "-f", "-qq", "-e", "trace=execve", "-o", trace, ...t.hookArgv(`qemu vm1 ${op} begin -`)], { env: t.env(), input: xml });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    const children = readFileSync(trace, "utf8").split("\n").filter((l) => /execve\(.* = 0$/.test(l)).length - 1;
    return { log: r.stderr, children };
  }

  afterEach(async () => {
    if (watcher && watcher.exitCode === null && watcher.signalCode === null) {
      try {
        process.kill(watcherPid(), "SIGCONT");
        process.kill(watcherPid(), "SIGTERM");
      } catch {
        watcher.kill("SIGTERM");
      }
      await msUntil(async () => watcher!.exitCode !== null || watcher!.signalCode !== null, 3000, 50);
    }
    watcher = undefined;
    pool.disposeAll();
    t.dispose();
  });

  for (const backend of ["nftables", "iptables"] as const) {
    it(`${backend}: a started with nothing to do starts no child; what the watcher hears withdraws the record, and it comes back once repaired`, async () => {
      await start(backend);
      const quick = await qemuEvent("started");
      expect(quick.log).toMatch(/qemu vm1 started begin: .*unchanged since the watcher verified it at \S+ \(no change heard since\)/);
      expect(quick.children, quick.log).toBe(0);
      expect(quick.log).toMatch(/rules 1 live/);
      // status says so (docs/json.md: watcher.quietSince).
      const st = JSON.parse((await ns.exec(t.cliArgv("status", "--json"), { env: t.env() })).stdout);
      expect(st.watcher.quietSince).toBe(JSON.parse(readFileSync(quietFile(), "utf8")).since);

      // Someone deletes our rules: the record is gone at once (it is back only after the repair).
      const before = readFileSync(quietFile(), "utf8");
      if (backend === "nftables") await ns.must(["nft", "delete", "table", "ip", "virt_hooks"]);
      else await ns.must(["iptables", "-w", "-t", "nat", "-F", "VIRT_HOOKS_PRE"]);
      // Withdrawn as the change is heard: gone for at least the trigger's 100 ms before the repair writes it again.
      expect(await msUntil(async () => !existsSync(quietFile()), 3000, 2)).toBeLessThan(3000);
      expect(await msUntil(async () => existsSync(quietFile()) && readFileSync(quietFile(), "utf8") !== before, 5000, 50), stderr).toBeLessThan(5000);
      expect(stderr).toMatch(/watch: repaired/);
      expect((await qemuEvent("started")).children).toBe(0);
    });
  }

  for (const backend of ["nftables", "iptables"] as const) {
    it(`${backend}: a restart's reconnect is left to the watcher (no lock, no child), which repairs what the rebuild broke within a second`, async () => {
      await start(backend);
      const applied = backend === "nftables" ? await ourTable() : (await ns.save(4)).split("\n").filter((l) => l.includes("VIRT_HOOKS")).join("\n");
      const ours = async () => (backend === "nftables" ? await ourTable() : (await ns.save(4)).split("\n").filter((l) => l.includes("VIRT_HOOKS")).join("\n"));
      // libvirt's rebuild disturbs ours (here: our DNAT flushed), then its reconnect hooks run.
      if (backend === "nftables") await ns.must(["nft", "flush", "chain", "ip", "virt_hooks", "prerouting"]);
      else await ns.must(["iptables", "-w", "-t", "nat", "-F", "VIRT_HOOKS_PRE"]);
      const t0 = Date.now();
      const r = await qemuEvent("reconnect");
      expect(r.log).toMatch(/qemu vm1 reconnect begin: left to the watcher \(pid \d+\)/);
      expect(r.children, r.log).toBe(0);
      const ms = await msUntil(async () => (await ours()) === applied, 5000, 20);
      console.log(`binary-tier: ${backend}: repaired by the watcher ${Date.now() - t0} ms after the reconnect was handed over`);
      expect(ms, stderr).toBeLessThan(5000);
    });
  }

  it("a reconnect is not left to a watcher that is gone, nor when rules.d has a problem: it reconciles itself", async () => {
    await start("nftables");
    // A rule file others may write is refused (the hook says so on every event; the watcher cannot apply the directory).
    t.writeRules("60-other.rules", "forward tcp 2224 to vm1:22\n");
    chmodSync(join(t.rulesDir, "60-other.rules"), 0o666);
    expect((await qemuEvent("reconnect")).log).not.toMatch(/left to the watcher/);
    rmSync(join(t.rulesDir, "60-other.rules"));
    process.kill(watcherPid(), "SIGKILL");
    await msUntil(async () => watcher!.exitCode !== null || watcher!.signalCode !== null, 3000, 50);
    await ns.must(["nft", "flush", "chain", "ip", "virt_hooks", "prerouting"]);
    const r = await qemuEvent("reconnect");
    expect(r.log).not.toMatch(/left to the watcher/);
    expect(r.children).toBeGreaterThan(0);
    expect(await ourTable()).toMatch(/2222/);
  });

  it("never believed once its watcher is gone: a killed watcher's record stays on disk, the hook looks for itself and repairs", async () => {
    await start("nftables");
    const applied = await ourTable();
    process.kill(watcherPid(), "SIGKILL");
    await msUntil(async () => watcher!.exitCode !== null || watcher!.signalCode !== null, 3000, 50);
    expect(existsSync(quietFile())).toBe(true);
    await ns.must(["nft", "flush", "chain", "ip", "virt_hooks", "prerouting"]);
    const r = await qemuEvent("started");
    expect(r.log).not.toMatch(/unchanged since the watcher/);
    expect(r.children).toBeGreaterThan(0);
    expect(await ourTable()).toEqual(applied);
  });

  it("never believed for other inputs: rules.d edited while the watcher is frozen (SIGSTOP, so it cannot withdraw it) is reconciled by the hook", async () => {
    await start("nftables");
    process.kill(watcherPid(), "SIGSTOP");
    t.writeRules("50-vm.rules", "set backend nftables\nforward tcp 2223 to vm1:22\n");
    await sleep(50);
    expect(existsSync(quietFile())).toBe(true);
    const r = await qemuEvent("started");
    expect(r.log).not.toMatch(/unchanged since the watcher/);
    expect(r.children).toBeGreaterThan(0);
    expect(await ourTable()).toMatch(/2223/);
  });
});
