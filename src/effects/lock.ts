// Serialises our changes across concurrent hook invocations (libvirt runs one
// reconnect per domain in parallel on a daemon restart). The lock is a bound
// abstract unix socket: the kernel releases it when the holder dies, even by
// kill -9, so a crash can never leave it wedged, and it is scoped to the
// network namespace, exactly like the firewall it protects.
import { createServer, type Server } from "node:net";

export interface Lock {
  release(): Promise<void>;
}

export class LockTimeout extends Error {}

export async function acquireLock(name: string, timeoutMs = 30_000, now: () => number = Date.now): Promise<Lock> {
  const address = `\0virt-hooks:${name}`;
  const deadline = now() + timeoutMs;
  let delay = 2;
  for (;;) {
    const server = await tryBind(address);
    if (server) {
      return {
        release: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }
    if (now() > deadline) throw new LockTimeout(`another virt-hooks held the lock for more than ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 50);
  }
}

function tryBind(address: string): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(undefined));
    server.listen({ path: address, exclusive: true }, () => resolve(server));
  });
}
