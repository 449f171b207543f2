// Runs a tool with an argv array (never a shell) and a fixed, minimal
// environment, through execa (the project's process layer: argv arrays, timeouts,
// no shell). It is imported lazily: events we ignore never pay for it; one that
// runs a tool pays about 20 ms to load it (bench/RESULTS.md).
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

export const runTool: RunTool = async (tool, args, input) => {
  const { execa } = await import("execa");
  const result = await execa(tool, [...args], {
    input: input ?? "",
    reject: false,
    timeout: TOOL_TIMEOUT_MS,
    maxBuffer: MAX_OUTPUT_BYTES,
    env: { PATH: toolPath(), LC_ALL: "C" },
    extendEnv: false,
    stripFinalNewline: false,
    // The hook's own stdout is libvirt's: a tool must never write there.
    stdout: "pipe",
    stderr: "pipe",
  });
  const exitCode = typeof result.exitCode === "number" ? result.exitCode : 1;
  const why = result.timedOut ? `timed out after ${TOOL_TIMEOUT_MS} ms` : result.exitCode === undefined ? `cannot run ${tool}: ${result.message}` : "";
  return { exitCode, stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? "") + why };
};
