// What we last applied, per family, under /run/virt-hooks (tmpfs: gone with a
// reboot, exactly like the kernel rules it describes). Used to know which
// families we manage and to report what changed.
import type { RuleCounts } from "../plan/intents.js";
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import type { OwnedHost } from "../plan/fixed-addresses.js";
import { distrust, trustPolicy } from "../trust/ownership.js";
import { dirname, join } from "node:path";
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

export function readState(stateDir: string): AppliedState {
  try {
    const parsed = JSON.parse(readFileSync(join(stateDir, "applied.json"), "utf8")) as AppliedState;
    return parsed && typeof parsed === "object" && parsed.families ? parsed : { families: {} };
  } catch {
    return { families: {} };
  }
}

export function writeState(stateDir: string, state: AppliedState): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `.applied.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(state, null, 1) + "\n", { mode: 0o600 });
  renameSync(tmp, join(stateDir, "applied.json"));
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
    const v = JSON.parse(readFileSync(join(stateDir, "verified.json"), "utf8")) as { at?: unknown; key?: unknown; inputs?: unknown; counts?: unknown };
    if (typeof v.at !== "string" || !/^\d+$/.test(v.at) || typeof v.key !== "string") return undefined;
    const c = v.counts as Record<string, unknown> | undefined;
    const counts = c && [c.live, c.waiting, c.failed].every((n) => Number.isInteger(n)) ? { live: c.live as number, waiting: c.waiting as number, failed: c.failed as number } : undefined;
    return { at: BigInt(v.at), key: v.key, ...(typeof v.inputs === "string" && counts ? { inputs: v.inputs, counts } : {}) };
  } catch {
    return undefined;
  }
}

export function writeVerified(stateDir: string, v: Verified | undefined): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `.verified.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(v ? { at: v.at.toString(), key: v.key, inputs: v.inputs, counts: v.counts } : {}) + "\n", { mode: 0o600 });
  renameSync(tmp, join(stateDir, "verified.json"));
}

/**
 * The DHCP host entries virt-hooks added to libvirt's networks (`host` rules;
 * Paths.ownedHostsFile): the entries are persistent (--config), so the record
 * of which are ours outlives a reboot too. Only what is recorded here is ever
 * deleted; a record anyone but root could have written is not believed (then
 * nothing is deleted, and what rules.d declares is re-added).
 */
export function readOwnedHosts(path: string): { owned: OwnedHost[]; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return { owned: [] };
  }
  const why = distrust(path, statSync(path), trustPolicy());
  if (why) return { owned: [], problem: why };
  try {
    const parsed = JSON.parse(text) as { entries?: unknown };
    const list = Array.isArray(parsed.entries) ? parsed.entries : [];
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    const owned = list.flatMap((e: Record<string, unknown>): OwnedHost[] => {
      const network = str(e?.network);
      const address = str(e?.ip);
      if (!network || !address) return [];
      const mac = str(e.mac);
      const name = str(e.name);
      return [{ network, entry: { address, ...(mac ? { mac } : {}), ...(name ? { name } : {}) } }];
    });
    return { owned };
  } catch (e) {
    return { owned: [], problem: `${path}: ${(e as Error).message}` };
  }
}

export function writeOwnedHosts(path: string, owned: readonly OwnedHost[]): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}.tmp`;
  const entries = owned.map((o) => ({ network: o.network, ...(o.entry.mac ? { mac: o.entry.mac } : {}), ip: o.entry.address, ...(o.entry.name ? { name: o.entry.name } : {}) }));
  writeFileSync(tmp, JSON.stringify({ entries }, null, 1) + "\n", { mode: 0o600 });
  renameSync(tmp, path);
}
