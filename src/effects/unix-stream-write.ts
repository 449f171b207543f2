// One message to a unix stream socket (the journal's stdout socket): connect,
// write, close. Every hook invocation on a host with journald logs its one
// line this way, so its cost is paid by every event, ignored ones included:
// through node:net it was ~5.6 ms per event (the module, the stream stack, a
// Socket; bench/, ignored event with a journal socket 31.1 ms against 25.5 ms
// without, floor 24.6 ms, issue 15). Here the handle is driven through the
// pipe_wrap and stream_wrap bindings node:net itself uses (pinned Node, as
// light-spawn.ts's spawn_sync); a binding missing or in another shape falls
// back to node:net, with the same result.
//
// Never hangs a hook: a journal that does not take the line within
// `timeoutMs` gets the handle closed and the caller a false (it then writes to
// stderr, as when no journal listens at all).

interface Handle {
  connect(req: object, address: string): number;
  writeUtf8String(req: object, text: string): number;
  close(): void;
}
interface Bindings {
  Pipe: new (type: number) => Handle;
  PipeConnectWrap: new () => { oncomplete?: (status: number) => void };
  SOCKET: number;
  WriteWrap: new () => { handle?: Handle; oncomplete?: (status: number) => void; async?: boolean };
  state: Int32Array;
  lastWriteWasAsync: number;
}

let bindings: Bindings | null | undefined;

function rawBindings(): Bindings | null {
  if (bindings !== undefined) return bindings;
  bindings = null;
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const pipe = binding("pipe_wrap");
    const stream = binding("stream_wrap");
    const constants = pipe.constants as { SOCKET?: unknown } | undefined;
    if (
      typeof pipe.Pipe === "function" && typeof pipe.PipeConnectWrap === "function" && typeof constants?.SOCKET === "number" &&
      typeof stream.WriteWrap === "function" && stream.streamBaseState instanceof Int32Array && typeof stream.kLastWriteWasAsync === "number"
    ) {
      bindings = {
        Pipe: pipe.Pipe as Bindings["Pipe"],
        PipeConnectWrap: pipe.PipeConnectWrap as Bindings["PipeConnectWrap"],
        SOCKET: constants.SOCKET,
        WriteWrap: stream.WriteWrap as Bindings["WriteWrap"],
        state: stream.streamBaseState,
        lastWriteWasAsync: stream.kLastWriteWasAsync,
      };
    }
  } catch {
    // Not this Node: node:net below.
  }
  return bindings;
}

/** Resolves true once `text` is in the socket, false when it could not be written (nothing is thrown). */
export function writeToUnixStream(path: string, text: string, timeoutMs = 2_000): Promise<boolean> {
  const b = rawBindings();
  return b ? viaBindings(b, path, text, timeoutMs) : viaNet(path, text, timeoutMs);
}

function viaBindings(b: Bindings, path: string, text: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let handle: Handle | undefined = new b.Pipe(b.SOCKET);
    const finish = (ok: boolean) => {
      if (!handle) return;
      clearTimeout(timer);
      // uv_close: the descriptor is closed now; what was written stays queued for the reader.
      handle.close();
      handle = undefined;
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const connect = new b.PipeConnectWrap();
    connect.oncomplete = (status) => {
      if (!handle) return;
      if (status < 0) return finish(false);
      const write = new b.WriteWrap();
      write.handle = handle;
      write.async = false;
      write.oncomplete = (done) => finish(done >= 0);
      const err = handle.writeUtf8String(write, text);
      if (err !== 0) return finish(false);
      // Written whole at once (a line is far below the socket's buffer): oncomplete never comes.
      if (b.state[b.lastWriteWasAsync] === 0) finish(true);
    };
    const err = handle.connect(connect, path);
    if (err !== 0) finish(false);
  });
}

async function viaNet(path: string, text: string, timeoutMs: number): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const sock = connect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(false);
    }, timeoutMs);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      resolve(ok);
    };
    const refused = () => done(false);
    sock.once("error", refused);
    sock.once("connect", () => {
      // Connected: the line is the journal's now; a late error must not repeat it on stderr.
      sock.off("error", refused);
      sock.once("error", () => done(true));
      sock.end(text, () => done(true));
    });
  });
}
