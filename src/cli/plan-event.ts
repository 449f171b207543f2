// plan --event "DRIVER OBJECT OP SUBOP": what the hook would do for that event
// now. The same policy (hook/policy.ts decide) and view correction
// (host/view.ts correctView) as the hook; libvirt's XML for the event is
// stood in for by its status files, else the persistent definition.
import { join } from "node:path";
import type { Paths } from "../config/paths.js";
import { HOOK_DRIVERS, type Driver, type HookEvent } from "../libvirt/event.js";
import { parseDomainXml } from "../libvirt/domain.js";
import { parseNetworkHookXml } from "../libvirt/network.js";
import { correctView, type HostView } from "../host/view.js";
import { decide, type Decision, type EventInput } from "../hook/policy.js";
import { interestOf } from "../plan/interest.js";
import type { RuleSet } from "../rules/model.js";
import type { EventSteps } from "../converge/converge.js";
import { readTextIfAny } from "../effects/read-text.js";
import { UsageError } from "./args.js";

export function parseEventText(text: string): HookEvent {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [driver, object, op, subop = "-", extra = "-"] = words;
  if (!driver || !object || !op || words.length > 5) throw new UsageError(`--event wants "DRIVER OBJECT OP SUBOP", e.g. "qemu devstack start begin" (got "${text}")`);
  if (!(HOOK_DRIVERS as readonly string[]).includes(driver)) throw new UsageError(`--event: unknown driver "${driver}" (qemu or network)`);
  return { driver: driver as Driver, object, op, subop, extra };
}

export interface EventPlan {
  readonly event: HookEvent;
  readonly decision: Decision;
  /** Why an event that reconciles turned out to be ignored (relevant() said no), or the policy's reason. */
  readonly ignoredBecause?: string;
  /** Where the event's XML came from: "status file PATH", "definition PATH", or "none". */
  readonly input: string;
  /** The view the hook would reconcile with. */
  readonly view?: HostView;
  /** The event's own steps, as the hook passes them to the one door (converge/converge.ts). */
  readonly steps?: EventSteps;
}

export function planEvent(event: HookEvent, rules: RuleSet, view: HostView, paths: Paths): EventPlan {
  const decision = decide(event, interestOf(rules));
  if (decision.kind === "ignore") return { event, decision, ignoredBecause: decision.why, input: "none" };
  const { input, source } = eventInput(event, decision, view, paths);
  if (decision.relevant && !decision.relevant(input)) {
    const why = input.network?.port ? "no rule names this port's domain" : "which guest the port belongs to is only in libvirt's XML for the event";
    return { event, decision, ignoredBecause: why, input: source };
  }
  const corrected = correctView(view, decision.corrections(input));
  // What handle-event.ts hands the one door for this event.
  const steps: EventSteps = {
    network: event.object,
    reattach: decision.reattach === true && rules.settings.reattach,
    ...(decision.links ? { links: decision.links } : {}),
    ...(input.network?.network ? { fromEvent: input.network.network } : {}),
  };
  return { event, decision, input: source, view: corrected, steps };
}

function eventInput(event: HookEvent, decision: Decision, view: HostView, paths: Paths): { input: EventInput; source: string } {
  if (decision.kind !== "reconcile" || decision.needs === "nothing") return { input: {}, source: "nothing (this event needs no XML)" };
  const safe = /^[^/\0]+$/.test(event.object) && event.object !== "." && event.object !== "..";
  if (decision.needs === "domain-xml") {
    const running = view.domains.get(event.object);
    if (running) return { input: { domain: running }, source: `status file ${join(paths.libvirtRunDir, "qemu", `${event.object}.xml`)}` };
    const path = join(paths.qemuConfigDir, `${event.object}.xml`);
    const xml = safe ? readTextIfAny(path) : undefined;
    if (xml) {
      try {
        return { input: { domain: parseDomainXml(xml) }, source: `definition ${path}` };
      } catch {
        /* fall through */
      }
    }
    return { input: {}, source: "none (no status file or definition)" };
  }
  const active = view.networks.get(event.object);
  if (active) return { input: { network: { network: active } }, source: `status file ${join(paths.libvirtRunDir, "network", `${event.object}.xml`)}` };
  const path = join(paths.qemuConfigDir, "networks", `${event.object}.xml`);
  const xml = safe ? readTextIfAny(path) : undefined;
  if (xml) {
    try {
      return { input: { network: parseNetworkHookXml(xml) }, source: `definition ${path}` };
    } catch {
      /* fall through */
    }
  }
  return { input: {}, source: "none (no status file or definition)" };
}
