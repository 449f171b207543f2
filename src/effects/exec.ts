// Runs a tool with an argv array (never a shell) and a fixed, minimal
// environment. Plain node:child_process, not execa: loading execa cost about
// 20 ms of every hook that runs a tool (docs/lab.md section 5), more than the
// firewall transaction itself, and we need none of its features.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

export interface ToolResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export type RunTool = (tool: string, args: readonly string[], input?: string) => Promise<ToolResult>;

const SEARCH = ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"];

/** libvirt hands hooks its daemon's PATH, which may lack sbin: look there too. */
export function toolPath(): string {
  const fromEnv = (process.env.PATH ?? "").split(":").filter(Boolean);
  return [...new Set([...fromEnv, ...SEARCH])].join(":");
}

export function findTool(name: string): string | undefined {
  for (const dir of toolPath().split(":")) {
    const p = `${dir}/${name}`;
    if (existsSync(p)) return p;
  }
  return undefined;
}

export const TOOL_TIMEOUT_MS = 20_000;

/** Output kept per stream; iptables-save of a big host is well below this. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

export const runTool: RunTool = (tool, args, input) =>
  new Promise((resolve) => {
    const child = spawn(tool, [...args], {
      env: { PATH: toolPath(), LC_ALL: "C" },
      // The hook's own stdout is libvirt's: a tool must never write there.
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    const keep = (into: Buffer[]) => (c: Buffer) => {
      outBytes += c.length;
      if (outBytes <= MAX_OUTPUT_BYTES) into.push(c);
    };
    child.stdout.on("data", keep(out));
    child.stderr.on("data", keep(err));
    let why = "";
    const timer = setTimeout(() => {
      why = `timed out after ${TOOL_TIMEOUT_MS} ms`;
      child.kill("SIGKILL");
    }, TOOL_TIMEOUT_MS);
    let settled = false;
    const finish = (exitCode: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ exitCode, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") + why });
    };
    // Not found, not executable: no exit code; report it like a failed run.
    child.once("error", (e) => {
      why = `cannot run ${tool}: ${e.message}`;
      finish(1);
    });
    child.once("close", (code, signal) => {
      if (signal && !why) why = `killed by ${signal}`;
      finish(typeof code === "number" ? code : 1);
    });
    // A tool that exits without reading all of its input closes the pipe: its exit code tells.
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
