// The admin face: check, plan, apply, status, explain, flush. Human output on
// stdout, problems on stderr (or everything in one JSON document with --json),
// exit codes as documented in cli/help.ts.
import { LockTimeout } from "../effects/lock.js";
import type { Converged } from "../converge/converge.js";
import { convergeAdmin } from "../converge/admin.js";
import { OCCASIONS } from "../converge/occasion.js";
import { BACKEND_TEXT } from "../host/backend.js";
import { runWatch } from "../watch/run-watch.js";
import { openLogSink } from "../effects/log.js";
import { runTool } from "../effects/exec.js";
import type { Paths } from "../config/paths.js";
import { formatDiagnostic } from "../rules/diagnostic.js";
import { formatLine } from "../rules/source.js";
import { resolvePlan } from "../plan/resolve.js";
import type { Plan, RuleState } from "../plan/intents.js";
import type { ReconcileResult } from "../apply/result.js";
import { FIREWALLS } from "../apply/firewall.js";
import { renderIptables } from "../render/iptables.js";
import { summaryLine } from "../hook/outcome.js";
import { formatEvent } from "../libvirt/event.js";
import { HELP } from "./help.js";
import type { CliArgs } from "./args.js";
import { escapingIo, type CliIo } from "./io.js";
import { runHook } from "../hook/run-hook.js";
import type { Driver } from "../libvirt/event.js";
import { loadContext, type Context } from "../converge/context.js";
import { diagnosticJson, familyJson, hostJson, jsonText, JSON_VERSION, problemJson, ruleText, stateJson } from "./json.js";
import { parseEventText, planEvent, type EventPlan } from "./plan-event.js";
import { runStatus, STATUS_EXIT } from "./status-cmd.js";
import { runExplain } from "./explain-cmd.js";
import { runHostCmd } from "./host-cmd.js";
import { targetsOf as ruleTargets } from "../status/report.js";
import type { HostEntryState } from "../plan/fixed-addresses.js";
import { hostProblemLines, hostsNote, planHosts } from "../converge/host-entries.js";

export { ruleText };

export type { CliIo } from "./io.js";

export const EXIT = { ok: 0, ruleErrors: 1, usage: 2, applyFailed: 3, unresolved: 4, drift: STATUS_EXIT.drift } as const;

function hostLine(s: HostEntryState): string {
  return `${s.state.padEnd(7)} ${formatLine(s.rule.span)}  ${ruleText(s.rule)}  (${s.detail})`;
}

function stateLine(s: RuleState, before?: RuleState["state"]): string {
  const state = before && before !== s.state ? `${before} → ${s.state}` : s.state;
  return `${state.padEnd(7)} ${formatLine(s.rule.span)}  ${ruleText(s.rule)}  (${s.detail})`;
}

export async function runCli(args: CliArgs, basePaths: Paths, rawIo: CliIo): Promise<number> {
  const paths: Paths = args.rulesDir ? { ...basePaths, rulesDir: args.rulesDir } : basePaths;
  // Every command prints through escaping sinks; a hook's stdout stays raw (libvirt may read it as XML).
  const io = escapingIo(rawIo);
  switch (args.command) {
    case "help":
      io.out(HELP[args.helpFor ?? "help"] + "\n");
      return EXIT.ok;
    case "version":
      io.out(`virt-hooks ${io.version}\n`);
      return EXIT.ok;
    case "hook": {
      const [driver, ...rest] = args.rest;
      if (driver !== "qemu" && driver !== "network") {
        io.err("virt-hooks hook: DRIVER must be qemu or network\n");
        return EXIT.usage;
      }
      return runHook(driver as Driver, rest, paths, { stdin: io.stdin, stdout: rawIo.out, stderr: io.err, now: io.now });
    }
    case "flush":
      return flush(io);
    case "watch":
      return runWatch(paths);
    case "status":
      return runStatus(paths, io, { json: args.json });
    case "explain":
      return runExplain(paths, io, args.domain as string);
    case "host":
      return runHostCmd(args.rest, paths, io);
    case "check":
      return check(args, paths, io);
    case "plan":
    case "apply":
      return planApply(args, paths, io);
  }
}

function printProblems(ctx: Context, io: CliIo): void {
  for (const p of ctx.problems) io.err(`error: ${p}\n`);
  for (const d of ctx.diagnostics) io.err(formatDiagnostic(d) + "\n");
}

const targetsOf = (plan: Plan, s: RuleState) => ruleTargets(plan, s.rule);

function check(args: CliArgs, paths: Paths, io: CliIo): number {
  const ctx = loadContext(paths, { lint: true });
  const plan = resolvePlan(ctx.compiled.rules, ctx.view);
  const hosts = planHosts(paths, ctx.compiled.rules.hosts, ctx.view);
  const hostFailed = hosts.plan.states.filter((s) => s.state === "failed");
  const failed = plan.states.filter((s) => s.state === "failed");
  const nErr = ctx.diagnostics.filter((d) => d.severity === "error").length + ctx.problems.length;
  const nWarn = ctx.diagnostics.filter((d) => d.severity === "warning").length;
  const code = ctx.ruleErrors ? EXIT.ruleErrors : failed.length || hostFailed.length ? EXIT.unresolved : EXIT.ok;
  const r = ctx.compiled.rules;
  if (args.json) {
    io.out(
      jsonText({
        version: JSON_VERSION,
        command: "check",
        ok: code === EXIT.ok,
        exitCode: code,
        counts: { files: ctx.files.length, forwards: r.forwards.length, masquerades: r.masquerades.length, accepts: r.accepts.length, hosts: r.hosts.length, egress: r.egress.length, errors: nErr, warnings: nWarn, unresolved: failed.length + hostFailed.length },
        rules: plan.states.map((s) => stateJson(s, targetsOf(plan, s))),
        hosts: hosts.plan.states.map(hostJson),
        diagnostics: [
          ...ctx.problems.map(problemJson),
          ...ctx.diagnostics.map(diagnosticJson),
          ...failed.flatMap((s) => (s.state === "failed" ? [diagnosticJson(s.diagnostic)] : [])),
          ...hostFailed.flatMap((s) => (s.state === "failed" ? [diagnosticJson(s.diagnostic)] : [])),
        ],
      }),
    );
    return code;
  }
  printProblems(ctx, io);
  for (const s of hostFailed) if (s.state === "failed") io.err(formatDiagnostic(s.diagnostic) + "\n");
  for (const s of failed) if (s.state === "failed") io.err(formatDiagnostic(s.diagnostic) + "\n");
  for (const s of hosts.plan.states) if (s.state !== "failed") io.out(hostLine(s) + "\n");
  const counts = `${r.forwards.length} forward(s), ${r.masquerades.length} masquerade(s), ${r.accepts.length} accept(s), ${r.hosts.length} fixed address(es)${r.egress.length ? `, ${r.egress.length} egress/map` : ""} in ${ctx.files.length} file(s)`;
  io.out(`${counts}: ${nErr} error(s), ${nWarn} warning(s), ${failed.length + hostFailed.length} rule(s) that cannot be resolved now\n`);
  return code;
}

async function planApply(args: CliArgs, paths: Paths, io: CliIo): Promise<number> {
  const started = io.now();
  const dryRun = args.command === "plan";
  const ctx = loadContext(paths, { lint: dryRun });
  const event = args.event !== undefined ? planEvent(parseEventText(args.event), ctx.compiled.rules, ctx.view, paths) : undefined;
  if (!args.json) {
    printProblems(ctx, io);
    if (event) io.out(eventHeader(event));
  }

  if (args.command === "apply" && ctx.ruleErrors) {
    io.err("virt-hooks apply: the rule files have errors; nothing was changed (fix them, then run: virt-hooks check)\n");
    return EXIT.ruleErrors;
  }
  if (event && !event.view) {
    if (args.json) io.out(jsonText(planJson(ctx, event, undefined, EXIT.ok)));
    return EXIT.ok;
  }

  let result: Converged;
  try {
    // The one door, with this command's row (converge/occasion.ts): plan --event takes the hook's steps, dry.
    const occasion = event ? OCCASIONS["plan-event"] : dryRun ? OCCASIONS.plan : OCCASIONS.apply;
    result = await convergeAdmin(occasion, ctx, paths, { ...(event?.view ? { view: event.view } : {}), ...(event?.steps ? { event: event.steps } : {}) });
  } catch (e) {
    if (e instanceof LockTimeout) { io.err(`virt-hooks: ${e.message}\n`); return EXIT.applyFailed; }
    throw e;
  }
  let code: number = result.plan.states.some((s) => s.state === "failed") || result.hosts.states.some((s) => s.state === "failed") ? EXIT.unresolved : EXIT.ok;
  if (result.families.some((f) => f.error)) code = dryRun && result.families.every((f) => f.error?.includes("-save") || f.error?.includes("nft list")) ? code : EXIT.applyFailed;

  if (args.json) {
    io.out(jsonText(planJson(ctx, event, result, code)));
    return code;
  }
  const before = event ? resolvePlan(ctx.compiled.rules, ctx.view).states : undefined;
  for (const a of result.reattached) io.out(`re-attach ${a.tap} (${a.domain}) to ${a.bridge}${a.mtu ? ` mtu ${a.mtu}` : ""}${a.isolated ? " isolated" : ""}\n`);
  for (const n of result.notes) if (!n.includes("re-attach")) io.out(`# ${n}\n`);
  for (const p of result.problems) io.err(p + "\n");
  for (const s of result.hosts.states) io.out(hostLine(s) + "\n");
  result.plan.states.forEach((s, i) => io.out(stateLine(s, before?.[i]?.state) + "\n"));
  const hostProblems = hostProblemLines(result.hosts);
  for (const l of hostProblems) io.err(l + "\n");
  for (const s of result.plan.states) if (s.state === "failed") io.err(formatDiagnostic(s.diagnostic) + "\n");
  for (const f of result.families) {
    if (f.error) {
      io.err(`ipv${f.family}: ${f.error}\n`);
      if (dryRun && f.backend === "iptables") {
        io.out(`# ipv${f.family}: cannot read the current firewall, so these are the desired rules only:\n`);
        for (const rule of renderIptables(result.plan, f.family).rules) io.out(`iptables -t ${rule.table} -A ${rule.chain} ${rule.spec}\n`);
      }
      continue;
    }
    if (f.transaction === undefined) io.out(`# ipv${f.family}: the firewall already matches the rules\n`);
    else if (dryRun || args.verbose) {
      const tool = BACKEND_TEXT[f.backend].tool(f.family);
      io.out(`# ipv${f.family}: ${dryRun ? "would apply" : "applied"} (+${f.added} -${f.removed} rules) with ${tool}:\n${f.transaction}`);
    }
  }
  // Connections that kept an egress/map translation the rules no longer give (apply/stale-flows.ts).
  for (const f of result.flows ?? []) io.out(`# conntrack ${f.argv.join(" ")}: ${f.error ?? `${f.deleted} flow(s) deleted`}\n`);
  const line = summaryLine(event ? `plan ${formatEvent(event.event)}` : `${args.command}`, result, io.now() - started, hostsNote(result.hosts));
  io.out(line + "\n");
  // Problems went to stderr above, as a failed forward's do (a unit's stderr is in the journal too).
  if (!dryRun) await openLogSink(paths).write(result.families.some((f) => f.error) ? "error" : "info", [line]);
  return code;
}

function eventHeader(e: EventPlan): string {
  const label = formatEvent(e.event);
  if (e.ignoredBecause) return `${label}: ignored (${e.ignoredBecause}); the hook would change nothing\n`;
  const d = e.decision;
  const veto = d.kind === "reconcile" && d.vetoable ? "; refusable with set on-error block" : "";
  const lines = [`${label}: reconcile with the view corrected by the event (event XML stood in for by: ${e.input})${veto}`];
  return lines.join("\n") + "\n";
}

function planJson(ctx: Context, e: EventPlan | undefined, result: Converged | undefined, code: number) {
  const before = e ? resolvePlan(ctx.compiled.rules, ctx.view) : undefined;
  const plan = result?.plan ?? before ?? resolvePlan(ctx.compiled.rules, ctx.view);
  return {
    version: JSON_VERSION,
    command: "plan",
    ok: code === EXIT.ok,
    exitCode: code,
    backend: { name: result?.backend.backend ?? ctx.backend.backend, why: result?.backend.why ?? ctx.backend.why },
    event: e
      ? {
          driver: e.event.driver,
          object: e.event.object,
          op: e.event.op,
          subop: e.event.subop,
          decision: e.ignoredBecause ? "ignore" : "reconcile",
          why: e.ignoredBecause ?? null,
          vetoable: e.decision.kind === "reconcile" && !e.ignoredBecause ? e.decision.vetoable : false,
          input: e.input,
          reattach: (result?.reattached ?? []).map((a) => ({ domain: a.domain, tap: a.tap, bridge: a.bridge, mtu: a.mtu ?? null, isolated: a.isolated })),
        }
      : null,
    rules: plan.states.map((s, i) => ({ ...stateJson(s, targetsOf(plan, s)), before: before?.states[i]?.state ?? null })),
    hosts: (result?.hosts.states ?? []).map(hostJson),
    families: (result?.families ?? []).map(familyJson),
    diagnostics: [
      ...ctx.problems.map(problemJson),
      ...ctx.diagnostics.map(diagnosticJson),
      ...plan.states.flatMap((s) => (s.state === "failed" ? [diagnosticJson(s.diagnostic)] : [])),
      ...(result?.hosts.states ?? []).flatMap((s) => (s.state === "failed" ? [diagnosticJson(s.diagnostic)] : [])),
    ],
  };
}

async function flush(io: CliIo): Promise<number> {
  let code: number = EXIT.ok;
  for (const family of [4, 6] as const) {
    // Both backends, on purpose: flush takes ours out of whichever holds it.
    const r = await FIREWALLS.iptables.remove(runTool, family, false);
    if (r.error && (family === 4 || r.transaction)) {
      io.err(`ipv${family}: ${r.error}\n`);
      code = EXIT.applyFailed;
    } else if (r.transaction) io.out(`ipv${family}: removed virt-hooks chains\n`);
    // nftables: our table and our accept in libvirt's chain; no nft at all is not an error.
    const n = await FIREWALLS.nftables.remove(runTool, family, false);
    if (n.error && n.transaction) {
      io.err(`ipv${family}: ${n.error}\n`);
      code = EXIT.applyFailed;
    } else if (n.transaction) io.out(`ipv${family}: removed the virt_hooks nftables table and our accept in libvirt's forward chain\n`);
  }
  return code;
}
