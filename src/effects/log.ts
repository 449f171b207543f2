// Where log lines go: the journal (its stream socket, so `journalctl -t
// virt-hooks` finds them, with no child process), else syslog through
// logger(1), else stderr. Never stdout: in hook mode libvirt reads it.
// node:child_process is loaded only by the syslog sink, and the journal's
// socket is written without node:net (unix-stream-write.ts): an ignored event
// pays for neither (measured in bench/).
import { statSync, writeSync } from "node:fs";
import { writeToUnixStream } from "./unix-stream-write.js";
import { escapeLine, escapeText } from "../text/escape.js";

export type Level = "info" | "warning" | "error";

export interface LogSink {
  /** Where lines go, for `--help`/diagnostics. */
  readonly kind: "journal" | "syslog" | "stderr";
  write(level: Level, lines: readonly string[]): Promise<void>;
}

const PRIORITY: Record<Level, number> = { error: 3, warning: 4, info: 6 };

/**
 * One journal or syslog record: our own continuation lines (a hint) join it
 * with a space, as they always did, and nothing in it can start another
 * record, set a priority or reach a reader's terminal (text/escape.ts).
 */
const record = (line: string) => escapeLine(line.replace(/\n/g, " "));
export const LOG_TAG = "virt-hooks";

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

const stderrSink: LogSink = {
  kind: "stderr",
  async write(level, lines) {
    const prefix = level === "info" ? "" : `${level}: `;
    // stderr keeps our line layout (libvirt shows a hook's stderr as it is); the rest is escaped.
    const text = lines.map((l) => `${LOG_TAG}: ${prefix}${escapeText(l)}\n`).join("");
    // A plain write(2) to fd 2: process.stderr would build a stream (and load
    // node:net for a pipe) to write one line. The stream only when fd 2 is
    // non-blocking or the write comes up short.
    try {
      const buf = Buffer.from(text);
      const n = writeSync(2, buf);
      if (n < buf.length) process.stderr.write(buf.subarray(n));
    } catch {
      process.stderr.write(text);
    }
  },
};

function journalSink(socketPath: string): LogSink {
  return {
    kind: "journal",
    write: async (level, lines) => {
      // systemd's stream protocol: identifier, unit id, priority,
      // level_prefix, forward to syslog/kmsg/console; then the lines.
      const header = `${LOG_TAG}\n\n${PRIORITY[level]}\n1\n0\n0\n0\n`;
      const body = lines.map((l) => `<${PRIORITY[level]}>${record(l)}\n`).join("");
      if (!(await writeToUnixStream(socketPath, header + body))) await stderrSink.write(level, lines);
    },
  };
}

/** A syslog daemon that does not take a line within this is not waited for: the line goes to stderr. */
export const SYSLOG_TIMEOUT_MS = 2_000;

function syslogSink(socketPath: string): LogSink {
  return {
    kind: "syslog",
    write: async (level, lines) => {
      const { spawn } = await import("node:child_process");
      return new Promise((resolve) => {
        let done = false;
        const finish = (fallback: boolean) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (fallback) void stderrSink.write(level, lines).then(resolve);
          else resolve();
        };
        // Own stdio, not libvirt's pipes: nothing can hold the hook's output open.
        // -u: the very socket we found (the same one /dev/log is on a real host).
        const child = spawn("logger", ["-u", socketPath, "-t", LOG_TAG, "-p", `daemon.${level === "warning" ? "warning" : level === "error" ? "err" : "info"}`], {
          stdio: ["pipe", "ignore", "ignore"],
          env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", LC_ALL: "C" },
        });
        // A stalled syslog daemon (its queue full) blocks logger's send forever; libvirt would wait with us.
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          finish(true);
        }, SYSLOG_TIMEOUT_MS);
        child.once("error", () => finish(true));
        child.once("close", (code) => finish(code !== 0));
        child.stdin.on("error", () => {});
        child.stdin.end(lines.map(record).join("\n") + "\n");
      });
    },
  };
}

export function openLogSink(paths: { journalSocket: string; syslogSocket: string }): LogSink {
  if (isSocket(paths.journalSocket)) return journalSink(paths.journalSocket);
  if (isSocket(paths.syslogSocket)) return syslogSink(paths.syslogSocket);
  return stderrSink;
}
