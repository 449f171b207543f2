// Kernel tier: the hook's lock is a bound abstract unix socket (effects/lock.ts),
// bound through Node's pipe_wrap binding. Checked against the real kernel: a
// second holder waits, a release frees the name at once, and the lock excludes
// (and is excluded by) a node:net Server on the same name, the lock of earlier
// releases, so an upgrade in the middle of a storm stays serialised.
import { createServer, type Server } from "node:net";
import { describe, expect, it } from "vitest";
import { acquireLock, acquireLockUnless, LockTimeout } from "../../src/effects/lock.js";

const name = () => `test-${process.pid}-${Math.random().toString(36).slice(2)}`;

function listenOn(lockName: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen({ path: `\0virt-hooks:${lockName}`, exclusive: true }, () => resolve(s));
  });
}

describe("the lock (a bound abstract socket)", () => {
  it("is held by one at a time, and free the moment it is released", async () => {
    const n = name();
    const first = await acquireLock(n, 1_000);
    await expect(acquireLock(n, 30)).rejects.toBeInstanceOf(LockTimeout);
    const waiting = acquireLock(n, 5_000);
    await new Promise((r) => setTimeout(r, 20));
    await first.release();
    const second = await waiting;
    await second.release();
    await (await acquireLock(n, 30)).release();
  });

  it("a waiter whose work was done meanwhile stops waiting, without the lock; unsatisfied, it gets the lock", async () => {
    const n = name();
    const held = await acquireLock(n, 1_000);
    let done = false;
    let asked = 0;
    const waiting = acquireLockUnless(n, () => (asked++, done), 5_000);
    setTimeout(() => (done = true), 30);
    expect(await waiting).toBeUndefined();
    expect(asked).toBeGreaterThan(1);
    // The holder never released: the waiter left on its own answer.
    await held.release();
    const free = await acquireLockUnless(n, () => true, 1_000);
    expect(free).toBeDefined(); // the first attempt comes before the first question
    await free!.release();
    await free!.release(); // idempotent
    await (await acquireLock(n, 30)).release();
  });

  it("excludes, and is excluded by, a node:net Server listening on the same name", async () => {
    const n = name();
    const server = await listenOn(n);
    await expect(acquireLock(n, 30)).rejects.toBeInstanceOf(LockTimeout);
    await new Promise<void>((r) => server.close(() => r()));
    const held = await acquireLock(n, 1_000);
    await expect(listenOn(n)).rejects.toMatchObject({ code: "EADDRINUSE" });
    await held.release();
    const again = await listenOn(n);
    await new Promise<void>((r) => again.close(() => r()));
  });
});
