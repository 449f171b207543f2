// The one call hook mode makes after its own work (hook/run-hook.ts): run the
// event's per-guest scripts, if it has any. Loaded with every hook call, so it
// imports nothing that costs: with no <hooks>/<driver>.d/<object>/ directory
// (nearly every event) the whole cost is one failed stat. The runner
// (effects/guest-scripts-run.ts: spawn, timers, the planner) is loaded by a dynamic
// import() only when that directory exists.
import { statSync } from "node:fs";
import { formatEvent, hookEventFromArgv, type Driver } from "../libvirt/event.js";
import type { Paths } from "../config/paths.js";
import { openLogSink } from "../effects/log.js";
import { objectDir } from "../guest-scripts/plan.js";
import type { ScriptsIo } from "../guest-scripts/io.js";

export type { ScriptsIo } from "../guest-scripts/io.js";

/**
 * Runs after our firewall work (`code` is its exit code) and returns the
 * hook's exit code: `code` itself when there are no scripts, when it already
 * refuses the event (the scripts are then not run), or when every script
 * succeeded; 1 when a script fails where libvirt lets a hook refuse.
 */
export async function runEventScripts(driver: Driver, args: readonly string[], paths: Paths, io: ScriptsIo, code: number, xml: Promise<string>): Promise<number> {
  const event = hookEventFromArgv(driver, args);
  const dir = event && objectDir(paths.hooksDir, event);
  if (!event || !dir) return code;
  try {
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return code;
  } catch {
    // EACCES, ENOTDIR, ELOOP: the runner stats it again and reports why.
  }
  try {
    const { dispatchScripts } = await import("../effects/guest-scripts-run.js");
    return await dispatchScripts(event, paths, io, code, xml);
  } catch (e) {
    // Our own bug: never a reason to refuse the event.
    await openLogSink(paths).write("error", [`${formatEvent(event)}: internal error running per-guest scripts: ${(e as Error).stack ?? String(e)}`]);
    return code;
  }
}
