// Kernel tier: the hook's lock is a bound abstract unix socket (effects/lock.ts),
// bound through Node's pipe_wrap binding. Checked against the real kernel: a
// second holder waits, a release frees the name at once, and the lock excludes
// (and is excluded by) a node:net Server on the same name, the lock of earlier
// releases, so an upgrade in the middle of a storm stays serialised.
import { createServer, type Server } from "node:net";
import { describe, expect, it } from "vitest";
import { acquireLock, LockTimeout } from "../../src/effects/lock.js";

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
