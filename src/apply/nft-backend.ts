// The nftables backend: observe (which tables exist, libvirt's forward chain),
// render, and apply ONE `nft -f -` transaction per family. The transaction is
// skipped when our table already holds what we last applied (recorded hash)
// and libvirt's chain still starts with our accept.
import { createHash } from "node:crypto";
import type { Family } from "../net/ip.js";
import type { Plan } from "../plan/intents.js";
import { NFT_LIBVIRT_TABLE, renderNft } from "../render/nftables.js";
import { libvirtRuleInPlace, parseNftChainRules, parseNftTables, renderNftRemoval, renderNftTransaction, type NftObserved } from "../render/nft-transaction.js";
import type { RunTool } from "../effects/exec.js";
import type { FamilySync } from "./iptables-backend.js";

const fam = (family: Family) => (family === 4 ? "ip" : "ip6");

export async function observeNft(run: RunTool, family: Family): Promise<NftObserved | { error: string }> {
  const tables = await run("nft", ["-j", "list", "tables", fam(family)]);
  if (tables.exitCode !== 0) return { error: `nft list tables failed (exit ${tables.exitCode}): ${tables.stderr.trim()}` };
  const t = parseNftTables(tables.stdout, fam(family));
  if (!t.libvirtTable) return { ...t, libvirtForward: [] };
  const chain = await run("nft", ["-j", "list", "chain", fam(family), NFT_LIBVIRT_TABLE, "forward"]);
  // libvirt's table without a forward chain: nothing of libvirt's to sit in front of.
  if (chain.exitCode !== 0) return { ...t, libvirtTable: false, libvirtForward: [] };
  return { ...t, libvirtForward: parseNftChainRules(chain.stdout) };
}

export const tableHash = (body: string) => createHash("sha256").update(body).digest("hex").slice(0, 16);

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
): Promise<FamilySync> {
  const recordedHash = recorded?.hash;
  const desired = renderNft(plan, family);
  const hash = tableHash(desired.body);
  const base = { family, rules: desired.lines, backend: "nftables" as const, hash };
  let lastError = "";
  for (let attempt = 0; attempt < 2; attempt++) {
    const o = await observeNft(run, family);
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
