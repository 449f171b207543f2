// The one reconcile path of everything that is not a hook: `apply`, `plan`
// (dry run) and the watcher. Rules and host view come from the loaded context;
// a real run holds the same lock as the hooks.
import type { Paths } from "../config/paths.js";
import { reconcile, type ReconcileResult } from "../apply/reconcile.js";
import { acquireLock } from "../effects/lock.js";
import { runTool } from "../effects/exec.js";
import type { HostView } from "../host/view.js";
import type { Context } from "./context.js";

export async function reconcileRules(ctx: Context, paths: Paths, o: { readonly dryRun: boolean; readonly view?: HostView }): Promise<ReconcileResult> {
  // LockTimeout propagates: the caller says what it means for it.
  const lock = o.dryRun ? undefined : await acquireLock(paths.stateDir);
  try {
    return await reconcile({ rules: ctx.compiled.rules, view: o.view ?? ctx.view, stateDir: paths.stateDir, run: runTool, dryRun: o.dryRun, everyFamily: true, networkConf: paths.networkConf });
  } finally {
    await lock?.release();
  }
}
