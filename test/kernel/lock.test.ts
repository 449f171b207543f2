// Kernel tier: the lock (effects/lock.ts) against the real kernel and /proc: a
// file in a root-only state directory, taken by link(2). A second holder waits,
// a release frees it at once, a holder killed with it held is seen dead at once,
// and the earlier releases' abstract socket name is still excluded (an upgrade
// in the middle of a storm stays serialised) when a root process holds it.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { build } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { acquireLock, acquireLockUnless, LockTimeout } from "../../src/effects/lock.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const stateDir = () => {
  const d = mkdtempSync(join(tmpdir(), "vh-lock-"));
  dirs.push(d);
  return join(d, "run", "virt-hooks");
};

function listenOn(name: string): Promise<Server> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen({ path: `\0virt-hooks:${name}`, exclusive: true }, () => done(s));
  });
}
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

describe("the lock (a file in the root-only state directory)", () => {
  it("is held by one at a time, and free the moment it is released", async () => {
    const d = stateDir();
    const first = await acquireLock(d, { timeoutMs: 1_000 });
    expect(first.notes).toEqual([]);
    await expect(acquireLock(d, { timeoutMs: 30 })).rejects.toBeInstanceOf(LockTimeout);
    const waiting = acquireLock(d, { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 20));
    await first.release();
    const second = await waiting;
    await second.release();
    await (await acquireLock(d, { timeoutMs: 30 })).release();
    expect(existsSync(join(d, "reconcile.lock"))).toBe(false);
  });

  it("a waiter whose work was done meanwhile stops waiting, without the lock; unsatisfied, it gets the lock", async () => {
    const d = stateDir();
    const held = await acquireLock(d, { timeoutMs: 1_000 });
    let done = false;
    let asked = 0;
    const waiting = acquireLockUnless(d, () => (asked++, done), { timeoutMs: 5_000 });
    setTimeout(() => (done = true), 30);
    expect(await waiting).toBeUndefined();
    expect(asked).toBeGreaterThan(1);
    await held.release();
    const free = await acquireLockUnless(d, () => true, { timeoutMs: 1_000 });
    expect(free).toBeDefined(); // the first attempt comes before the first question
    await free!.release();
    await free!.release(); // idempotent
    await (await acquireLock(d, { timeoutMs: 30 })).release();
  });

  it("a holder killed with the lock held (kill -9) is seen dead at once: the next one takes it", async () => {
    const d = stateDir();
    // Another process takes the lock and is killed before it can let go.
    const bundle = join(dirname(d), "lock.mjs");
    await build({ entryPoints: [resolve(import.meta.dirname, "../../src/effects/lock.ts")], bundle: true, platform: "node", format: "esm", outfile: bundle, logLevel: "silent" });
    const child = spawn(process.execPath, ["-e", `import(${JSON.stringify(bundle)}).then(async (m) => { await m.acquireLock(${JSON.stringify(d)}); process.stdout.write("held\\n"); setInterval(() => {}, 1e6); })`], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((r) => child.stdout!.once("data", () => r()));
    expect(readFileSync(join(d, "reconcile.lock"), "utf8")).toMatch(new RegExp(`^${child.pid} \\d+\\n$`));
    await expect(acquireLock(d, { timeoutMs: 50 })).rejects.toBeInstanceOf(LockTimeout);
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const t = performance.now();
    const lock = await acquireLock(d, { timeoutMs: 5_000 });
    expect(performance.now() - t).toBeLessThan(1_000);
    await lock.release();
  });

  it("excludes, and is excluded by, an earlier release's lock (a node:net Server of root's on the abstract name)", async () => {
    const d = stateDir();
    const server = await listenOn(d);
    await expect(acquireLock(d, { timeoutMs: 100 })).rejects.toBeInstanceOf(LockTimeout);
    // The failed attempt left the new lock free again.
    expect(existsSync(join(d, "reconcile.lock"))).toBe(false);
    const waiting = acquireLock(d, { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 30));
    await close(server);
    const held = await waiting;
    await expect(listenOn(d)).rejects.toMatchObject({ code: "EADDRINUSE" });
    await held.release();
    await close(await listenOn(d));
  });

  it("each purpose is a lock of its own", async () => {
    const d = stateDir();
    const a = await acquireLock(d, { timeoutMs: 100 });
    const b = await acquireLock(d, { purpose: "fixed-addresses", timeoutMs: 100 });
    await a.release();
    await b.release();
  });
});
