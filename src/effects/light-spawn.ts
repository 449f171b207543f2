// The lightest way Node offers to run one program and collect its output:
// node:child_process spawnSync with an argv array (no shell), its own three
// pipes (the hook's stdout is libvirt's: a tool must never write there),
// input written whole, output read whole, a time limit and an output cap.
//
// Synchronous on purpose: a hook does one thing at a time anyway, and
// spawnSync runs the child from C++ on a private loop, without building
// ChildProcess, Socket or stream objects in JavaScript (spawn() costs several
// of those per child). A tool that does not finish in time is killed with
// SIGKILL and reported like a failed run; so is one that cannot be started.
import { spawnSync } from "node:child_process";

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

export function spawnTool(tool: string, args: readonly string[], o: SpawnOptions): SpawnResult {
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
