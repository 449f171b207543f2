// The part of a hook that acts: read the event's XML, the host, reconcile,
// report, maybe refuse. Loaded by run-hook.ts only once the policy said
// "reconcile": this module pulls in the XML parser and the firewall code,
// which events we ignore must never pay for.
import type { HookEvent } from "../libvirt/event.js";
import { parseDomainXml } from "../libvirt/domain.js";
import { parseNetworkHookXml } from "../libvirt/network.js";
import { correctView, type HostView } from "../host/view.js";
import { planReattach } from "../plan/reattach.js";
import { applyReattach, readLinks, readMtu } from "../effects/links.js";
import { linksForEvent } from "../effects/links-apply.js";
import type { Compiled } from "../rules/compile.js";
import { hasErrors, type Diagnostic } from "../rules/diagnostic.js";
import type { RuleFiles } from "../effects/rules-files.js";
import { readHostView } from "../effects/libvirt-state.js";
import { acquireLock } from "../effects/lock.js";
import type { LogSink } from "../effects/log.js";
import { runTool } from "../effects/exec.js";
import type { Paths } from "../config/paths.js";
import { reconcile, type ReconcileResult } from "../apply/reconcile.js";
import type { Decision, EventInput, RuleInterest } from "./policy.js";
import { eventLabel, problemLines, summaryLine } from "./outcome.js";

export interface EventContext {
  readonly event: HookEvent;
  readonly decision: Extract<Decision, { kind: "reconcile" }>;
  readonly interest: RuleInterest;
  readonly xml: string;
  readonly files: RuleFiles;
  readonly compiled: Compiled;
  readonly paths: Paths;
  readonly log: LogSink;
  /** Milliseconds since the hook started. */
  readonly elapsed: () => number;
  /** CLOCK_MONOTONIC ns when the hook started (see reconcile's coalescing). */
  readonly startedAt: bigint;
}

/** Reconciles for one event; returns the problems that justify refusing it (empty: none). */
export async function handleEvent(c: EventContext): Promise<string[]> {
  const { event, decision, compiled } = c;
  const input = parseEventXml(event, decision.needs, c.xml);
  if (decision.relevant && !decision.relevant(input.input)) {
    await c.log.write("info", [summaryLine(eventLabel(event), undefined, c.elapsed(), "ignored (no rule names this port's domain)")]);
    return [];
  }
  const lock = await acquireLock(c.paths.stateDir);
  let result: ReconcileResult;
  const notes: string[] = [];
  try {
    const reattach = decision.reattach === true && compiled.rules.settings.reattach;
    // Re-attach looks at every running guest; otherwise only the ones rules name.
    const read = readHostView(c.paths.libvirtRunDir, reattach ? undefined : c.interest.domains);
    const view = correctView(read.view, decision.corrections(input.input));
    if (reattach) notes.push(...(await reattachGuests(event.object, view, input.problems)));
    if (decision.links) notes.push(...(await linksForEvent(decision.links, event.object, input.input.network?.network, view.networks, compiled.rules, c.paths.stateDir, runTool, input.problems)));
    result = await reconcile({ rules: compiled.rules, view, stateDir: c.paths.stateDir, run: runTool, dryRun: false, everyFamily: false, networkConf: c.paths.networkConf, startedAt: c.startedAt });
    if (result.coalesced) notes.push("verified by a hook that started after this one");
    input.problems.push(...read.problems);
  } finally {
    await lock.release();
  }
  const diagnostics: Diagnostic[] = [...compiled.diagnostics];
  const problems = [...c.files.problems, ...input.problems, ...problemLines(diagnostics, result)];
  await report(c.log, event, result, c.elapsed(), problems, notes);
  return concernsEvent(event, result, diagnostics);
}

function parseEventXml(event: HookEvent, needs: "domain-xml" | "network-xml" | "nothing", xml: string): { input: EventInput; problems: string[] } {
  const problems: string[] = [];
  try {
    if (needs === "domain-xml") return { input: { domain: parseDomainXml(xml) }, problems };
    if (needs === "network-xml") return { input: { network: parseNetworkHookXml(xml) }, problems };
  } catch (e) {
    problems.push(`the XML libvirt sent for ${eventLabel(event)} could not be read (${(e as Error).message}); using libvirt's status files instead`);
  }
  return { input: {}, problems };
}

async function report(log: LogSink, event: HookEvent, result: ReconcileResult, ms: number, problems: string[], notes: string[]): Promise<void> {
  const failed = result.families.some((f) => f.error);
  const note = notes.length ? notes.join("; ") : undefined;
  await log.write(failed ? "error" : problems.length ? "warning" : "info", [summaryLine(eventLabel(event), result, ms, note), ...problems]);
}

/** Taps of running guests back onto a restarted network's bridge; returns notes for the log line. */
async function reattachGuests(networkName: string, view: HostView, problems: string[]): Promise<string[]> {
  const network = view.networks.get(networkName);
  if (!network?.bridge) return [];
  const taps = [...view.domains.values()].flatMap((d) => d.interfaces.flatMap((i) => (i.tap ? [i.tap] : [])));
  const actions = planReattach(network, view.domains.values(), readLinks(taps), readMtu(network.bridge));
  if (actions.length === 0) return [];
  const error = await applyReattach(runTool, actions);
  if (error) problems.push(`re-attach to ${network.bridge}: ${error}`);
  return [`re-attached ${actions.map((a) => `${a.tap} (${a.domain})`).join(", ")} to ${network.bridge}`];
}

/**
 * The problems that justify refusing this event under `on-error block`: rule
 * errors anywhere (the admin asked for strictness), this domain's failed
 * forwards, or a transaction the kernel refused.
 */
function concernsEvent(event: HookEvent, result: ReconcileResult, diagnostics: readonly Diagnostic[]): string[] {
  const mine = result.plan.states.filter(
    (s) => s.state === "failed" && s.rule.kind === "forward" && s.rule.target.kind === "domain" && s.rule.target.name === event.object,
  );
  const rulesBroken = hasErrors(diagnostics) ? diagnostics.filter((d) => d.severity === "error") : [];
  return problemLines(rulesBroken, { plan: { ...result.plan, states: mine }, families: result.families });
}
