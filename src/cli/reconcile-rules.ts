// The one reconcile path of everything that is not a hook: `apply`, `plan`
// (dry run) and the watcher. Rules and host view come from the loaded context;
// a real run holds the same lock as the hooks.
import type { Paths } from "../config/paths.js";
import { reconcile } from "../apply/reconcile.js";
import type { ReconcileResult } from "../apply/result.js";
import { acquireLock } from "../effects/lock.js";
import { runTool } from "../effects/exec.js";
import type { HostView } from "../host/view.js";
import { readHostView } from "../effects/libvirt-state.js";
import type { Context } from "./context.js";
import { convergeHosts, type ConvergeResult } from "./converge-hosts.js";
import { rulesKey, writeCachedInterest } from "../hook/interest-cache.js";
import { interestOf } from "../hook/policy.js";

export type RulesResult = ReconcileResult & { readonly hosts: ConvergeResult };

export async function reconcileRules(ctx: Context, paths: Paths, o: { readonly dryRun: boolean; readonly view?: HostView }): Promise<RulesResult> {
  // Fixed addresses first, outside the firewall lock (cli/converge-hosts.ts):
  // forwards that name their guests then resolve against what the networks hold.
  const hosts = await convergeHosts(paths, ctx.compiled.rules.hosts, ctx.view, runTool, o.dryRun);
  const view = o.view ?? (hosts.changed ? readHostView(paths.libvirtRunDir, undefined, paths.stateDir).view : ctx.view);
  // LockTimeout propagates: the caller says what it means for it.
  const lock = o.dryRun ? undefined : await acquireLock(paths.stateDir);
  try {
    // The hooks' cache of what these rules name (hook/interest-cache.ts), so that
    // the events after an apply (a libvirtd restart's storm of reconnects) decide
    // without compiling rules.d, each on its own.
    if (!o.dryRun) writeCachedInterest(paths.stateDir, rulesKey(ctx.files), { ...interestOf(ctx.compiled.rules), clean: ctx.compiled.diagnostics.length === 0 });
    const result = await reconcile({ rules: ctx.compiled.rules, view, stateDir: paths.stateDir, run: runTool, dryRun: o.dryRun, everyFamily: true, networkConf: paths.networkConf });
    // What the lock had to say (an earlier release's lock name held by someone else) goes with the record problems.
    return { ...result, hosts: lock?.notes.length ? { ...hosts, problems: [...hosts.problems, ...lock.notes] } : hosts };
  } finally {
    await lock?.release();
  }
}
