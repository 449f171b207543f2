// The lightest way Node offers to run one program and collect its output:
// an argv array (never a shell), its own three pipes (the hook's stdout is
// libvirt's: a tool must never write there), input written whole, output read
// whole, a time limit (then SIGKILL) and an output cap.
//
// Synchronous on purpose: a hook does one thing at a time anyway, and a
// synchronous spawn runs the child from C++ on a private loop, without
// ChildProcess, Socket or stream objects in JavaScript. The first choice is
// the very binding node:child_process's spawnSync calls (spawn_sync.spawn,
// with the options spawnSync hands it): requiring node:child_process itself
// loads net, dgram and the whole stream stack first, ~2.3 ms of every event
// that acts, where the floor is ~17 ms (issue 15). process.binding is a
// legacy API of the Node embedded in the executable (pinned); if it is
// missing or answers in another shape, node:child_process's spawnSync runs
// the tool instead, with the same options and results.
export interface SpawnOptions {
  readonly input: string;
  readonly timeoutMs: number;
  /** Per stream; more than this kills the tool (ENOBUFS) and is reported. */
  readonly maxBytes: number;
  readonly env: Readonly<Record<string, string>>;
}

export interface SpawnResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

interface RawResult {
  readonly status: number | null;
  readonly signal: string | null;
  /** [stdin, stdout, stderr]: Buffers, or null when the child never ran. */
  readonly output: readonly (Buffer | null)[] | null;
  /** A negative errno (uv), when the spawn or the wait failed. */
  readonly error?: number;
}

type RawSpawn = (options: object) => RawResult;

const SIGKILL = 9;
const UV_ETIMEDOUT = -110;
const UV_ENOBUFS = -105;
const UV_ENOENT = -2;
const UV_EACCES = -13;

let raw: RawSpawn | null | undefined;

function rawSpawn(): RawSpawn | null {
  if (raw !== undefined) return raw;
  raw = null;
  try {
    const binding = (process as unknown as { binding(name: string): { spawn?: unknown } }).binding("spawn_sync");
    if (typeof binding.spawn === "function") raw = binding.spawn.bind(binding) as RawSpawn;
  } catch {
    // Not this Node: the public spawnSync below.
  }
  return raw;
}

function viaBinding(spawn: RawSpawn, tool: string, args: readonly string[], o: SpawnOptions): SpawnResult | undefined {
  const r = spawn({
    file: tool,
    args: [tool, ...args],
    envPairs: Object.entries(o.env).map(([k, v]) => `${k}=${v}`),
    stdio: [
      { type: "pipe", readable: true, writable: false, input: Buffer.from(o.input, "utf8") },
      { type: "pipe", readable: false, writable: true },
      { type: "pipe", readable: false, writable: true },
    ],
    timeout: o.timeoutMs,
    maxBuffer: o.maxBytes,
    killSignal: SIGKILL,
    windowsHide: true,
    windowsVerbatimArguments: false,
    detached: false,
  });
  if (!r || typeof r !== "object" || !("status" in r)) return undefined;
  const text = (i: number) => {
    const b = r.output?.[i];
    return Buffer.isBuffer(b) ? b.toString("utf8") : "";
  };
  const stdout = text(1);
  const stderr = text(2);
  if (r.error === UV_ETIMEDOUT) return { exitCode: 1, stdout, stderr: `${stderr}timed out after ${o.timeoutMs} ms` };
  if (r.error === UV_ENOBUFS) return { exitCode: 1, stdout, stderr: `${stderr}output above ${o.maxBytes} bytes` };
  if (typeof r.error === "number") {
    const why = r.error === UV_ENOENT ? "not found" : r.error === UV_EACCES ? "permission denied" : `errno ${-r.error}`;
    return { exitCode: 1, stdout, stderr: `${stderr}cannot run ${tool}: ${why}` };
  }
  if (typeof r.status === "number") return { exitCode: r.status, stdout, stderr };
  return { exitCode: 1, stdout, stderr: `${stderr}killed by ${r.signal ?? "a signal"}` };
}

async function viaChildProcess(tool: string, args: readonly string[], o: SpawnOptions): Promise<SpawnResult> {
  // Loaded here, not at the top: loading it is the cost the binding avoids.
  const { spawnSync } = await import("node:child_process");
  const r = spawnSync(tool, [...args], {
    input: o.input,
    encoding: "utf8",
    env: { ...o.env },
    stdio: ["pipe", "pipe", "pipe"],
    shell: false,
    timeout: o.timeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: o.maxBytes,
    windowsHide: true,
  });
  const stdout = typeof r.stdout === "string" ? r.stdout : "";
  const stderr = typeof r.stderr === "string" ? r.stderr : "";
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ETIMEDOUT") return { exitCode: 1, stdout, stderr: `${stderr}timed out after ${o.timeoutMs} ms` };
  if (code === "ENOBUFS") return { exitCode: 1, stdout, stderr: `${stderr}output above ${o.maxBytes} bytes` };
  if (r.error) return { exitCode: 1, stdout, stderr: `${stderr}cannot run ${tool}: ${r.error.message}` };
  if (typeof r.status === "number") return { exitCode: r.status, stdout, stderr };
  return { exitCode: 1, stdout, stderr: `${stderr}killed by ${r.signal ?? "a signal"}` };
}

export async function spawnTool(tool: string, args: readonly string[], o: SpawnOptions): Promise<SpawnResult> {
  const spawn = rawSpawn();
  if (spawn) {
    try {
      const r = viaBinding(spawn, tool, args, o);
      if (r) return r;
    } catch {
      // Another shape of options than this Node's: the public API below.
    }
    raw = null;
  }
  return viaChildProcess(tool, args, o);
}
