// The iptables backend: observe (iptables-save), render, and apply ONE
// iptables-restore --noflush --wait transaction per address family. Skips the
// transaction when the kernel already holds exactly the desired rules.
//
// Unlike nftables (reconcile.ts), there is no recorded-hash shortcut here: the
// one iptables-save per event IS the cheap verification. A hash of what we
// last applied cannot tell that libvirt re-inserted its jumps above ours
// (reboot, `iptables -F`, a daemon restart) or that someone flushed our
// chains, and the position of our jumps must be known to write a transaction
// that moves them anyway. Measured (bench/RESULTS.md): iptables-save is a few
// ms, small next to the process start-up that every hook pays.
import type { Family } from "../net/ip.js";
import type { Plan } from "../plan/intents.js";
import { renderIptables } from "../render/iptables.js";
import { inSync, renderRemoval, renderRestore, renderRollback } from "../render/iptables-restore.js";
import { observedKey, parseIptablesSave, type ObservedIptables } from "../render/observed.js";
import { OWNED_CHAINS, SNAT_CHAIN } from "../render/chains.js";
import type { RunTool } from "../effects/exec.js";

export interface FamilySync {
  readonly family: Family;
  /** The transaction applied (or, dry-run, that would be); undefined when already in sync. */
  readonly transaction?: string;
  readonly added: number;
  readonly removed: number;
  /** Desired rule specs, as recorded afterwards. */
  readonly rules: readonly string[];
  readonly backend: "iptables" | "nftables";
  readonly hash?: string;
  /** nftables: the kernel's listing of our table, fingerprinted after the sync (see reconcile.ts). */
  readonly kernelHash?: string;
  readonly error?: string;
}

const tools = (family: Family) =>
  family === 4 ? { save: "iptables-save", restore: "iptables-restore" } : { save: "ip6tables-save", restore: "ip6tables-restore" };

async function observe(run: RunTool, family: Family): Promise<ObservedIptables | { error: string }> {
  const r = await run(tools(family).save, []);
  if (r.exitCode !== 0) return { error: `${tools(family).save} failed (exit ${r.exitCode}): ${r.stderr.trim()}` };
  return parseIptablesSave(r.stdout);
}

/** Multiset difference of rule specs between what is there and what is wanted. */
function countChanges(observed: ObservedIptables, wanted: readonly { table: string; chain: string; spec: string }[]) {
  const have = new Map<string, number>();
  for (const c of [...OWNED_CHAINS, SNAT_CHAIN]) for (const s of observed.chains.get(observedKey(c.table, c.name)) ?? []) {
    const k = `${c.table} ${c.name} ${s}`;
    have.set(k, (have.get(k) ?? 0) + 1);
  }
  let added = 0;
  for (const r of wanted) {
    const k = `${r.table} ${r.chain} ${r.spec}`;
    const n = have.get(k) ?? 0;
    if (n > 0) have.set(k, n - 1);
    else added++;
  }
  const removed = [...have.values()].reduce((a, b) => a + b, 0);
  return { added, removed };
}

export async function syncIptables(run: RunTool, plan: Plan, family: Family, dryRun: boolean): Promise<FamilySync> {
  const desired = renderIptables(plan, family);
  const rules = desired.rules.map((r) => `-t ${r.table} -A ${r.chain} ${r.spec}`);
  const backend = "iptables" as const;
  let lastError = "";
  // A second try covers libvirt changing its chains between our look and our write.
  for (let attempt = 0; attempt < 2; attempt++) {
    const observed = await observe(run, family);
    if ("error" in observed) return { family, backend, added: 0, removed: 0, rules, error: observed.error };
    const { added, removed } = countChanges(observed, desired.rules);
    if (inSync(desired, observed)) return { family, backend, added: 0, removed: 0, rules };
    const transaction = renderRestore(desired, observed);
    if (dryRun) return { family, backend, transaction, added, removed, rules };
    const r = await run(tools(family).restore, ["--noflush", "--wait"], transaction);
    if (r.exitCode === 0) return { family, backend, transaction, added, removed, rules };
    lastError = `${tools(family).restore} rejected the transaction (exit ${r.exitCode}): ${r.stderr.trim()}`;
    // Each table commits on its own: undo whatever part went in before the refusal.
    const undo = await run(tools(family).restore, ["--noflush", "--wait"], renderRollback(observed));
    if (undo.exitCode !== 0) lastError += `; restoring the previous rules failed too: ${undo.stderr.trim()}`;
  }
  return { family, backend, added: 0, removed: 0, rules, error: lastError };
}

export async function removeIptables(run: RunTool, family: Family, dryRun: boolean): Promise<{ transaction?: string; error?: string }> {
  const observed = await observe(run, family);
  if ("error" in observed) return { error: observed.error };
  const transaction = renderRemoval(observed);
  if (!transaction || dryRun) return transaction ? { transaction } : {};
  const r = await run(tools(family).restore, ["--noflush", "--wait"], transaction);
  return r.exitCode === 0 ? { transaction } : { transaction, error: `${tools(family).restore} failed (exit ${r.exitCode}): ${r.stderr.trim()}` };
}
