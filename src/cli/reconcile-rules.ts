// The one reconcile path of everything that is not a hook: `apply`, `plan`
// (dry run) and the watcher. Rules and host view come from the loaded context;
// a real run holds the same lock as the hooks.
import type { Paths } from "../config/paths.js";
import { reconcile, type ReconcileResult } from "../apply/reconcile.js";
import { acquireLock } from "../effects/lock.js";
import { runTool } from "../effects/exec.js";
import type { HostView } from "../host/view.js";
import { readHostView } from "../effects/libvirt-state.js";
import type { Context } from "./context.js";
import { convergeHosts, type ConvergeResult } from "./converge-hosts.js";

export type RulesResult = ReconcileResult & { readonly hosts: ConvergeResult };

export async function reconcileRules(ctx: Context, paths: Paths, o: { readonly dryRun: boolean; readonly view?: HostView }): Promise<RulesResult> {
  // Fixed addresses first, outside the firewall lock (cli/converge-hosts.ts):
  // forwards that name their guests then resolve against what the networks hold.
  const hosts = await convergeHosts(paths, ctx.compiled.rules.hosts, ctx.view, runTool, o.dryRun);
  const view = o.view ?? (hosts.changed ? readHostView(paths.libvirtRunDir).view : ctx.view);
  // LockTimeout propagates: the caller says what it means for it.
  const lock = o.dryRun ? undefined : await acquireLock(paths.stateDir);
  try {
    const result = await reconcile({ rules: ctx.compiled.rules, view, stateDir: paths.stateDir, run: runTool, dryRun: o.dryRun, everyFamily: true, networkConf: paths.networkConf });
    return { ...result, hosts };
  } finally {
    await lock?.release();
  }
}
