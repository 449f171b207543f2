// One interface for the two firewall backends, chosen once per run (as incus's
// firewall.Firewall and libvirt's virFirewallApplyCmd switch in one place):
// what reconcile.ts and status need of a backend. iptables-backend.ts and
// nft-backend.ts hold the tool work; this is the table that picks one.
import type { BackendName } from "../host/backend.js";
import type { Family } from "../net/ip.js";
import type { Plan } from "../plan/intents.js";
import { renderIptables } from "../render/iptables.js";
import { renderNft } from "../render/nftables.js";
import type { RunTool } from "../effects/exec.js";
import type { AppliedFamily } from "../effects/state-store.js";
import { removeIptables, syncIptables, type FamilySync } from "./iptables-backend.js";
import { nftTableFingerprint, observeNft, removeNft, syncNft } from "./nft-backend.js";

export interface Firewall {
  readonly name: BackendName;
  /** The desired rules of one family as text: what "the same desired state" is compared on (coalescing). */
  rendered(plan: Plan, family: Family): string;
  /** Makes one family's rules exactly the plan's, in one transaction when they are not already. */
  sync(run: RunTool, plan: Plan, family: Family, dryRun: boolean, recorded: AppliedFamily | undefined): Promise<FamilySync>;
  /** Removes all of ours from one family (a backend libvirt no longer uses; flush; uninstall). */
  remove(run: RunTool, family: Family, dryRun: boolean): Promise<{ transaction?: string; error?: string }>;
}

const iptables: Firewall = {
  name: "iptables",
  rendered: (plan, family) => renderIptables(plan, family).rules.map((r) => `${r.table} ${r.chain} ${r.spec}`).join("\n"),
  // The one iptables-save per event is the verification (iptables-backend.ts): no recorded shortcut.
  sync: (run, plan, family, dryRun) => syncIptables(run, plan, family, dryRun),
  remove: removeIptables,
};

const nftables: Firewall = {
  name: "nftables",
  rendered: (plan, family) => renderNft(plan, family).body,
  sync: syncNftVerified,
  remove: removeNft,
};

export const FIREWALLS: Readonly<Record<BackendName, Firewall>> = { iptables, nftables };

export const firewallFor = (name: BackendName): Firewall => FIREWALLS[name];

/** The backend libvirt is not using (where leftovers of ours are removed after a switch). */
export const otherFirewall = (name: BackendName): Firewall => FIREWALLS[name === "nftables" ? "iptables" : "nftables"];

/**
 * syncNft skips the transaction when our table exists and the hash of what we
 * last applied equals the desired one. That record says what we wrote, not
 * what the kernel holds now: a table someone flushed or edited since would
 * never be repaired. So the record is trusted only while nft's own listing of
 * the table still hashes to what it printed right after our last apply (the
 * one `nft -j -s list ruleset` an event makes, which syncNft then reuses); on
 * any mismatch, or no fingerprint yet, syncNft sees no record and rewrites the
 * whole table. After a transaction the new listing is fingerprinted for the
 * next event.
 */
async function syncNftVerified(run: RunTool, plan: Plan, family: Family, dryRun: boolean, recorded: AppliedFamily | undefined): Promise<FamilySync> {
  const mine = recorded?.backend === "nftables" ? recorded : undefined;
  const seen = await observeNft(run, family);
  const trusted = mine?.kernelHash !== undefined && !("error" in seen) && seen.fingerprint === mine.kernelHash ? mine : undefined;
  const sync = await syncNft(run, plan, family, dryRun, trusted, "error" in seen ? undefined : seen);
  if (sync.error || dryRun) return sync;
  // No transaction: the kernel still holds what the look before saw.
  const kernelHash = sync.transaction === undefined ? ("error" in seen ? undefined : seen.fingerprint) : await nftTableFingerprint(run, family);
  return kernelHash ? { ...sync, kernelHash } : sync;
}
