// virt-hooks status: is every rule live, and does the kernel still hold what
// the rules declare? One line per rule, the drift, and an exit code made for
// monitoring (cli/help.ts). Reads only: no lock, no writes.
import type { Paths } from "../config/paths.js";
import { runTool, type RunTool } from "../effects/exec.js";
import { resolvePlan } from "../plan/resolve.js";
import { formatDiagnostic } from "../rules/diagnostic.js";
import { leaseReader } from "../effects/lease-reader.js";
import { observeFirewall } from "../status/observe.js";
import { buildStatus, type RuleStatus, type StatusReport } from "../status/report.js";
import type { DriftItem } from "../status/drift.js";
import { loadContext, type Context } from "../converge/context.js";
import { diagnosticJson, driftJson, hostJson, jsonText, JSON_VERSION, problemJson, ruleText, statusRuleJson } from "./json.js";
import { humanCount, paint, renderTable, wantColour } from "./table.js";
import type { CliIo } from "./io.js";
import { readWatcherStatus, watcherLine } from "../watch/watcher-status.js";
import { withDeclaredHosts, type HostEntryState } from "../plan/fixed-addresses.js";
import { originKey } from "../status/counters.js";
import { planHosts } from "../converge/host-entries.js";

export const STATUS_EXIT = { ok: 0, ruleErrors: 1, unreadable: 3, failed: 4, drift: 5 } as const;

export interface StatusOptions {
  readonly json: boolean;
  readonly colour?: boolean;
  readonly run?: RunTool;
}

export function statusExit(ctx: Pick<Context, "ruleErrors">, report: StatusReport, unreadable: boolean): number {
  if (ctx.ruleErrors) return STATUS_EXIT.ruleErrors;
  if (unreadable) return STATUS_EXIT.unreadable;
  if (report.drift.length) return STATUS_EXIT.drift;
  if (report.rules.some((r) => r.state === "failed")) return STATUS_EXIT.failed;
  return STATUS_EXIT.ok;
}

export async function runStatus(paths: Paths, io: CliIo, o: StatusOptions): Promise<number> {
  const ctx = loadContext(paths, { lint: true });
  const plan = resolvePlan(ctx.compiled.rules, ctx.view);
  const fw = await observeFirewall(o.run ?? runTool, plan, ctx.backend.backend, paths.stateDir);
  const report = buildStatus({
    plan,
    view: withDeclaredHosts(ctx.view, ctx.compiled.rules.hosts),
    leasesOf: leaseReader(paths.dnsmasqDir),
    backend: ctx.backend.backend,
    ...(fw.errors.length ? {} : { counters: fw.counters }),
    nft: fw.nft,
    drift: fw.drift,
  });
  const hosts = planHosts(paths, ctx.compiled.rules.hosts, ctx.view).plan.states;
  const code = hostsExit(statusExit(ctx, report, fw.errors.length > 0), hosts);
  const watcher = readWatcherStatus(paths.stateDir);
  const diagnostics = [...ctx.diagnostics, ...report.diagnostics];
  const count = (s: RuleStatus["state"]) => report.rules.filter((r) => r.state === s).length;
  const summary = { live: count("live"), drifted: count("drifted"), waiting: count("waiting"), failed: count("failed") };

  if (o.json) {
    io.out(
      jsonText({
        version: JSON_VERSION,
        command: "status",
        ok: code === 0,
        exitCode: code,
        backend: { name: ctx.backend.backend, why: ctx.backend.why },
        summary,
        rules: report.rules.map(statusRuleJson),
        hosts: hosts.map(hostJson),
        drift: report.drift.map(driftJson),
        diagnostics: [...ctx.problems.map(problemJson), ...diagnostics.map(diagnosticJson), ...hosts.flatMap((h) => (h.state === "failed" ? [diagnosticJson(h.diagnostic)] : []))],
        errors: fw.errors.map((e) => `ipv${e.family}: ${e.message}`),
        watcher: { running: watcher.running, pid: watcher.running ? (watcher.state?.pid ?? null) : null, sources: watcher.running ? (watcher.state?.sources ?? null) : null, lastRepair: watcher.running ? (watcher.state?.lastRepair ?? null) : null, quietSince: watcher.quietSince ?? null },
      }),
    );
    return code;
  }

  for (const p of ctx.problems) io.err(`error: ${p}\n`);
  for (const d of diagnostics) io.err(formatDiagnostic(d) + "\n");
  for (const r of report.rules) if (r.diagnostic) io.err(formatDiagnostic(r.diagnostic) + "\n");
  for (const h of hosts) if (h.state === "failed") io.err(formatDiagnostic(h.diagnostic) + "\n");
  for (const e of fw.errors) io.err(`ipv${e.family}: ${e.message}\n`);
  const p = paint(o.colour ?? wantColour(process.stdout));
  // The tables' cells are escaped by renderTable: their colours must pass.
  const table = io.outPainted ?? io.out;
  if (hosts.length) table(hostsTable(hosts, p) + "\n");
  if (report.rules.length) table(statusTable(report.rules, p));
  if (report.drift.length) io.out(`${report.rules.length ? "\n" : ""}${driftText(report.drift)}`);
  const parts = [`${report.rules.length} rule(s): ${summary.live} live, ${summary.drifted} drifted, ${summary.waiting} waiting, ${summary.failed} failed`, `${ctx.backend.backend} (${ctx.backend.why})`];
  const pending = hosts.filter((h) => h.state === "pending").length;
  if (pending) parts.push(`${pending} fixed address(es) not yet in their network: run virt-hooks apply`);
  if (report.drift.length) parts.push(`${report.drift.length} difference(s) in the kernel: run virt-hooks apply`);
  else if (fw.errors.length) parts.push("firewall not readable");
  else parts.push("kernel as declared");
  io.out(`${report.rules.length || report.drift.length ? "\n" : ""}${parts.join("; ")}\n`);
  io.out(watcherLine(watcher) + "\n");
  return code;
}

const STATE_COLOUR = { live: "green", waiting: "yellow", failed: "red", drifted: "red", pending: "yellow" } as const;

/** A fixed address failing counts as a failed rule; one not yet in its network as drift (apply fixes it). */
export function hostsExit(code: number, hosts: readonly HostEntryState[]): number {
  if (code !== STATUS_EXIT.ok && code !== STATUS_EXIT.failed) return code;
  if (hosts.some((h) => h.state === "pending")) return STATUS_EXIT.drift;
  if (hosts.some((h) => h.state === "failed")) return STATUS_EXIT.failed;
  return code;
}

export function hostsTable(hosts: readonly HostEntryState[], p = paint(false)): string {
  const rows = hosts.map((h) => [originKey(h.rule.span), h.state, h.rule.network, h.rule.mac, h.rule.address, h.rule.name ?? "-", h.state === "live" ? "" : h.detail]);
  return renderTable(
    [{ title: "FIXED ADDRESS" }, { title: "STATE" }, { title: "NETWORK" }, { title: "MAC" }, { title: "IP" }, { title: "NAME" }, { title: "DETAIL" }],
    rows,
    (row, col, text) => (col === 1 ? p(text, STATE_COLOUR[hosts[row]?.state ?? "live"]) : text),
  );
}

export function statusTable(rules: readonly RuleStatus[], p = paint(false)): string {
  const rows = rules.map((r) => {
    const lease = r.lease === undefined ? "-" : r.lease === null ? "none" : `${r.lease.ip}${r.lease.differs ? "!" : ""}`;
    const c = r.counters;
    const why = r.state === "live" ? "" : `  (${r.detail})`;
    return [
      r.origin,
      r.state,
      r.targets.length ? r.targets.join(",") : "-",
      lease,
      humanCount(c?.connections),
      humanCount(c?.packets),
      humanCount(c?.bytes),
      `${ruleText(r.rule)}${why}`,
    ];
  });
  return renderTable(
    [
      { title: "RULE" },
      { title: "STATE" },
      { title: "TARGET" },
      { title: "LEASE" },
      { title: "CONNS", align: "right" },
      { title: "PKTS", align: "right" },
      { title: "BYTES", align: "right" },
      { title: "STATEMENT" },
    ],
    rows,
    (row, col, text) => (col === 1 ? p(text, STATE_COLOUR[rules[row]?.state ?? "live"]) : text),
  );
}

export function driftText(drift: readonly DriftItem[]): string {
  const rows = drift.map((d) => [`ipv${d.family}`, d.where || "-", d.kind, d.origin ?? "-", d.detail]);
  const table = renderTable([{ title: "DRIFT" }, { title: "WHERE" }, { title: "WHAT" }, { title: "RULE" }, { title: "DETAIL" }], rows);
  return table + "fix: virt-hooks apply\n";
}
