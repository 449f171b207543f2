// Serialises our changes across concurrent hook invocations (libvirt runs one
// reconnect per domain in parallel on a daemon restart). The lock is a bound
// abstract unix socket: the kernel releases it when the holder dies, even by
// kill -9, so a crash can never leave it wedged, and it is scoped to the
// network namespace, exactly like the firewall it protects.
//
// Binding the name is the whole lock (a second bind fails with EADDRINUSE), so
// nothing listens. The socket is bound through the pipe_wrap binding that
// node:net's Server uses: loading node:net, the stream stack and cluster (which
// listen() pulls in) for one bind was ~5 ms of every event that acts (issue 15,
// --cpu-prof). Where that binding is missing or answers in another shape, a
// node:net Server listening on the same name is the lock, as before: both
// kinds exclude each other, so an upgrade mid-storm stays serialised.

export interface Lock {
  /** Idempotent: a lock handed from one step to the next may be released by both. */
  release(): Promise<void>;
}

export class LockTimeout extends Error {}

/** A bound abstract socket, or undefined when the name is taken. */
type TryBind = (address: string) => Promise<(() => Promise<void>) | undefined>;

export async function acquireLock(name: string, timeoutMs = 30_000, now: () => number = Date.now): Promise<Lock> {
  return (await acquireLockUnless(name, () => false, timeoutMs, now)) as Lock;
}

/**
 * The lock; or, as soon as `satisfied()` holds while we wait for it (asked
 * before every attempt but the first), undefined: a hook that learns its
 * work was done meanwhile need not queue behind the others to find that out.
 */
export async function acquireLockUnless(name: string, satisfied: () => boolean, timeoutMs = 30_000, now: () => number = Date.now): Promise<Lock | undefined> {
  const address = `\0virt-hooks:${name}`;
  const bind = pipeBinder() ?? bindWithNet;
  const deadline = now() + timeoutMs;
  let delay = 2;
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0 && satisfied()) return undefined;
    const release = await bind(address);
    if (release) {
      let held = true;
      return {
        release: async () => {
          if (!held) return;
          held = false;
          await release();
        },
      };
    }
    if (now() > deadline) throw new LockTimeout(`another virt-hooks held the lock for more than ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
    // At most 16 ms between attempts: in a restart storm every waiter's last
    // sleep delays its exit after the reconcile it waits for (bench/, issue 15:
    // 50 reconnects on 2 cores, a cap of 50 ms left the storm 20-40 ms longer;
    // 8 ms was no better, its extra attempts costing what it saved).
    delay = Math.min(delay * 2, 16);
  }
}

interface PipeHandle {
  bind(address: string): number;
  close(): void;
  unref?(): void;
}
interface PipeWrap {
  Pipe: new (type: number) => PipeHandle;
  constants: { SERVER: number };
}

const UV_EADDRINUSE = -98;

let pipeWrap: PipeWrap | null | undefined;

function pipeBinder(): TryBind | undefined {
  if (pipeWrap === undefined) {
    pipeWrap = null;
    try {
      const b = (process as unknown as { binding(name: string): Partial<PipeWrap> }).binding("pipe_wrap");
      if (typeof b.Pipe === "function" && typeof b.constants?.SERVER === "number") pipeWrap = b as PipeWrap;
    } catch {
      // Not this Node: node:net below.
    }
  }
  const wrap = pipeWrap;
  if (!wrap) return undefined;
  return async (address) => {
    const handle = new wrap.Pipe(wrap.constants.SERVER);
    handle.unref?.();
    const err = handle.bind(address);
    if (err === 0) {
      // uv_close closes the descriptor at once: the name is free when this returns.
      return async () => handle.close();
    }
    handle.close();
    if (err === UV_EADDRINUSE) return undefined;
    // Any other failure of the raw bind: let node:net try (and report) it.
    return bindWithNet(address);
  };
}

async function bindWithNet(address: string): Promise<(() => Promise<void>) | undefined> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(undefined));
    server.listen({ path: address, exclusive: true }, () =>
      resolve(() => new Promise<void>((done) => server.close(() => done()))),
    );
  });
}
