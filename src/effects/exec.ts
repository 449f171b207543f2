// Runs a tool with an argv array (never a shell) and a fixed, minimal
// environment. The firewall tools a hook runs (iptables-save/-restore, nft,
// ip) take their input whole and give their output whole, so they go through
// node:child_process's spawnSync directly (light-spawn.ts): no streams, no
// event-loop plumbing, and no process-layer module graph. Loading execa made
// Node build process.stdin/stdout/stderr as streams on every event that acts
// (its module initialisation lists them), about 15 ms of a 100 ms hook here
// (--cpu-prof; issue 15). execa stays the process layer where streams matter
// (effects/line-source.ts: long-lived monitors read line by line).
import { existsSync } from "node:fs";
import { spawnTool } from "./light-spawn.js";

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

export const runTool: RunTool = async (tool, args, input) =>
  spawnTool(tool, args, { input: input ?? "", timeoutMs: TOOL_TIMEOUT_MS, maxBytes: MAX_OUTPUT_BYTES, env: { PATH: toolPath(), LC_ALL: "C" } });
