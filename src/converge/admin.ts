// The admin faces' way into the one door (converge.ts): `apply`, `plan`,
// `plan --event`, the units (which run apply) and the watcher. What they pass
// that a hook never may: the `host` statements' step, which calls virsh
// (converge/host-entries.ts), and a fresh look at libvirt's status files after
// it changed what they hold.
import type { Paths } from "../config/paths.js";
import { runTool } from "../effects/exec.js";
import { readHostView } from "../effects/libvirt-state.js";
import type { HostView } from "../host/view.js";
import type { Context } from "./context.js";
import { converge, type Converged, type ConvergeIo, type EventSteps } from "./converge.js";
import { convergeHosts } from "./host-entries.js";
import type { Occasion } from "./occasion.js";

export function adminIo(paths: Paths, ctx: Context): ConvergeIo {
  return {
    run: runTool,
    hostEntries: (view, dryRun) => convergeHosts(paths, ctx.compiled.rules.hosts, view, runTool, dryRun),
    rereadView: () => readHostView(paths.libvirtRunDir, undefined, paths.stateDir).view,
  };
}

/** One run for an admin face: its occasion, the context it loaded, and (plan --event) the event's view and steps. */
export function convergeAdmin(occasion: Occasion, ctx: Context, paths: Paths, o: { readonly view?: HostView; readonly event?: EventSteps } = {}): Promise<Converged> {
  return converge(
    occasion,
    { rules: ctx.compiled.rules, view: o.view ?? ctx.view, paths, files: ctx.files, clean: ctx.compiled.diagnostics.length === 0, ...(o.event ? { event: o.event } : {}) },
    adminIo(paths, ctx),
  );
}
