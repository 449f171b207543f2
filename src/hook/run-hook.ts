// Hook mode: libvirt called us as /etc/libvirt/hooks/{qemu,network}. Rules:
// nothing on stdout, ever; exit 0 unless `set on-error block` refuses a
// prepare/start; never call libvirt; one log line per invocation.
import { hookEventFromArgv, type Driver, type HookEvent } from "../libvirt/event.js";
import { parseDomainXml } from "../libvirt/domain.js";
import { parseNetworkHookXml } from "../libvirt/network.js";
import { correctView, type HostView } from "../host/view.js";
import { planReattach } from "../plan/reattach.js";
import { applyReattach, readLinks, readMtu } from "../effects/links.js";
import { compileRules } from "../rules/compile.js";
import { hasErrors, type Diagnostic } from "../rules/diagnostic.js";
import type { RuleSet } from "../rules/model.js";
import { readRuleFiles } from "../effects/rules-files.js";
import { readHostView } from "../effects/libvirt-state.js";
import { acquireLock } from "../effects/lock.js";
import { openLogSink, type LogSink } from "../effects/log.js";
import { runTool } from "../effects/exec.js";
import type { Paths } from "../config/paths.js";
import { reconcile, type ReconcileResult } from "../apply/reconcile.js";
import { decide, type EventInput, type RuleInterest } from "./policy.js";
import { eventLabel, problemLines, summaryLine } from "./outcome.js";

export interface HookIo {
  readonly stdin: () => Promise<string>;
  /** Where the veto reason goes: libvirt shows the hook's stderr on failure. */
  readonly stderr: (text: string) => void;
  readonly now: () => number;
}

export function interestOf(rules: RuleSet): RuleInterest {
  const domains = new Set<string>();
  for (const f of rules.forwards) if (f.target.kind === "domain") domains.add(f.target.name);
  return { anyRules: rules.forwards.length + rules.masquerades.length + rules.accepts.length > 0, domains };
}

export async function runHook(driver: Driver, args: readonly string[], paths: Paths, io: HookIo): Promise<number> {
  const started = io.now();
  const log = openLogSink(paths);
  const event = hookEventFromArgv(driver, args);
  // Always drain stdin: libvirt writes the whole XML before it waits for us.
  const xmlPromise = io.stdin().catch(() => "");
  if (!event) {
    await xmlPromise;
    await log.write("warning", [`${driver} called with ${args.length} arguments (libvirt passes 4); ignored`]);
    return 0;
  }
  let vetoable = false;
  let block = false;
  try {
    const xml = await xmlPromise;
    const files = readRuleFiles(paths.rulesDir);
    const compiled = compileRules(files.files);
    block = compiled.rules.settings.onError === "block";
    const decision = decide(event, interestOf(compiled.rules));
    if (decision.kind === "ignore") {
      await log.write("info", [summaryLine(eventLabel(event), undefined, io.now() - started, `ignored (${decision.why})`)]);
      return 0;
    }
    vetoable = decision.vetoable;
    const input = parseEventXml(event, decision.needs, xml);
    if (decision.relevant && !decision.relevant(input.input)) {
      await log.write("info", [summaryLine(eventLabel(event), undefined, io.now() - started, "ignored (no rule names this port's domain)")]);
      return 0;
    }
    const lock = await acquireLock(paths.stateDir);
    let result: ReconcileResult;
    const notes: string[] = [];
    try {
      const reattach = decision.reattach === true && compiled.rules.settings.reattach;
      const interest = interestOf(compiled.rules);
      // Re-attach looks at every running guest; otherwise only the ones rules name.
      const read = readHostView(paths.libvirtRunDir, reattach ? undefined : interest.domains);
      const view = correctView(read.view, decision.corrections(input.input));
      if (reattach) notes.push(...(await reattachGuests(event.object, view, input.problems)));
      result = await reconcile({ rules: compiled.rules, view, stateDir: paths.stateDir, run: runTool, dryRun: false, everyFamily: false, networkConf: paths.networkConf });
      input.problems.push(...read.problems);
    } finally {
      await lock.release();
    }
    const diagnostics: Diagnostic[] = [...compiled.diagnostics];
    const problems = [...files.problems, ...input.problems, ...problemLines(diagnostics, result)];
    await report(log, event, result, io.now() - started, problems, notes);
    const failedHere = concernsEvent(event, result, diagnostics);
    if (vetoable && block && failedHere.length > 0) {
      io.stderr(`virt-hooks: refusing to start ${event.object} (set on-error block):\n${failedHere.join("\n")}\n`);
      return 1;
    }
    return 0;
  } catch (e) {
    // Our own bug must not stop a guest unless the admin asked for that.
    const message = `${eventLabel(event)}: internal error: ${(e as Error).stack ?? String(e)}`;
    await log.write("error", [message]);
    if (vetoable && block) {
      io.stderr(`virt-hooks: refusing to start ${event.object} (set on-error block): ${(e as Error).message}\n`);
      return 1;
    }
    return 0;
  }
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
