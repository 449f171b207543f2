// Runs an event's per-guest scripts (planned by scripts/plan.ts): reads the
// directory, runs each script with libvirt's four arguments and the XML on
// stdin, one at a time, logs one line per script, chains migrate/restore
// output, and says whether the event is refused.
//
// libvirt waits for its hook to exit AND for EOF on the hook's stdout and
// stderr, with no time limit (libvirt-facts.md). So a script never gets our
// stdout or stderr: it gets pipes of its own, read by us. It runs in its own
// process group (session), which is killed at its time limit. Once it has
// exited, we wait only briefly for EOF: a background job it left running that
// still holds the pipes is not waited for (its later writes fail with EPIPE).
import { spawn } from "node:child_process";
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, statSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import type { Paths } from "../config/paths.js";
import { formatEvent, type HookEvent } from "../libvirt/event.js";
import { distrust, trustPolicy, type TrustPolicy } from "../trust/ownership.js";
import { trustWholePath } from "../trust/whole-path.js";
import { planScripts, scriptPaths, type Probed, type ScriptEntry, type ScriptListing, type ScriptPlan, type StatLike } from "../guest-scripts/plan.js";
import { afterScript, inputFor, scriptLine, startChain, succeeded, vetoReason, type ScriptResult } from "../guest-scripts/outcome.js";
import type { ScriptsIo } from "../guest-scripts/io.js";
import { openLogSink, type LogSink } from "./log.js";

/** Each script's time limit. A fixed default: libvirt itself has none and blocks the guest's operation meanwhile. */
export const SCRIPT_TIMEOUT_MS = 30_000;
/** After the time limit's SIGTERM, the process group gets SIGKILL this much later. */
export const KILL_GRACE_MS = 1_000;
/** After a script exits, how long we still wait for EOF on its pipes. */
export const EOF_GRACE_MS = 200;
/** stdout kept from a migrate/restore script (the replacement XML); more is a failure. */
export const MAX_FILTER_OUTPUT = 8 * 1024 * 1024;
/** Output kept from other scripts, per stream: enough for the log line and the refusal reason. */
export const MAX_LOGGED_OUTPUT = 64 * 1024;

/**
 * The time limit: SCRIPT_TIMEOUT_MS, or VIRT_HOOKS_SCRIPT_TIMEOUT seconds.
 * The variable is for tests and manual runs: libvirt clears its hooks'
 * environment, so under libvirt the default always applies.
 */
export function scriptTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const s = Number(env.VIRT_HOOKS_SCRIPT_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? Math.round(s * 1000) : SCRIPT_TIMEOUT_MS;
}

export interface ExecOptions {
  readonly timeoutMs: number;
  /** Bytes of stdout kept; more is an error when `strict`. */
  readonly maxStdout: number;
  readonly strict: boolean;
  readonly now: () => number;
}

export type ExecScript = (path: string, argv: readonly string[], input: string, o: ExecOptions) => Promise<ScriptResult>;

export interface RunDeps {
  readonly exec: ExecScript;
  readonly now: () => number;
  readonly log: LogSink;
  readonly io: ScriptsIo;
  readonly timeoutMs: number;
}

/** The hook's entry (guest-scripts/hook.ts loads this module only when the object's directory exists). */
export async function dispatchScripts(event: HookEvent, paths: Paths, io: ScriptsIo, code: number, xml: Promise<string>): Promise<number> {
  const log = openLogSink(paths);
  const label = formatEvent(event);
  const plan = planScripts(event, readListing(paths.hooksDir, event), trustPolicy());
  if (plan.scripts.length === 0 && plan.refused.length === 0 && plan.skipped.length === 0) return code;
  if (code !== 0) {
    await log.write("info", [`${label}: ${plan.scripts.length} script(s) not run: the event is refused already`]);
    return code;
  }
  const now = () => Math.round(performance.now());
  return runScripts(label, plan, await xml, { exec: spawnScript, now, log, io, timeoutMs: scriptTimeoutMs() });
}

/**
 * The scripts one after another. Returns the hook's exit code: 1 when a
 * script failed (or was refused) and the event is one libvirt lets a hook
 * refuse; then the later scripts are not run, as with the hook helper's
 * `set -e`. Elsewhere a failure is logged and the next script runs.
 */
export async function runScripts(label: string, plan: ScriptPlan, xml: string, d: RunDeps): Promise<number> {
  const veto = (reason: string) => {
    d.io.stderr(reason);
    return 1;
  };
  if (plan.skipped.length) await d.log.write("info", plan.skipped.map((s) => `${label}: ${s}`));
  if (plan.refused.length) {
    // A script we refuse to run is one that should have run: where libvirt
    // lets us, say so by refusing the event (the reason names the fix).
    await d.log.write(plan.vetoes ? "error" : "warning", plan.refused.map((s) => `${label}: ${s}${plan.vetoes ? "" : " (not run)"}`));
    if (plan.vetoes) {
      await d.log.write("error", [`${label}: refused; no script run until the refusal above is fixed`]);
      return veto(`virt-hooks: refusing ${label}:\n${plan.refused.join("\n")}\n`);
    }
  }
  let chain = startChain(xml);
  for (const [i, path] of plan.scripts.entries()) {
    const r = await d.exec(path, plan.argv, inputFor(chain), {
      timeoutMs: d.timeoutMs,
      maxStdout: plan.filter ? MAX_FILTER_OUTPUT : MAX_LOGGED_OUTPUT,
      strict: plan.filter,
      now: d.now,
    });
    let line = scriptLine(label, path, r, { filter: plan.filter, timeoutMs: d.timeoutMs });
    if (succeeded(r)) {
      await d.log.write("info", [line]);
      chain = afterScript(chain, r, plan.filter);
      continue;
    }
    if (!plan.vetoes) {
      await d.log.write("warning", [`${line}; not refusable (libvirt ignores or would kill the guest): going on`]);
      continue;
    }
    const rest = plan.scripts.length - i - 1;
    line += `; ${label} refused${rest ? `, ${rest} later script(s) not run` : ""}`;
    await d.log.write("error", [line]);
    return veto(vetoReason(label, path, r, d.timeoutMs));
  }
  if (chain.replacement !== undefined) {
    if (d.io.stdout) d.io.stdout(chain.replacement);
    else await d.log.write("warning", [`${label}: a script's replacement XML was dropped: this call has no stdout for libvirt`]);
  }
  return 0;
}

// --- reading the directory -------------------------------------------------

const MISSING = new Set(["ENOENT", "ENOTDIR"]);

function statLike(st: Stats): StatLike {
  return { kind: st.isFile() ? "file" : st.isDirectory() ? "directory" : "other", mode: st.mode, uid: st.uid };
}

function probe(path: string): Probed {
  try {
    return { path, stat: statLike(statSync(path)) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    return MISSING.has(code) ? { path } : { path, error: `cannot stat: ${(e as Error).message}` };
  }
}

function entry(dir: string, name: string): ScriptEntry {
  const path = `${dir}/${name}`;
  const p = probe(path);
  const base: ScriptEntry = { name, path, ...(p.stat ? { stat: p.stat } : {}), ...(p.error ? { error: p.error } : {}) };
  if (!p.stat || p.stat.kind !== "file") return base;
  try {
    // A symbolic link (say, one script shared by several guests): every
    // directory from / to its target must be root's alone too, links on the
    // way included (trust/whole-path.ts), not just the target's own directory.
    if (!lstatSync(path).isSymbolicLink()) return base;
    const where = trustWholePath(path, trustPolicy());
    if ("problem" in where) return { ...base, error: `its target is not root's alone: ${where.problem}` };
    return { ...base, targetDir: probe(dirname(where.real)) };
  } catch (e) {
    return { ...base, error: `cannot resolve: ${(e as Error).message}` };
  }
}

export function readListing(hooksDir: string, event: HookEvent): ScriptListing {
  const where = scriptPaths(hooksDir, event);
  if (!where) return { dirs: [], leaf: { path: hooksDir } };
  // The directories the planner sees start below the hooks directory: those
  // above it (/, /etc, /etc/libvirt) and it are checked here, whole.
  const above = trustWholePath(hooksDir, trustPolicy());
  if ("problem" in above) return { dirs: [{ path: hooksDir, error: above.problem }], leaf: { path: where.leaf } };
  const dirs: Probed[] = [];
  for (const d of where.dirs) {
    const p = probe(d);
    dirs.push(p);
    if (!p.stat) return { dirs, leaf: { path: where.leaf } };
  }
  const leaf = probe(where.leaf);
  if (leaf.stat?.kind !== "directory") return { dirs, leaf };
  try {
    return { dirs, leaf, entries: readdirSync(where.leaf).map((n) => entry(where.leaf, n)) };
  } catch (e) {
    return { dirs, leaf: { path: where.leaf, error: `cannot read: ${(e as Error).message}` } };
  }
}

// --- running one script ----------------------------------------------------

/**
 * Runs one script: argv array, no shell; the environment libvirt gave us;
 * stdin the XML; stdout and stderr pipes of its own; a new session, so its
 * whole process group can be killed at the time limit (SIGTERM, then SIGKILL
 * KILL_GRACE_MS later).
 */
export const spawnScript: ExecScript = async (path, argv, input, o) => {
  // What runs is the file that was checked: opened once, its descriptor's stat
  // checked again, and executed through that descriptor (/proc/self/fd of ours,
  // as fexecve does), never through a path resolved a second time.
  const opened = openChecked(path);
  if (typeof opened === "string") return { exitCode: null, signal: null, timedOut: false, error: opened, stdout: "", stderr: "", ms: 0, heldOpen: false };
  try {
    return await spawnOpened(`/proc/${process.pid}/fd/${opened}`, path, argv, input, o);
  } finally {
    closeSync(opened);
  }
};

/** The script's descriptor, or why it must not run (it changed since it was planned). */
function openChecked(path: string): number | string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    return `cannot open: ${(e as Error).message}`;
  }
  const st = fstatSync(fd);
  const why = !st.isFile() ? "not a regular file any more" : (st.mode & 0o111) === 0 ? "not executable any more" : distrust(path, st, trustPolicy());
  if (!why) return fd;
  closeSync(fd);
  return `refused at run time: ${why}`;
}

const spawnOpened = (file: string, path: string, argv: readonly string[], input: string, o: ExecOptions): Promise<ScriptResult> =>
  new Promise((resolve) => {
    const started = o.now();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let error: string | undefined;
    let timedOut = false;
    let killed = false;
    let heldOpen = false;
    let exited: { code: number | null; signal: string | null } | undefined;
    let closed = false;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];

    // $0 of a script is the descriptor's path: VIRT_HOOKS_SCRIPT says where it lives.
    const child = spawn(file, [...argv], { argv0: path, stdio: ["pipe", "pipe", "pipe"], detached: true, env: { ...process.env, VIRT_HOOKS_SCRIPT: path } });
    const group = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        /* the group is gone already */
      }
    };
    const finish = () => {
      if (settled) return;
      if (!exited) return;
      if (!closed && !heldOpen) return;
      if (timedOut && !killed) return;
      settled = true;
      timers.forEach(clearTimeout);
      resolve({
        exitCode: exited.code,
        signal: exited.signal,
        timedOut,
        ...(error !== undefined ? { error } : {}),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ms: o.now() - started,
        heldOpen,
      });
    };

    child.stdout.on("data", (c: Buffer) => {
      outBytes += c.length;
      if (outBytes <= o.maxStdout) out.push(c);
      else if (o.strict && error === undefined) error = `printed more than ${o.maxStdout} bytes on stdout`;
    });
    child.stderr.on("data", (c: Buffer) => {
      errBytes += c.length;
      if (errBytes <= MAX_LOGGED_OUTPUT) err.push(c);
    });
    child.once("error", (e) => {
      // Could not be started (ENOENT, EACCES, ENOEXEC): there is no process to wait for.
      if (child.pid === undefined) {
        error = `cannot run: ${e.message}`;
        exited = { code: null, signal: null };
        closed = true;
        finish();
      }
    });
    timers.push(
      setTimeout(() => {
        timedOut = true;
        group("SIGTERM");
        timers.push(
          setTimeout(() => {
            group("SIGKILL");
            killed = true;
            finish();
          }, KILL_GRACE_MS),
        );
      }, o.timeoutMs),
    );
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      // Its own exit is all we wait for; a job it left behind holding the pipes is not.
      timers.push(
        setTimeout(() => {
          if (closed) return;
          heldOpen = true;
          child.stdout.destroy();
          child.stderr.destroy();
          finish();
        }, EOF_GRACE_MS),
      );
      finish();
    });
    child.once("close", () => {
      closed = true;
      finish();
    });
    // A script that does not read its input closes the pipe: not an error.
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
