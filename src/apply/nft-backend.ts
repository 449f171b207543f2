// The nftables backend: observe (one `nft -j -s list ruleset` per family: which
// tables exist, libvirt's forward chain, our table's fingerprint), render, and
// apply ONE `nft -f -` transaction per family. The transaction is
// skipped when our table already holds what we last applied (recorded hash)
// and libvirt's chain still starts with our accept.
import type { Family } from "../net/ip.js";
import type { Plan } from "../plan/intents.js";
import { NFT_LIBVIRT_RULE_COMMENT, NFT_LIBVIRT_TABLE, NFT_TABLE, renderNft } from "../render/nftables.js";
import { parseNftRuleset } from "../render/observed.js";
import { digest } from "./digest.js";
import { libvirtRuleInPlace, renderNftRemoval, renderNftTransaction, type NftObserved } from "../render/nft-transaction.js";
import type { RunTool } from "../effects/exec.js";
import type { FamilySync } from "./iptables-backend.js";

const fam = (family: Family) => (family === 4 ? "ip" : "ip6");

/** NftObserved, with the fingerprint of our table when it exists. */
export interface NftSeen extends NftObserved {
  readonly fingerprint?: string;
}

/** Our table and libvirt's forward chain, from ONE listing per family (render/observed.ts), with our table's fingerprint. */
export async function observeNft(run: RunTool, family: Family): Promise<NftSeen | { error: string }> {
  const r = await run("nft", ["-j", "-s", "list", "ruleset", fam(family)]);
  if (r.exitCode !== 0) return { error: `nft list ruleset failed (exit ${r.exitCode}): ${r.stderr.trim()}` };
  let seen;
  try {
    seen = parseNftRuleset(r.stdout, fam(family), { ours: NFT_TABLE, libvirt: NFT_LIBVIRT_TABLE, libvirtComment: NFT_LIBVIRT_RULE_COMMENT });
  } catch (e) {
    return { error: `nft -j list ruleset: unreadable output (${(e as Error).message})` };
  }
  const { ourTableText, ...observed } = seen;
  return ourTableText ? { ...observed, fingerprint: digest(ourTableText) } : observed;
}

/**
 * What the kernel holds in our table, as a digest of nft's own stateless
 * listing: taken right after we apply, and compared before we trust a
 * recorded "already in sync" (apply/reconcile.ts). undefined when the table is
 * absent or nft fails: never equal to a recorded fingerprint.
 */
export async function nftTableFingerprint(run: RunTool, family: Family): Promise<string | undefined> {
  const o = await observeNft(run, family);
  return "error" in o ? undefined : o.fingerprint;
}

export const tableHash = (body: string) => digest(body).slice(0, 16);

/** Multiset difference of lines: what a change adds and removes. */
export function lineChanges(before: readonly string[], after: readonly string[]): { added: number; removed: number } {
  const have = new Map<string, number>();
  for (const l of before) have.set(l, (have.get(l) ?? 0) + 1);
  let added = 0;
  for (const l of after) {
    const n = have.get(l) ?? 0;
    if (n > 0) have.set(l, n - 1);
    else added++;
  }
  return { added, removed: [...have.values()].reduce((a, b) => a + b, 0) };
}

export async function syncNft(
  run: RunTool,
  plan: Plan,
  family: Family,
  dryRun: boolean,
  recorded: { readonly hash?: string; readonly rules: readonly string[] } | undefined,
  /** The caller's own look at the kernel, used for the first attempt (a retry looks again). */
  observed?: NftObserved,
): Promise<FamilySync> {
  const recordedHash = recorded?.hash;
  const desired = renderNft(plan, family);
  const hash = tableHash(desired.body);
  const base = { family, rules: desired.lines, backend: "nftables" as const, hash };
  let lastError = "";
  for (let attempt = 0; attempt < 2; attempt++) {
    const o = attempt === 0 && observed ? observed : await observeNft(run, family);
    if ("error" in o) return { ...base, added: 0, removed: 0, error: o.error };
    const tableOk = desired.empty ? !o.ourTable : o.ourTable && recordedHash === hash;
    const libvirtOk = !o.libvirtTable || (desired.empty ? !o.libvirtForward.some((r) => r.ours) : libvirtRuleInPlace(o));
    if (tableOk && libvirtOk) return { ...base, added: 0, removed: 0 };
    const transaction = renderNftTransaction(desired, o);
    // What the kernel held is what we recorded, unless our table vanished meanwhile.
    const changes = lineChanges(o.ourTable ? (recorded?.rules ?? []) : [], desired.lines);
    if (dryRun) return { ...base, ...changes, transaction };
    const r = await run("nft", ["-f", "-"], transaction);
    if (r.exitCode === 0) return { ...base, ...changes, transaction };
    lastError = `nft rejected the transaction (exit ${r.exitCode}): ${r.stderr.trim()}`;
  }
  return { ...base, added: 0, removed: 0, error: lastError };
}

export async function removeNft(run: RunTool, family: Family, dryRun: boolean): Promise<{ transaction?: string; error?: string }> {
  const o = await observeNft(run, family);
  if ("error" in o) return { error: o.error };
  const transaction = renderNftRemoval(fam(family), o);
  if (!transaction || dryRun) return transaction ? { transaction } : {};
  const r = await run("nft", ["-f", "-"], transaction);
  return r.exitCode === 0 ? { transaction } : { transaction, error: `nft failed (exit ${r.exitCode}): ${r.stderr.trim()}` };
}
