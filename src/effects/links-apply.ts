// The edge of `uplink`/`route`: read the host's links, addresses and routes
// with `ip -j` (argv arrays, no shell), plan (plan/links.ts), record what moves
// (so a stop can put it back), and change the host with ONE `ip -batch -`.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { NetworkInfo } from "../libvirt/network.js";
import type { RuleSet } from "../rules/model.js";
import { formatDiagnostic, type Diagnostic } from "../rules/diagnostic.js";
import { linkRulesOf, parseIpAddr, parseIpRoute, planLinksDown, planLinksUp, type HostNet, type LinkPlan, type LinkRecords } from "../plan/links.js";
import type { RunTool } from "./exec.js";
import { readRecordAt, writeRecord } from "./state-dir.js";
import { validLinkRecords } from "../plan/record-values.js";

const RECORDS = "links.json";

/** `ip -j -batch -` prints one JSON document per command, back to back. */
function splitJsonDocuments(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "[" || c === "{") {
      if (depth++ === 0) start = i;
    } else if ((c === "]" || c === "}") && --depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
  }
  return out;
}

/** Links with addresses, and both families' main-table routes: two processes, run together. */
export async function readHostNet(run: RunTool): Promise<HostNet | string> {
  const [v4, v6] = await Promise.all([
    run("ip", ["-j", "-d", "-batch", "-"], "address show\nroute show table main\n"),
    run("ip", ["-j", "-6", "route", "show", "table", "main"]),
  ]);
  if (v4.exitCode !== 0) return `ip -j address/route failed (exit ${v4.exitCode}): ${v4.stderr.trim()}`;
  try {
    const [addrs, routes4] = splitJsonDocuments(v4.stdout);
    const routes6 = v6.exitCode === 0 ? JSON.parse(v6.stdout || "[]") : []; // no IPv6 in this kernel: no IPv6 routes
    return { links: parseIpAddr(addrs), routes: [...parseIpRoute(routes4, 4), ...parseIpRoute(routes6, 6)] };
  } catch (e) {
    return `cannot read ip -j output: ${(e as Error).message}`;
  }
}

/** What earlier starts moved, as far as it can be believed: values go into `ip -batch`, so each is checked (plan/record-values.ts). */
export function readLinkRecords(stateDir: string): { records: LinkRecords; problem?: string } {
  const read = readRecordAt(join(stateDir, RECORDS));
  if ("missing" in read) return { records: {} };
  if ("problem" in read) return { records: {}, problem: read.problem };
  let parsed: unknown;
  try {
    parsed = JSON.parse(read.text);
  } catch {
    return { records: {}, problem: `${join(stateDir, RECORDS)}: not JSON; ignored` };
  }
  const { records, dropped } = validLinkRecords(parsed);
  return dropped ? { records, problem: `${join(stateDir, RECORDS)}: ${dropped} record(s) with values this version never writes; ignored` } : { records };
}

const writeLinkRecords = (stateDir: string, records: LinkRecords): string | undefined => writeRecord(stateDir, RECORDS, JSON.stringify(records, null, 1) + "\n");

export interface LinksOutcome {
  readonly plan?: LinkPlan;
  /** Phrases for the one log line. */
  readonly notes: string[];
  /** Lines that follow it: diagnostics with file:line:col, a failed ip -batch. */
  readonly problems: string[];
}

/**
 * Brings `network`'s uplinks and routes to what the rules say ("up": the
 * network runs; "down": it stopped). Does nothing, and starts no process,
 * when no rule and no record concerns the network.
 */
export async function assertLinks(
  op: "up" | "down",
  network: Pick<NetworkInfo, "name" | "bridge" | "subnets">,
  rules: Pick<RuleSet, "uplinks" | "routes">,
  stateDir: string,
  run: RunTool,
  dryRun = false,
): Promise<LinksOutcome> {
  const mine = linkRulesOf(rules, network.name);
  const hasRecords = existsSync(join(stateDir, RECORDS));
  if (mine.uplinks.length === 0 && mine.routes.length === 0 && !hasRecords) return { notes: [], problems: [] };
  const read = readLinkRecords(stateDir);
  const records = read.records;
  const readProblems = read.problem ? [`links of network "${network.name}": ${read.problem}`] : [];
  if (mine.uplinks.length === 0 && mine.routes.length === 0 && !Object.values(records).some((r) => r.network === network.name)) return { notes: [], problems: readProblems };
  const host = await readHostNet(run);
  if (typeof host === "string") return { notes: [], problems: [...readProblems, `links of network "${network.name}": ${host}`] };
  const plan = op === "up" ? planLinksUp(network, rules, host, records) : planLinksDown(network.name, network.bridge, rules, host, records);
  const problems = [...readProblems, ...plan.diagnostics.map((d: Diagnostic) => formatDiagnostic(d))];
  if (dryRun || plan.commands.length === 0) {
    const unrecorded = !dryRun && JSON.stringify(plan.records) !== JSON.stringify(records) ? writeLinkRecords(stateDir, plan.records) : undefined;
    if (unrecorded) problems.push(`links of network "${network.name}": ${unrecorded}`);
    return { plan, notes: dryRun ? [] : [...plan.notes], problems };
  }
  // Recorded first: if we die half-way, the stop still knows what to put back.
  // Unrecorded, an uplink's addresses could not be put back by the stop: then
  // the links are left as they are (said why), and the firewall goes on.
  const unrecorded = writeLinkRecords(stateDir, plan.records);
  if (unrecorded) {
    problems.push(`links of network "${network.name}": not changed, since what they would move cannot be recorded: ${unrecorded}`);
    return { plan, notes: [], problems };
  }
  // Starting: stop at the first refusal (the order makes each step depend on
  // the one before). Stopping: -force, put back as much as possible.
  const args = op === "up" ? ["-batch", "-"] : ["-force", "-batch", "-"];
  const r = await run("ip", args, plan.commands.join("\n") + "\n");
  if (r.exitCode !== 0) problems.push(`links of network "${network.name}": ip ${args.join(" ")} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return { plan, notes: [...plan.notes], problems };
}

/**
 * The event's one call (converge/converge.ts): `links` from the policy's decision,
 * the network as the corrected view knows it (up) or as the event's XML named
 * it (down). Problems are appended to the hook's problem lines; the returned
 * notes go into its single log line.
 */
export async function linksForEvent(
  links: "up" | "down" | undefined,
  name: string,
  fromEvent: NetworkInfo | undefined,
  active: ReadonlyMap<string, NetworkInfo>,
  rules: Pick<RuleSet, "uplinks" | "routes">,
  stateDir: string,
  run: RunTool,
  problems: string[],
  dryRun = false,
): Promise<string[]> {
  if (!links) return [];
  const network = links === "up" ? (active.get(name) ?? fromEvent) : (fromEvent ?? { name, subnets: [] });
  if (!network) return [];
  const outcome = await assertLinks(links, network, rules, stateDir, run, dryRun);
  problems.push(...outcome.problems);
  // A dry run (plan --event) says what it would send.
  if (dryRun && outcome.plan?.commands.length) return [`would run ip -batch: ${outcome.plan.commands.join("; ")}`];
  return outcome.notes;
}
