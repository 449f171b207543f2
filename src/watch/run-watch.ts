// `virt-hooks watch`: the long-running face. It hears what rebuilds the
// firewall without any libvirt hook firing — firewalld's reloads and restarts
// on D-Bus (the signals libvirt itself follows, believed from firewalld's
// owner only: firewalld-owner.ts), and the changes to the ruleset through
// `nft monitor` that can touch ours (a flush, a deleted table or jump, rules
// inserted above ours; in the tables events.ts names) — and reconciles
// through the same path and lock as `virt-hooks apply`
// (converge/converge.ts, its `watch` row). Idle, it only waits on two pipes: no polling.
// Events are debounced, and a flood rate-limited (trigger.ts); a reconcile
// that changes nothing is silent, one that repairs logs one line.
import { join } from "node:path";
import type { Paths } from "../config/paths.js";
import { writeRecord } from "../effects/state-dir.js";
import { openLogSink, type Level } from "../effects/log.js";
import { startLineSource, type LineSource } from "../effects/line-source.js";
import { summaryLine } from "../hook/outcome.js";
import { loadContext } from "../converge/context.js";
import { convergeAdmin } from "../converge/admin.js";
import { OCCASIONS } from "../converge/occasion.js";
import { hostsNote } from "../converge/host-entries.js";
import { createBackoff } from "../effects/backoff.js";
import { describeCauses } from "./causes.js";
import { busLine, netfilterChange } from "./events.js";
import { believeReloaded, DBUS_MATCHES, GET_NAME_OWNER_ARGS, parseOwnerReply, type Owner } from "./firewalld-owner.js";
import { spawnTool } from "../effects/light-spawn.js";
import { toolPath } from "../effects/exec.js";
import { createTrigger } from "./trigger.js";
import { WATCH_STATE_FILE, type WatchState } from "../effects/watch-record.js";
import { selfIdentity } from "../effects/process-identity.js";
import { watchRulesDir } from "./rules-dir-source.js";
import { createQuietKeeper, iptablesIsNft } from "./quiet-keeper.js";

/**
 * An editor writes a file in several steps (truncate, write, rename): the
 * converge waits until rules.d has been quiet this long (each write moves the
 * timer), then the trigger's own 100 ms: within 1 s of the last write.
 */
const RULES_QUIET_MS = 300;

/** libvirt re-adds its own rules on its own time after firewalld's signal: look again then. */
const FIREWALLD_FOLLOW_UPS_MS = [1000, 3000];
// nft monitor also echoes our own transactions. They are not filtered out:
// an event dropped because it looked like our echo could be a real flush that
// raced it, left unrepaired until the timer. The echo costs one reconcile that
// finds everything in place, makes no transaction and so no further events.

/**
 * After a reconcile, the next waits at least this, or 3 times what the last
 * one took if more: under any flood of events that matter, reconciling takes
 * at most a quarter of the watcher's time (trigger.ts).
 */
const REST_MIN_MS = 500;
const REST_FACTOR = 3;

/** Asks the bus who owns firewalld's name; bounded (the watcher waits on it). */
async function lookUpOwner(): Promise<Owner> {
  const r = await spawnTool("dbus-send", ["--reply-timeout=2000", ...GET_NAME_OWNER_ARGS], { input: "", timeoutMs: 3000, maxBytes: 64 * 1024, env: { PATH: toolPath(), LC_ALL: "C" } });
  return parseOwnerReply(r);
}

export async function runWatch(paths: Paths): Promise<number> {
  const sink = openLogSink(paths);
  const log = (level: Level, line: string) => void sink.write(level, [line]);
  const iptablesHeard = await iptablesIsNft().catch(() => false);
  const state: WatchState = {
    pid: process.pid,
    start: selfIdentity().start,
    startedAt: new Date().toISOString(),
    sources: { netfilter: "starting", firewalld: "starting", rules: "starting" },
    hears: { nftables: true, iptables: iptablesHeard },
  };
  // Through state-dir.ts like every record: a state directory others may write
  // gets nothing (a planted watch.json.tmp symlink was root's write anywhere).
  // Unrecorded, status says it cannot tell; the watcher itself works on.
  const save = () => void writeRecord(paths.stateDir, WATCH_STATE_FILE, JSON.stringify(state) + "\n");

  let lastProblem: string | undefined;
  const retry = createBackoff(1000, 60_000);
  const problem = (line: string) => {
    if (line !== lastProblem) log("error", line);
    lastProblem = line;
  };

  // The word hooks may take instead of reading the kernel (effects/quiet-record.ts).
  const quiet = createQuietKeeper(paths, iptablesHeard);
  const trigger = createTrigger({
    quietMs: 100,
    maxWaitMs: 400,
    timers: { set: (fn, ms) => setTimeout(fn, ms), clear: (h) => clearTimeout(h as NodeJS.Timeout) },
    now: () => Date.now(),
    restMs: (ms) => Math.max(REST_MIN_MS, REST_FACTOR * ms),
    fire: async (why, firstAt) => {
      const t0 = Date.now();
      try {
        const ctx = loadContext(paths, { lint: false });
        if (ctx.ruleErrors) {
          problem("watch: the rule files have errors; nothing applied until they are fixed (virt-hooks check)");
          return;
        }
        const pending = quiet.begin(ctx);
        const result = await convergeAdmin(OCCASIONS.watch, ctx, paths);
        const failed = result.families.some((f) => f.error);
        const changed = result.hosts.changed || result.removedFrom.length > 0 || result.families.some((f) => f.transaction !== undefined && !f.error);
        quiet.end(pending, result, { monitorUp: state.sources.netfilter === "watching", changed });
        const line = summaryLine(changed ? `watch: repaired ${Date.now() - firstAt} ms after ${describeCauses(why)}` : `watch: checked after ${describeCauses(why)}`, result, Date.now() - t0, hostsNote(result.hosts));
        // virsh refusing a fixed address's change: said once, as a failed transaction is.
        for (const p of [...result.hosts.problems, ...result.problems]) problem(`watch: ${p}`);
        if (failed) {
          problem(line.replace(/; \d+ ms$/, ""));
          trigger.poke("retry after a failed reconcile", retry.next());
        } else {
          retry.reset();
          lastProblem = undefined;
        }
        if (changed) {
          log(failed ? "error" : "info", line);
          state.lastRepair = { at: new Date().toISOString(), why: describeCauses(why), ms: Date.now() - t0, outMs: Date.now() - firstAt };
          save();
        }
      } catch (e) {
        problem(`watch: reconcile failed: ${(e as Error).message}`);
        trigger.poke("retry after a failed reconcile", retry.next());
      }
    },
  });

  const sourceState = (name: "netfilter" | "firewalld", other: "netfilter" | "firewalld", label: string) => ({
    onUp: () => {
      state.sources[name] = "watching";
      save();
      // It may have missed changes while it was down.
      quiet.heard();
      trigger.poke(`${label} (re)connected`);
    },
    onDown: (why: string) => {
      quiet.heard();
      state.sources[name] = `not watching: ${why}`;
      save();
      log("warning", `watch: not watching ${label} (${why}); ${state.sources[other].startsWith("not watching") ? "retrying" : `watching ${other} only`}, and virt-hooks-apply.timer still re-checks every minute`);
    },
  });

  // firewalld's unique name on the bus: asked when the monitor connects and
  // at each change of owner (firewalld-owner.ts). A Reloaded the new owner
  // sends before the answer is in is not lost: the change of owner itself
  // reconciles, with the same follow-ups.
  let owner: Owner = { kind: "unknown", why: "not asked yet" };
  let asking = false;
  let askAgain = false;
  const followOwner = async (): Promise<void> => {
    if (asking) { askAgain = true; return; }
    asking = true;
    try {
      do {
        askAgain = false;
        const was = owner;
        owner = await lookUpOwner();
        if (owner.kind === "unknown" && (was.kind !== "unknown" || was.why !== owner.why)) log("warning", `watch: cannot ask the bus who owns firewalld's name (${owner.why}); believing the bus's own check of the sender only`);
      } while (askAgain);
    } finally {
      asking = false;
    }
  };

  const sources: LineSource[] = [
    startLineSource({
      tool: "nft",
      args: ["monitor"],
      onLine: (l) => {
        const c = netfilterChange(l);
        if (!c) return;
        quiet.heard();
        trigger.poke(c.why);
        // Its tables rebuilt: firewalld reloaded, and libvirt follows on its own time.
        if (c.role === "firewalld") for (const ms of FIREWALLD_FOLLOW_UPS_MS) trigger.poke(c.why, ms);
      },
      ...sourceState("netfilter", "firewalld", "netfilter (nft monitor)"),
    }),
    startLineSource({
      tool: "dbus-monitor",
      args: ["--system", "--profile", ...DBUS_MATCHES],
      onLine: (l) => {
        const e = busLine(l);
        if (!e) return;
        if (e.kind === "connected") return void followOwner();
        if (e.kind === "reloaded" && !believeReloaded(owner, e.sender)) return;
        const c = e.kind === "reloaded" ? "firewalld reloaded" : "firewalld (re)started or stopped";
        if (e.kind === "owner-changed") void followOwner();
        quiet.heard();
        trigger.poke(c);
        for (const ms of FIREWALLD_FOLLOW_UPS_MS) trigger.poke(c, ms);
      },
      ...sourceState("firewalld", "netfilter", "firewalld (D-Bus)"),
    }),
  ];
  // rules.d (rules-dir-source.ts): a converge RULES_QUIET_MS after the last write to a rule file.
  const rulesDir = watchRulesDir(paths.rulesDir, {
    onChange: (why) => {
      quiet.heard();
      trigger.poke(why, RULES_QUIET_MS);
    },
    onUp: () => {
      state.sources.rules = "watching";
      save();
    },
    onDown: (why) => {
      quiet.heard();
      state.sources.rules = `not watching: ${why}`;
      save();
      log("warning", `watch: not watching rules.d (${why}); retrying, and virt-hooks-apply.timer still applies every minute`);
    },
  });
  save();
  log("info", `watch: started (pid ${process.pid})`);

  return new Promise((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      quiet.stop();
      for (const s of sources) s.stop();
      rulesDir.stop();
      trigger.stop();
      log("info", `watch: stopped (${sig})`);
      // Let the log line and the children's SIGTERM go out.
      setTimeout(() => resolve(0), 100);
    };
    // on, not once: execa's cleanup (signal-exit) re-raises a signal that has
    // no other listener left, which would kill us before the children stop.
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}
