// Makes the `host` rules true in libvirt's networks: one `virsh net-update`
// per change (argv arrays, through the exec layer), live and persistent.
//
// Never from a hook: libvirt runs hooks synchronously inside its own calls, so
// a hook that calls libvirt deadlocks. Only the admin's reconcile path reaches
// this (converge/admin.ts: apply, its units, the watcher); a unit test
// checks that no module a hook loads imports it. It also runs outside the
// firewall lock: `net-update --live` fires the network's `updated` hook, which
// takes that lock, while virsh waits for the hook.
import { join } from "node:path";
import type { Paths } from "../config/paths.js";
import { acquireLock } from "../effects/lock.js";
import { findTool, type RunTool } from "../effects/exec.js";
import { readTextIfAny } from "../effects/read-text.js";
import { readHostView } from "../effects/libvirt-state.js";
import { leaseReader } from "../effects/lease-reader.js";
import { readOwnedHosts, writeOwnedHosts } from "../effects/state-store.js";
import { hostXml, sameHost } from "../libvirt/dhcp-host.js";
import { parseNetworkStatusXml, type NetworkInfo } from "../libvirt/network.js";
import type { HostView } from "../host/view.js";
import { planFixedAddresses, type FixedAddressPlan, type HostChange, type HostEntryState, type NetworkSides, type OwnedHost } from "../plan/fixed-addresses.js";
import { error, formatDiagnostic } from "../rules/diagnostic.js";
import type { HostRule } from "../rules/model.js";
import type { HostEntriesResult } from "./converge.js";

/** What converging the `host` statements did (the type converge.ts reports). */
export type ConvergeResult = HostEntriesResult;

/** virsh net-update's argv for one change: never a shell; the XML is one argument. */
export function netUpdateArgv(c: Pick<HostChange, "network" | "verb" | "entry" | "parentIndex" | "live" | "config">): string[] {
  return ["net-update", c.network, c.verb, "ip-dhcp-host", hostXml(c.entry), "--parent-index", String(c.parentIndex), ...(c.live ? ["--live"] : []), ...(c.config ? ["--config"] : [])];
}

/** Each network the rules or our record name, as it runs and as it is defined. */
export function readNetworkSides(paths: Paths, view: HostView, names: Iterable<string>): Map<string, NetworkSides> {
  const out = new Map<string, NetworkSides>();
  const leasesOf = leaseReader(paths.dnsmasqDir);
  for (const name of new Set(names)) {
    if (!/^[^/\0]+$/.test(name) || name === "." || name === "..") continue;
    const live = view.networks.get(name);
    const xml = readTextIfAny(join(paths.qemuConfigDir, "networks", `${name}.xml`));
    let config: NetworkInfo | undefined;
    try {
      config = xml ? parseNetworkStatusXml(xml) : undefined;
    } catch {
      config = undefined;
    }
    out.set(name, { ...(live ? { live, leases: live.bridge ? leasesOf(live.bridge) : [] } : {}), ...(config ? { config } : {}) });
  }
  return out;
}

export function planHosts(paths: Paths, hosts: readonly HostRule[], view: HostView): { plan: FixedAddressPlan; owned: readonly OwnedHost[]; problem?: string } {
  const record = readOwnedHosts(paths.ownedHostsFile);
  const sides = readNetworkSides(paths, view, [...hosts.map((h) => h.network), ...record.owned.map((o) => o.network)]);
  return { plan: planFixedAddresses(hosts, sides, record.owned), owned: record.owned, ...(record.problem ? { problem: record.problem } : {}) };
}

const describe = (c: HostChange) =>
  `${c.verb === "add" ? "added" : "deleted"} ${hostXml(c.entry)} ${c.verb === "add" ? "to" : "from"} network "${c.network}" (${c.live && c.config ? "live and persistent" : c.live ? "live" : "persistent"})`;

export async function convergeHosts(paths: Paths, hosts: readonly HostRule[], view: HostView, run: RunTool, dryRun: boolean): Promise<ConvergeResult> {
  const first = planHosts(paths, hosts, view);
  if (first.plan.changes.length === 0 || dryRun) {
    const done = first.plan.changes.map((c) => `would ${c.verb} ${hostXml(c.entry)} ${c.verb === "add" ? "to" : "from"} network "${c.network}"`);
    return { states: first.plan.states, done, problems: first.problem ? [first.problem] : [], changed: false };
  }
  const virsh = findTool("virsh");
  if (!virsh) {
    const states = first.plan.states.map((s) => (s.state === "pending" ? netUpdateFailed(s.rule, "virsh is not installed", "install libvirt's client tools (Debian: apt install libvirt-clients)") : s));
    return { states, done: [], problems: ["virsh is not installed: fixed addresses not converged"], changed: false };
  }
  // One converger at a time (apply and the watcher), planning again from what
  // the networks hold now; not the firewall lock (see above).
  const lock = await acquireLock(paths.stateDir, { purpose: "fixed-addresses", timeoutMs: 120_000 });
  const { plan, owned, problem } = planHosts(paths, hosts, readHostView(paths.libvirtRunDir, new Set()).view);
  const problems = [...lock.notes, ...(problem ? [problem] : [])];
  const done: string[] = [];
  const failedRules = new Map<HostRule, string>();
  let record = [...plan.owned];
  try {
    for (const c of plan.changes) {
      const argv = netUpdateArgv(c);
      const r = await run(virsh, argv);
      if (r.exitCode === 0) {
        done.push(describe(c));
        continue;
      }
      const why = `virsh ${argv.join(" ")} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split("\n")[0] ?? ""}`;
      problems.push(why);
      if (c.rule) failedRules.set(c.rule, why);
      // What could not be changed stays as the record had it.
      if (c.verb === "add" && !owned.some((o) => o.network === c.network && sameHost(o.entry, c.entry))) record = record.filter((o) => !(o.network === c.network && sameHost(o.entry, c.entry)));
      if (c.verb === "delete" && !record.some((o) => o.network === c.network && sameHost(o.entry, c.entry))) record.push({ network: c.network, entry: c.entry });
    }
    const unrecorded = writeOwnedHosts(paths.ownedHostsFile, record);
    if (unrecorded) problems.push(`cannot record the fixed addresses virt-hooks added (${unrecorded}): they will not be removed when their statements go`);
  } finally {
    await lock.release();
  }
  const states = plan.states.map((s): HostEntryState => {
    if (s.state !== "pending") return s;
    const why = failedRules.get(s.rule);
    return why ? netUpdateFailed(s.rule, why, "see libvirt's reason above; virt-hooks check shows the network's entries") : { rule: s.rule, state: "live", detail: s.detail.replace(/ to add to /, " added to ") };
  });
  return { states, done, problems, changed: done.length > 0 };
}

function netUpdateFailed(rule: HostRule, why: string, hint: string): HostEntryState {
  return { rule, state: "failed", detail: why, diagnostic: error("net-update-failed", rule.span, why, hint) };
}

/** For a summary line: what was changed in the networks (undefined: nothing). */
export function hostsNote(r: ConvergeResult): string | undefined {
  return r.done.length ? `fixed addresses: ${r.done.join("; ")}` : undefined;
}

/** Every problem with the fixed addresses as printable lines (file:line:col, hint). */
export function hostProblemLines(r: ConvergeResult): string[] {
  return [...r.states.flatMap((s) => (s.state === "failed" ? [formatDiagnostic(s.diagnostic)] : [])), ...r.problems.filter((p) => !r.states.some((s) => s.state === "failed" && s.detail === p))];
}
