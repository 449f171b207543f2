// Connections tracked with a translation that no longer holds. NAT is decided
// on a flow's first packet only: after an egress or map statement appears,
// changes or goes, a flow the guest had already opened keeps its old source
// address (libvirt's masquerade, or the old egress address) until it ends. So
// when a guest's translation changes, its source-NATed flows are deleted
// (`conntrack -D`, argv only, bounded); the next packet of a TCP flow is then
// seen as new and translated as the rules now say (the peer sees a new source,
// so that connection ends: which is the point). Inbound flows DNAT'd through a
// mapped address that is gone or now maps elsewhere are deleted likewise.
// Nothing else of the guest's (its own network, the host) is touched.
import { familyOf, type Family } from "../net/ip.js";
import type { Plan } from "../plan/intents.js";
import type { RunTool } from "../effects/exec.js";

export interface Translation {
  readonly family: Family;
  /** snat: guest -> address (egress, and map's outbound); dnat: address -> guest (map's inbound). */
  readonly kind: "snat" | "dnat";
  readonly guest: string;
  readonly address: string;
}

/** At most this many conntrack runs per reconcile: a rules.d rewrite must not stall a hook. */
export const MAX_FLOW_DELETIONS = 32;

const key = (t: Translation) => `${t.family} ${t.kind} ${t.guest} ${t.address}`;

/** What the plan translates in one family. */
export function plannedTranslations(plan: Plan, family: Family): Translation[] {
  return plan.egress
    .filter((e) => e.family === family)
    .flatMap((e): Translation[] => [
      { family, kind: "snat", guest: e.guestAddress, address: e.hostAddress },
      ...(e.inbound ? [{ family, kind: "dnat" as const, guest: e.guestAddress, address: e.hostAddress }] : []),
    ]);
}

const unbracket = (s: string) => s.replace(/^\[(.*)\]$/, "$1");

/**
 * The translations in rule lines as the state file records them (what we last
 * applied), on either backend: render/iptables.ts's VIRT_HOOKS_SNAT and map
 * DNAT rules, render/nftables.ts's snat and map dnat rules. A line that does
 * not parse as one of ours, or names no valid address, is not a translation.
 */
export function recordedTranslations(lines: readonly string[], family: Family): Translation[] {
  const out: Translation[] = [];
  const add = (kind: Translation["kind"], guest: string | undefined, address: string | undefined) => {
    const g = unbracket(guest ?? "");
    const a = unbracket(address ?? "");
    if (familyOf(g) === family && familyOf(a) === family) out.push({ family, kind, guest: g, address: a });
  };
  for (const line of lines) {
    let m = /^-t nat -A VIRT_HOOKS_SNAT -s (\S+)\/(?:32|128) .*-j SNAT --to-source (\S+)$/.exec(line);
    if (m) { add("snat", m[1], m[2]); continue; }
    m = /^-t nat -A VIRT_HOOKS_PRE -d (\S+)\/(?:32|128) -m comment --comment "[^"]*" -j DNAT --to-destination (\S+)$/.exec(line);
    if (m) { add("dnat", m[2], m[1]); continue; }
    m = /^postrouting ip6? saddr (\S+) ip6? daddr != \{[^}]*\} counter snat to (\S+) comment /.exec(line);
    if (m) { add("snat", m[1], m[2]); continue; }
    m = /^prerouting ip6? daddr (\S+) counter dnat to (\S+) comment /.exec(line);
    if (m) add("dnat", m[2], m[1]);
  }
  return out;
}

/**
 * conntrack argv lists for what changed between two sets of translations:
 * a guest whose source translation differs (appeared, changed, gone) loses
 * its source-NATed flows; an address whose inbound mapping went or changed
 * loses the flows DNAT'd through it.
 */
export function staleFlowCommands(before: readonly Translation[], after: readonly Translation[]): string[][] {
  const was = new Set(before.map(key));
  const is = new Set(after.map(key));
  const changed = [...before.filter((t) => !is.has(key(t))), ...after.filter((t) => !was.has(key(t)))];
  const out = new Map<string, string[]>();
  for (const t of changed) {
    const f = t.family === 4 ? "ipv4" : "ipv6";
    if (t.kind === "snat") out.set(`s ${t.guest}`, ["-D", "-f", f, "-s", t.guest, "--src-nat"]);
    // A new mapping takes over the address for new flows only: the host's own
    // connections on it (an admin's ssh) are left to end by themselves.
    else if (!is.has(key(t))) out.set(`d ${t.address}`, ["-D", "-f", f, "-d", t.address, "--dst-nat"]);
  }
  return [...out.values()].slice(0, MAX_FLOW_DELETIONS);
}

export interface FlowDeletion {
  readonly argv: readonly string[];
  /** conntrack's own count ("N flow entries have been deleted"), when it said. */
  readonly deleted?: number;
  readonly error?: string;
}

/** Runs the deletions; conntrack exits 1 when nothing matched, which is fine. A missing tool is reported, never fatal. */
export async function deleteStaleFlows(run: RunTool, commands: readonly string[][]): Promise<FlowDeletion[]> {
  const out: FlowDeletion[] = [];
  for (const argv of commands) {
    const r = await run("conntrack", argv);
    const n = /(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/.exec(r.stderr + r.stdout);
    if (n) out.push({ argv, deleted: Number(n[1]) });
    else out.push({ argv, error: `conntrack exited ${r.exitCode}: ${(r.stderr || r.stdout).trim().slice(0, 200)}` });
  }
  return out;
}
