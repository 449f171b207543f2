// The admin face: check, plan, apply, flush. Human output on stdout, problems
// on stderr, exit codes as documented in cli/help.ts.
import { readHostView } from "../effects/libvirt-state.js";
import { readRuleFiles } from "../effects/rules-files.js";
import { acquireLock, LockTimeout } from "../effects/lock.js";
import { openLogSink } from "../effects/log.js";
import { runTool } from "../effects/exec.js";
import type { Paths } from "../config/paths.js";
import { compileRules } from "../rules/compile.js";
import { formatDiagnostic, hasErrors } from "../rules/diagnostic.js";
import { formatLine } from "../rules/source.js";
import type { Rule } from "../rules/model.js";
import { hostWarnings, resolvePlan } from "../plan/resolve.js";
import type { RuleState } from "../plan/intents.js";
import { reconcile } from "../apply/reconcile.js";
import { removeIptables } from "../apply/iptables-backend.js";
import { renderIptables } from "../render/iptables.js";
import { summaryLine } from "../hook/outcome.js";
import { HELP } from "./help.js";
import type { CliArgs } from "./args.js";
import { runHook } from "../hook/run-hook.js";
import type { Driver } from "../libvirt/event.js";

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly stdin: () => Promise<string>;
  readonly now: () => number;
  readonly version: string;
}

export const EXIT = { ok: 0, ruleErrors: 1, usage: 2, applyFailed: 3, unresolved: 4 } as const;

/** The statement as written, for listings (comments and surrounding space dropped). */
export function ruleText(rule: Rule): string {
  const raw = rule.span.file.text.slice(rule.span.start, rule.span.end);
  return raw.replace(/\s+#.*$/, "").trim();
}

function stateLine(s: RuleState): string {
  return `${s.state.padEnd(7)} ${formatLine(s.rule.span)}  ${ruleText(s.rule)}  (${s.detail})`;
}

export async function runCli(args: CliArgs, basePaths: Paths, io: CliIo): Promise<number> {
  const paths: Paths = args.rulesDir ? { ...basePaths, rulesDir: args.rulesDir } : basePaths;
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
      return runHook(driver as Driver, rest, paths, { stdin: io.stdin, stderr: io.err, now: io.now });
    }
    case "flush":
      return flush(io);
    case "check":
    case "plan":
    case "apply":
      return checkPlanApply(args, paths, io);
  }
}

async function checkPlanApply(args: CliArgs, paths: Paths, io: CliIo): Promise<number> {
  const started = io.now();
  const files = readRuleFiles(paths.rulesDir);
  for (const p of files.problems) io.err(`error: ${p}\n`);
  const compiled = compileRules(files.files);
  for (const d of compiled.diagnostics) io.err(formatDiagnostic(d) + "\n");
  const errors = hasErrors(compiled.diagnostics) || files.problems.length > 0;
  const read = readHostView(paths.libvirtRunDir);
  for (const w of hostWarnings(read.view)) io.err(formatDiagnostic(w) + "\n");
  const r = compiled.rules;
  const counts = `${r.forwards.length} forward(s), ${r.masquerades.length} masquerade(s), ${r.accepts.length} accept(s) in ${files.files.length} file(s)`;

  if (args.command === "check") {
    const plan = resolvePlan(compiled.rules, read.view);
    const failed = plan.states.filter((s) => s.state === "failed");
    for (const s of failed) if (s.state === "failed") io.err(formatDiagnostic(s.diagnostic) + "\n");
    const nErr = compiled.diagnostics.filter((d) => d.severity === "error").length + files.problems.length;
    const nWarn = compiled.diagnostics.length - (nErr - files.problems.length);
    io.out(`${counts}: ${nErr} error(s), ${nWarn} warning(s), ${failed.length} rule(s) that cannot be resolved now\n`);
    return errors ? EXIT.ruleErrors : failed.length ? EXIT.unresolved : EXIT.ok;
  }

  if (args.command === "apply" && errors) {
    io.err("virt-hooks apply: the rule files have errors; nothing was changed (fix them, then run: virt-hooks check)\n");
    return EXIT.ruleErrors;
  }

  const dryRun = args.command === "plan";
  let lock;
  try {
    lock = dryRun ? undefined : await acquireLock(paths.stateDir);
  } catch (e) {
    if (e instanceof LockTimeout) { io.err(`virt-hooks: ${e.message}\n`); return EXIT.applyFailed; }
    throw e;
  }
  let result;
  try {
    result = await reconcile({ rules: compiled.rules, view: read.view, stateDir: paths.stateDir, run: runTool, dryRun, everyFamily: true });
  } finally {
    await lock?.release();
  }
  for (const s of result.plan.states) io.out(stateLine(s) + "\n");
  for (const s of result.plan.states) if (s.state === "failed") io.err(formatDiagnostic(s.diagnostic) + "\n");
  for (const f of result.families) {
    if (f.error) {
      io.err(`ipv${f.family}: ${f.error}\n`);
      if (dryRun) {
        io.out(`# ipv${f.family}: cannot read the current firewall, so these are the desired rules only:\n`);
        for (const rule of renderIptables(result.plan, f.family).rules) io.out(`iptables -t ${rule.table} -A ${rule.chain} ${rule.spec}\n`);
      }
      continue;
    }
    if (f.transaction === undefined) io.out(`# ipv${f.family}: the firewall already matches the rules\n`);
    else if (dryRun || args.verbose) {
      io.out(`# ipv${f.family}: ${dryRun ? "would apply" : "applied"} (+${f.added} -${f.removed} rules) with ${f.family === 4 ? "iptables" : "ip6tables"}-restore --noflush --wait:\n${f.transaction}`);
    }
  }
  const line = summaryLine(`${args.command}`, result, io.now() - started);
  io.out(line + "\n");
  if (!dryRun) await openLogSink(paths).write(result.families.some((f) => f.error) ? "error" : "info", [line]);
  if (result.families.some((f) => f.error)) return dryRun && result.families.every((f) => f.error?.includes("-save")) ? EXIT.ok : EXIT.applyFailed;
  return result.plan.states.some((s) => s.state === "failed") ? EXIT.unresolved : EXIT.ok;
}

async function flush(io: CliIo): Promise<number> {
  let code: number = EXIT.ok;
  for (const family of [4, 6] as const) {
    const r = await removeIptables(runTool, family, false);
    if (r.error && (family === 4 || r.transaction)) {
      io.err(`ipv${family}: ${r.error}\n`);
      code = EXIT.applyFailed;
    } else if (r.transaction) io.out(`ipv${family}: removed virt-hooks chains\n`);
  }
  return code;
}
