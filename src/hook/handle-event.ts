// The part of a hook that acts: read the event's XML, the host, reconcile,
// report, maybe refuse. Loaded by run-hook.ts only once the policy said
// "reconcile": this module pulls in the XML parser and the firewall code,
// which events we ignore must never pay for.
import { join } from "node:path";
import { readTextIfAny } from "../effects/read-text.js";
import type { HookEvent } from "../libvirt/event.js";
import { parseDomainXml } from "../libvirt/domain.js";
import { parseNetworkHookXml } from "../libvirt/network.js";
import { correctView, type Correction } from "../host/view.js";
import { compileRules, type Compiled } from "../rules/compile.js";
import { readRulesKeepingLastGood } from "../effects/last-good.js";
import { hasErrors, type Diagnostic } from "../rules/diagnostic.js";
import type { RuleFiles } from "../effects/rules-files.js";
import { readDomainStatus, readHostView } from "../effects/libvirt-state.js";
import { statusIdentity } from "../effects/status-identity.js";
import { correctionsRedundant, coveredNote, inputsKey } from "./coalesce.js";
import { statusHoldsDomain } from "../libvirt/domain-text.js";
import { acquireLock } from "../effects/lock.js";
import { coveredFor, type Held } from "./covered-early.js";
import type { LogSink } from "../effects/log.js";
import { runTool } from "../effects/exec.js";
import type { Paths } from "../config/paths.js";
import { converge } from "../converge/converge.js";
import { OCCASIONS } from "../converge/occasion.js";
import type { ReconcileResult } from "../apply/result.js";
import type { Decision, EventInput } from "./policy.js";
import { interestOf, type RuleInterest } from "../plan/interest.js";
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
  /** Our lock, when covered-early.ts already waited for it (then it asked the early question too). */
  readonly held?: Held;
}

/** Reconciles for one event; returns the problems that justify refusing it (empty: none). */
export async function handleEvent(c: EventContext): Promise<string[]> {
  const { event, decision } = c;
  const input = parseEventXml(event, decision.needs, c.xml);
  if (decision.relevant && !decision.relevant(input.input)) {
    await c.log.write("info", [summaryLine(eventLabel(event), undefined, c.elapsed(), "ignored (no rule names this port's domain)")]);
    return [];
  }
  const corrections = decision.corrections(input.input);
  // Covered already, before the lock: on a libvirtd restart most reconnects find
  // that the first one's reconcile, which started after them, verified their very
  // inputs, and skip the queue on the lock (whose waiters poll every 2-16 ms)
  // instead of waiting in it to learn that. The argument of hook/coalesce.ts needs
  // no lock: the record is written only at the end of a clean reconcile, by rename.
  const early: Covered = c.held ? { reattach: false } : covered(c, corrections);
  const lock = early.result ? undefined : (c.held?.lock ?? (await acquireLock(c.paths.stateDir)));
  let result: ReconcileResult;
  const notes: string[] = [];
  if (lock) input.problems.push(...lock.notes);
  // rules.d as it is now, not as it was before we waited for the lock: an
  // `apply` or another hook with newer rules may have run in between.
  let now = c;
  try {
    // covered-early.ts may have re-read rules.d and computed the key under this very lock.
    const heldInputs = c.held?.inputs;
    now = early.result || heldInputs !== undefined ? c : rulesNow(c);
    const { compiled } = now;
    const { reattach, inputs, result: coveredNow } = early.result ? early : heldInputs !== undefined ? { reattach: false, inputs: heldInputs } : covered(now, corrections);
    if (coveredNow) {
      result = coveredNow;
    } else {
      // Re-attach looks at every running guest; otherwise only the ones rules name.
      const read = readHostView(c.paths.libvirtRunDir, reattach ? undefined : withoutReplaced(now.interest.domains, corrections), c.paths.stateDir);
      const view = correctView(read.view, corrections);
      // The one door (converge/converge.ts), with the hook's row and the lock this hook already holds.
      const eventSteps = { network: event.object, reattach, ...(decision.links ? { links: decision.links } : {}), ...(input.input.network?.network ? { fromEvent: input.input.network.network } : {}) };
      const done = await converge(
        OCCASIONS.hook,
        { rules: compiled.rules, view, paths: c.paths, event: eventSteps, startedAt: c.startedAt, ...(lock ? { held: lock } : {}), ...(inputs !== undefined ? { inputsKey: inputs } : {}) },
        { run: runTool },
      );
      notes.push(...done.notes);
      input.problems.push(...done.problems);
      result = done;
      input.problems.push(...read.problems);
    }
    if (result.coalesced) notes.push(coveredNote(result));
  } finally {
    await lock?.release();
  }
  const diagnostics: Diagnostic[] = [...now.compiled.diagnostics];
  const problems = [...now.files.problems, ...input.problems, ...problemLines(diagnostics, result)];
  await report(c.log, event, result, c.elapsed(), problems, notes);
  return concernsEvent(event, result, diagnostics);
}

/** Whether this event re-attaches, its coalescing key, and the covered result when a later-started reconcile verified that key. */
type Covered = { reattach: boolean; inputs?: string; result?: ReconcileResult };

function covered(c: EventContext, corrections: readonly Correction[]): Covered {
  const reattach = c.decision.reattach === true && c.compiled.rules.settings.reattach;
  const inputs = coalescingKey(c, reattach, corrections);
  if (inputs === undefined) return { reattach };
  const result = coveredFor(c.paths.stateDir, c.startedAt, inputs);
  return result ? { reattach, inputs, result } : { reattach, inputs };
}

/** The context with rules.d read again: recompiled only when its text changed while we waited. */
function rulesNow(c: EventContext): EventContext {
  const files = readRulesKeepingLastGood(c.paths.rulesDir, c.paths.stateDir);
  const same = files.files.length === c.files.files.length && files.files.every((f, i) => f.path === c.files.files[i]?.path && f.text === c.files.files[i]?.text);
  if (same) return c;
  const compiled = compileRules(files.files);
  return { ...c, files, compiled, interest: interestOf(compiled.rules) };
}

/**
 * The key of what this event's desired state is computed from, when nothing
 * else goes into it (hook/coalesce.ts): no links or re-attach to act on, not
 * an event that may be refused, and corrections the status files already hold.
 */
function coalescingKey(c: EventContext, reattach: boolean, corrections: readonly Correction[]): string | undefined {
  if (reattach || c.decision.links || c.decision.vetoable) return undefined;
  if (!correctionsRedundant(corrections, (name) => statusUnlessSame(c.paths.libvirtRunDir, name, c.xml, corrections))) return undefined;
  return inputsKey({ rules: c.files.files, statusIdentity: statusIdentity(c.paths.libvirtRunDir, c.interest.domains), networkConf: readTextIfAny(c.paths.networkConf) });
}

/**
 * The domains whose status files are worth parsing: not those this event
 * replaces (domain-up: the event's own XML wins) or removes (domain-down)
 * anyway, unless a port correction needs the recorded domain. A parse of a
 * status file is the largest single cost of an event that acts (issue 15).
 */
function withoutReplaced(domains: ReadonlySet<string>, corrections: readonly Correction[]): ReadonlySet<string> {
  const replaced = new Set<string>();
  for (const k of corrections) if (k.kind === "domain-up" || k.kind === "domain-down") replaced.add(k.kind === "domain-up" ? k.domain.name : k.name);
  for (const k of corrections) if (k.kind === "port-up" || k.kind === "port-down") replaced.delete(k.owner);
  if (replaced.size === 0) return domains;
  return new Set([...domains].filter((d) => !replaced.has(d)));
}

/**
 * A domain's status file, parsed, for correctionsRedundant; but when its
 * <domain> element says all the XML libvirt sent this event says (a
 * reconnect: libvirt formats it from the definition it keeps there;
 * libvirt/domain-text.ts), the event's domain as already parsed.
 */
function statusUnlessSame(runDir: string, name: string, xml: string, corrections: readonly Correction[]) {
  const up = corrections.find((k) => k.kind === "domain-up" && k.domain.name === name);
  const text = readTextIfAny(join(runDir, "qemu", `${name}.xml`));
  if (text === undefined) return undefined;
  if (up?.kind === "domain-up" && statusHoldsDomain(text, xml)) return up.domain;
  return readDomainStatus(runDir, name);
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
