// What we last applied, per family, under /run/virt-hooks (tmpfs: gone with a
// reboot, exactly like the kernel rules it describes). Used to know which
// families we manage and to report what changed.
import type { RuleCounts } from "../plan/intents.js";
import type { OwnedHost } from "../plan/fixed-addresses.js";
import { readJsonRecord, readRecordAt, writeRecord, writeRecordAt } from "./state-dir.js";
import { validHostEntry } from "../plan/record-values.js";
import type { Family } from "../net/ip.js";

export interface AppliedState {
  readonly families: Partial<Record<`ipv${Family}`, AppliedFamily>>;
}

export interface AppliedFamily {
  readonly backend?: "iptables" | "nftables";
  readonly rules: readonly string[];
  /** nftables: hash of the table we applied (skips identical transactions). */
  readonly hash?: string;
  /** nftables: fingerprint of the kernel's listing of our table right after we applied it (is `hash` still true?). */
  readonly kernelHash?: string;
  readonly at: string;
}

const BACKENDS = new Set(["iptables", "nftables"]);

/** A family entry as this version writes it, or undefined: a record is data to check, not to trust. */
function appliedFamily(v: unknown): AppliedFamily | undefined {
  if (!v || typeof v !== "object") return undefined;
  const e = v as Record<string, unknown>;
  if (e.backend !== undefined && !BACKENDS.has(e.backend as string)) return undefined;
  if (!Array.isArray(e.rules) || !e.rules.every((r) => typeof r === "string") || typeof e.at !== "string") return undefined;
  if ((e.hash !== undefined && typeof e.hash !== "string") || (e.kernelHash !== undefined && typeof e.kernelHash !== "string")) return undefined;
  return e as unknown as AppliedFamily;
}

export function readState(stateDir: string): AppliedState {
  const parsed = readJsonRecord(stateDir, "applied.json") as { families?: unknown } | undefined;
  const families: Record<string, AppliedFamily> = {};
  if (parsed && typeof parsed.families === "object" && parsed.families) {
    for (const key of ["ipv4", "ipv6"]) {
      const f = appliedFamily((parsed.families as Record<string, unknown>)[key]);
      if (f) families[key] = f;
    }
  }
  return { families };
}

export function writeState(stateDir: string, state: AppliedState): string | undefined {
  return writeRecord(stateDir, "applied.json", JSON.stringify(state, null, 1) + "\n");
}

/**
 * The last reconcile that looked at the kernel and left it exactly as desired:
 * when it started looking (CLOCK_MONOTONIC ns, comparable across processes of
 * one boot; /run does not outlive the boot) and a key of the desired state.
 * Lets a hook skip its own look when a later-started one already did it (see
 * reconcile.ts).
 */
export interface Verified {
  readonly at: bigint;
  readonly key: string;
  /**
   * What that reconcile's desired state was computed from (rules.d, the
   * identity of libvirt's status files, network.conf), when nothing but those
   * went into it; with the rule counts it reported. Lets a later-started hook
   * see that it is covered before reading any status file (hook/coalesce.ts).
   */
  readonly inputs?: string;
  readonly counts?: RuleCounts;
}

export function readVerified(stateDir: string): Verified | undefined {
  try {
    const v = readJsonRecord(stateDir, "verified.json") as { at?: unknown; key?: unknown; inputs?: unknown; counts?: unknown } | undefined;
    if (!v || typeof v !== "object") return undefined;
    if (typeof v.at !== "string" || !/^\d+$/.test(v.at) || typeof v.key !== "string") return undefined;
    const c = v.counts as Record<string, unknown> | undefined;
    const counts = c && [c.live, c.waiting, c.failed].every((n) => Number.isInteger(n)) ? { live: c.live as number, waiting: c.waiting as number, failed: c.failed as number } : undefined;
    return { at: BigInt(v.at), key: v.key, ...(typeof v.inputs === "string" && counts ? { inputs: v.inputs, counts } : {}) };
  } catch {
    return undefined;
  }
}

export function writeVerified(stateDir: string, v: Verified | undefined): string | undefined {
  return writeRecord(stateDir, "verified.json", JSON.stringify(v ? { at: v.at.toString(), key: v.key, inputs: v.inputs, counts: v.counts } : {}) + "\n");
}

/**
 * The DHCP host entries virt-hooks added to libvirt's networks (`host` rules;
 * Paths.ownedHostsFile): the entries are persistent (--config), so the record
 * of which are ours outlives a reboot too. Only what is recorded here is ever
 * deleted; a record anyone but root could have written is not believed (then
 * nothing is deleted, and what rules.d declares is re-added).
 */
export function readOwnedHosts(path: string): { owned: OwnedHost[]; problem?: string } {
  const read = readRecordAt(path);
  if ("missing" in read) return { owned: [] };
  if ("problem" in read) return { owned: [], problem: read.problem };
  try {
    const parsed = JSON.parse(read.text) as { entries?: unknown };
    const list = Array.isArray(parsed.entries) ? parsed.entries : [];
    // Each value reaches virsh's command line (as XML): only what a `host` rule could have declared is believed.
    const owned = list.flatMap((e: Record<string, unknown>): OwnedHost[] => {
      const entry = validHostEntry(e);
      return entry ? [entry] : [];
    });
    return { owned };
  } catch (e) {
    return { owned: [], problem: `${path}: ${(e as Error).message}` };
  }
}

export function writeOwnedHosts(path: string, owned: readonly OwnedHost[]): string | undefined {
  const entries = owned.map((o) => ({ network: o.network, ...(o.entry.mac ? { mac: o.entry.mac } : {}), ip: o.entry.address, ...(o.entry.name ? { name: o.entry.name } : {}) }));
  return writeRecordAt(path, JSON.stringify({ entries }, null, 1) + "\n", { durable: true });
}
