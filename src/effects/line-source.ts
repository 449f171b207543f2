// A long-running tool whose stdout is a stream of events (`nft monitor`,
// `dbus-monitor`), through execa like every tool: argv array, no shell, the
// same minimal environment. Each line goes to `onLine`. When the child ends
// (firewalld or D-Bus gone, nft killed) it is restarted after a back-off that
// doubles up to a minute and resets once a child has lived a while, and each
// distinct reason is reported once: never a tight loop, never a log flood.
import { createInterface } from "node:readline";
import { findTool, toolPath } from "./exec.js";
import { createBackoff } from "./backoff.js";

export interface LineSource {
  stop(): void;
}

export interface LineSourceOptions {
  readonly tool: string;
  readonly args: readonly string[];
  readonly onLine: (line: string) => void;
  /** A child started (first time, or again after a failure). */
  readonly onUp?: () => void;
  /** Why it is not running; called once per distinct reason. */
  readonly onDown: (why: string) => void;
  /** Lived this long: the next failure starts the back-off afresh. */
  readonly healthyAfterMs?: number;
}

export function startLineSource(o: LineSourceOptions): LineSource {
  const backoff = createBackoff(1000, 60_000);
  let stopped = false;
  let child: { kill: (sig?: NodeJS.Signals) => boolean } | undefined;
  let retry: NodeJS.Timeout | undefined;
  let lastWhy: string | undefined;
  const down = (why: string) => {
    if (why !== lastWhy) o.onDown(why);
    lastWhy = why;
  };
  const start = async () => {
    if (stopped) return;
    const path = findTool(o.tool);
    if (!path) {
      down(`${o.tool} is not installed`);
      retry = setTimeout(start, backoff.next());
      return;
    }
    const { execa } = await import("execa");
    const startedAt = Date.now();
    const sub = execa(path, [...o.args], {
      reject: false,
      buffer: false,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: toolPath(), LC_ALL: "C" },
      extendEnv: false,
    });
    child = sub;
    let stderr = "";
    sub.stderr?.on("data", (d: Buffer) => { if (stderr.length < 2000) stderr += d.toString(); });
    if (sub.stdout) {
      const rl = createInterface({ input: sub.stdout });
      rl.on("line", (line) => o.onLine(line));
    }
    // Up once it has run a second: a quiet monitor prints nothing until
    // something changes, and one that cannot connect exits at once (which
    // must not count as up, nor reset the once-per-reason report).
    const upTimer = setTimeout(() => {
      lastWhy = undefined;
      o.onUp?.();
    }, 1000);
    const r = await sub;
    clearTimeout(upTimer);
    child = undefined;
    if (stopped) return;
    if (Date.now() - startedAt >= (o.healthyAfterMs ?? 10_000)) backoff.reset();
    const detail = (stderr.trim().split("\n")[0] ?? "") || (r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode ?? "?"}`);
    down(`${o.tool} ended: ${detail}`);
    retry = setTimeout(start, backoff.next());
  };
  void start();
  return {
    stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      child?.kill("SIGTERM");
    },
  };
}
