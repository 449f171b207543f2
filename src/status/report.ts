// The status report as a value: each rule's state with its resolved targets,
// leases and counters, the drift, and the exit code they add up to. Pure; the
// CLI reads the kernel and files, this decides what it means.
import { formatCidr, type Family } from "../net/ip.js";
import type { HostView } from "../host/view.js";
import type { Plan, RuleState } from "../plan/intents.js";
import { warning, type Diagnostic } from "../rules/diagnostic.js";
import { formatPorts, type Rule } from "../rules/model.js";
import { positionOf } from "../rules/source.js";
import type { Counter, CountersByOrigin, NftObservation } from "./counters.js";
import { originKey } from "./counters.js";
import type { DriftItem } from "./drift.js";
import type { Lease } from "../libvirt/leases.js";
import { leaseFor, resolveNics } from "./target.js";

export type StatusState = "live" | "waiting" | "failed" | "drifted";

export interface RuleCounters {
  /** New flows (nat rules see a flow's first packet only); null: not counted. */
  readonly connections: number | null;
  readonly packets: number | null;
  readonly bytes: number | null;
  readonly note?: string;
}

export interface RuleStatus {
  readonly rule: Rule;
  /** "FILE:LINE" as our kernel rules' comments name it. */
  readonly origin: string;
  readonly state: StatusState;
  readonly detail: string;
  /** Resolved targets: "192.168.122.10:22", "192.168.100.0/24", "10.0.0.0/8 → 192.168.122.0/24". */
  readonly targets: readonly string[];
  readonly domain?: string;
  readonly mac?: string;
  readonly network?: string;
  /** undefined: not a forward to a domain's fixed address; null: dnsmasq has no lease for it. */
  readonly lease?: (Lease & { readonly differs: boolean }) | null;
  readonly counters: RuleCounters | null;
  readonly diagnostic?: Diagnostic;
}

export interface StatusInput {
  readonly plan: Plan;
  readonly view: HostView;
  readonly leasesOf: (bridge: string) => readonly Lease[];
  readonly backend: "iptables" | "nftables";
  /** Counters by origin over every family read; undefined when the firewall could not be read. */
  readonly counters?: CountersByOrigin;
  /** nftables only: per family, our table's element counters. */
  readonly nft?: ReadonlyMap<Family, NftObservation>;
  readonly drift: readonly DriftItem[];
}

export interface StatusReport {
  readonly rules: readonly RuleStatus[];
  readonly drift: readonly DriftItem[];
  /** lease-differs warnings, one per forward concerned. */
  readonly diagnostics: readonly Diagnostic[];
}

/** What a rule resolved to, as status shows it. */
export const targetsOf = (plan: Plan, rule: Rule): string[] => {
  if (rule.kind === "forward") {
    return plan.forwards.filter((f) => f.rule === rule).map((f) => {
      const a = f.family === 6 ? `[${f.targetAddress}]` : f.targetAddress;
      return `${a}:${formatPorts(f.targetPorts ?? f.hostPorts)}`;
    });
  }
  if (rule.kind === "egress" || rule.kind === "map") return plan.egress.filter((e) => e.rule === rule).map((e) => (e.inbound ? `${e.hostAddress} ⇄ ${e.guestAddress}` : `${e.guestAddress} → ${e.hostAddress}`));
  if (rule.kind === "masquerade") return plan.masquerades.filter((m) => m.rule === rule).map((m) => formatCidr(m.subnet));
  return plan.accepts.filter((a) => a.rule === rule).map((a) => `${formatCidr(a.from)} → ${formatCidr(a.to)}`);
};

export function buildStatus(input: StatusInput): StatusReport {
  const diagnostics: Diagnostic[] = [];
  // One lease warning per guest NIC, at the first rule concerned.
  const warned = new Set<string>();
  const rules = input.plan.states.map((s): RuleStatus => {
    const origin = originKey(s.rule.span);
    const drift = input.drift.filter((d) => d.origin === origin);
    const base = {
      rule: s.rule,
      origin,
      targets: targetsOf(input.plan, s.rule),
      counters: countersFor(s, origin, input),
      ...(s.state === "failed" ? { diagnostic: s.diagnostic } : {}),
    };
    const state: StatusState = drift.length && s.state !== "failed" ? "drifted" : s.state;
    const detail = state === "drifted" ? `the kernel ${drift.every((d) => d.kind === "rule-missing" || d.kind === "element-missing") ? "lacks" : "has changed"} ${drift.length} of its firewall rule(s); run virt-hooks apply` : s.detail;
    if (s.rule.kind !== "forward" || s.rule.target.kind !== "domain") return { ...base, state, detail };
    const domainName = s.rule.target.name;
    const domain = input.view.domains.get(domainName);
    const f = input.plan.forwards.find((x) => x.rule === s.rule);
    if (!domain || !f) return { ...base, state, detail, domain: domainName };
    const check = leaseFor(resolveNics(domain, input.view, input.leasesOf), f.targetAddress, f.family);
    if (!check) return { ...base, state, detail, domain: domainName };
    const leaseKey = `${domainName} ${check.nic.mac} ${f.targetAddress}`;
    if (check.differs && check.lease && !warned.has(leaseKey)) {
      warned.add(leaseKey);
      diagnostics.push(
        warning(
          "lease-differs",
          s.rule.span,
          `"${domainName}" (MAC ${check.nic.mac}) holds the lease ${check.lease.ip}, but its fixed address is ${f.targetAddress}: the forward goes to ${f.targetAddress}`,
          "the guest has not renewed since the DHCP host entry was added: restart its DHCP client (or the guest)",
        ),
      );
    }
    return {
      ...base,
      state,
      detail,
      domain: domainName,
      mac: check.nic.mac,
      ...(check.nic.network ? { network: check.nic.network } : {}),
      lease: check.lease ? { ...check.lease, differs: check.differs } : null,
    };
  });
  return { rules, drift: input.drift, diagnostics };
}

function countersFor(s: RuleState, origin: string, input: StatusInput): RuleCounters | null {
  if (!input.counters) return null;
  const c = input.counters.get(origin);
  if (s.state !== "live" && !c) return null;
  let connections = c?.connections ?? null;
  let traffic: Counter | undefined = c?.traffic;
  let note: string | undefined;
  if (input.backend === "nftables" && s.rule.kind === "forward") {
    // Unrestricted forwards are map elements: counted per element when our
    // sets carry counters, otherwise not at all.
    const rule = s.rule;
    let uncounted = false;
    for (const f of input.plan.forwards.filter((x) => x.rule === rule)) {
      const obs = input.nft?.get(f.family);
      if (!obs) continue;
      const range = f.targetPorts ?? f.hostPorts;
      for (const proto of f.protos) {
        const acceptKey = `${f.targetAddress} . ${proto} . ${formatPorts(range)}`;
        const acc = obs.elements.get(range.first === range.last ? "accept_dnat" : "accept_dnat_ranges");
        if (acc?.has(acceptKey)) {
          const e = acc.get(acceptKey);
          if (e) traffic = { packets: (traffic?.packets ?? 0) + e.packets, bytes: (traffic?.bytes ?? 0) + e.bytes };
          else uncounted = true;
        }
        if (f.from.length || f.inInterface !== undefined) continue;
        const map = obs.elements.get(f.hostAddress ? "dnat_addr" : "dnat_local");
        for (let p = f.hostPorts.first; p <= f.hostPorts.last && map; p++) {
          const key = f.hostAddress ? `${f.hostAddress} . ${proto} . ${p}` : `${proto} . ${p}`;
          if (!map.has(key)) continue;
          const e = map.get(key);
          if (e) connections = (connections ?? 0) + e.packets;
          else uncounted = true;
        }
      }
    }
    if (uncounted) note = "nftables map element: no per-rule counter";
  }
  return {
    connections,
    packets: traffic?.packets ?? (note ? null : c || s.state === "live" ? 0 : null),
    bytes: traffic?.bytes ?? (note ? null : c || s.state === "live" ? 0 : null),
    ...(note ? { note } : {}),
  };
}

export const ruleLine = (r: Rule) => positionOf(r.span.file, r.span.start).line;
