// Timing whole processes the way libvirt runs a hook: spawn, write stdin,
// wait until the process exited AND its stdout/stderr reached EOF (libvirt
// waits for both). Floors are timed by the very same code, so the ratios
// cancel this harness's own spawn overhead.
import { spawn } from "node:child_process";

let cputime;
/** Also measure CPU time (user+sys of the process and the children it waited for) through this helper (bench/cputime.c). */
export function useCputime(path) {
  cputime = path;
}

/**
 * Runs argv; resolves with wall milliseconds, CPU milliseconds and peak RSS
 * in MiB (when useCputime was called and `cpu` is set), exit code and output. Never rejects on exit codes.
 */
export function timed(argv, { env, input = "", cwd = "/", cpu = false } = {}) {
  return new Promise((resolve, reject) => {
    const wrapped = cpu && cputime ? [cputime, ...argv] : argv;
    const t0 = process.hrtime.bigint();
    const child = spawn(wrapped[0], wrapped.slice(1), { env, cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c) => (stderr += c));
    // A process that exits without reading its stdin (/bin/true) closes the pipe under us.
    child.stdin.on("error", () => {});
    child.stdin.end(input);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const m = wrapped !== argv ? /\ncputime: (\d+) (\d+)(?: (\d+))?\n$/.exec(stderr) : null;
      if (m) stderr = stderr.slice(0, m.index);
      resolve({ ms, cpuMs: m ? Number(m[1]) / 1000 : NaN, rssMiB: m?.[3] ? Number(m[3]) / 1024 : NaN, code, signal, stdout, stderr });
    });
  });
}

/** Runs argv and throws with its stderr unless it exits 0 (set-up steps, not timed). */
export async function must(argv, opts = {}) {
  const r = await timed(argv, { env: { PATH: SYSTEM_PATH, LC_ALL: "C" }, ...opts });
  if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r;
}

/** The PATH libvirtd hands its hooks on Debian. */
export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A list of samples with the figures the report prints. */
export class Samples {
  constructor() {
    this.values = [];
  }
  add(ms) {
    this.values.push(ms);
  }
  get median() {
    return median(this.values);
  }
  get n() {
    return this.values.length;
  }
}
