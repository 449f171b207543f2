// Drift: where the kernel no longer holds what the rules and the running host
// declare. Compares the desired rules (the same renderers apply uses) with what
// was observed, and explains each difference in the admin's terms. Pure.
import type { Family } from "../net/ip.js";
import { OWNED_CHAINS, SNAT_CHAIN } from "../render/chains.js";
import type { IptablesRuleset } from "../render/iptables.js";
import { inSync } from "../render/iptables-restore.js";
import { observedKey, type ObservedIptables } from "../render/observed.js";
import { libvirtRuleInPlace, type NftObserved } from "../render/nft-transaction.js";
import { NFT_LIBVIRT_TABLE, NFT_TABLE, type NftTable } from "../render/nftables.js";

export type DriftKind =
  | "jump-missing" // our jump is gone from a built-in chain
  | "jump-not-first" // someone (libvirt after a reload) put rules above our jump
  | "jump-duplicated"
  | "chain-missing"
  | "rule-missing" // a rule we should have is not there (or was changed)
  | "rule-unexpected" // a rule in our chain that the rules do not ask for (or a changed one)
  | "rule-order"
  | "element-missing" // nftables: a map or set element of a forward is gone
  | "element-unexpected" // nftables: an element the rules do not ask for
  | "table-missing"
  | "table-unexpected"
  | "table-changed"
  | "accept-missing"
  | "accept-not-first"
  | "accept-duplicated"
  | "accept-unexpected"
  | "not-applied"; // the rules or the host changed since the last apply

export interface DriftItem {
  readonly family: Family;
  readonly backend: "iptables" | "nftables";
  readonly kind: DriftKind;
  /** "filter FORWARD", "nat VIRT_HOOKS_PRE", "ip virt_hooks", ... */
  readonly where: string;
  readonly detail: string;
  /** "FILE:LINE" of the rule concerned, when the kernel rule names one. */
  readonly origin?: string;
}

const originOf = (spec: string) => /--comment "?virt-hooks ([^"\s]+)"?/.exec(spec)?.[1];

export function iptablesDrift(family: Family, desired: IptablesRuleset, observed: ObservedIptables): DriftItem[] {
  const out: DriftItem[] = [];
  const item = (kind: DriftKind, where: string, detail: string, origin?: string) =>
    out.push({ family, backend: "iptables", kind, where, detail, ...(origin ? { origin } : {}) });
  if (inSync(desired, observed)) return out;
  for (const c of [...OWNED_CHAINS, SNAT_CHAIN]) {
    const from = "from" in c ? c.from : undefined;
    const where = `${c.table} ${from ?? ""}`;
    // VIRT_HOOKS_SNAT is entered from our own VIRT_HOOKS_POST: that jump is one of its rules.
    const positions = from === undefined ? [1] : observed.jumps.get(observedKey(c.table, from)) ?? [];
    if (positions.length === 0) item("jump-missing", where, `no -j ${c.name}: nothing of ours in ${from} is reached`);
    else if (positions.length > 1) item("jump-duplicated", where, `-j ${c.name} is there ${positions.length} times (positions ${positions.join(", ")})`);
    else if (positions[0] !== 1) {
      item("jump-not-first", where, `-j ${c.name} is rule ${positions[0]}, behind ${(positions[0] as number) - 1} other rule(s)${from === "FORWARD" ? " (libvirt's REJECTs come first)" : ""}`);
    }
    const have = observed.chains.get(observedKey(c.table, c.name));
    const want = desired.rules.filter((r) => r.table === c.table && r.chain === c.name).map((r) => r.spec);
    const chainWhere = `${c.table} ${c.name}`;
    if (!have) {
      if (from === undefined) {
        if (want.length) item("chain-missing", chainWhere, `the chain is gone (${want.length} rule(s) missing)`);
        continue;
      }
      if (want.length) item("chain-missing", chainWhere, `the chain is gone (${want.length} rule(s) missing)`);
      else if (positions.length) item("chain-missing", chainWhere, "the chain is gone but jumps to it remain");
      continue;
    }
    const left = new Map<string, number>();
    for (const s of have) left.set(s, (left.get(s) ?? 0) + 1);
    let missing = 0;
    for (const s of want) {
      const n = left.get(s) ?? 0;
      if (n > 0) left.set(s, n - 1);
      else { missing++; item("rule-missing", chainWhere, `-A ${c.name} ${s}`, originOf(s)); }
    }
    let extra = 0;
    for (const [s, n] of left) for (let i = 0; i < n; i++) { extra++; item("rule-unexpected", chainWhere, `-A ${c.name} ${s}`, originOf(s)); }
    if (!missing && !extra && have.some((s, i) => s !== want[i])) item("rule-order", chainWhere, "the rules are all there but in another order");
  }
  // inSync said no; say so even if none of the above explains it.
  if (out.length === 0) item("rule-order", "", "the kernel differs from the rules");
  return out;
}

export interface NftDriftInput {
  readonly family: Family;
  readonly desired: NftTable;
  readonly observed: NftObserved;
  /** Rules per chain of our table as the kernel lists them (undefined: not listed). */
  readonly chainRules?: ReadonlyMap<string, number>;
  /** Elements per set/map of our table as the kernel lists them (undefined: not listed). */
  readonly elements?: ReadonlyMap<string, ReadonlyMap<string, unknown>>;
  /** The table hash recorded at the last apply, and the desired one. */
  readonly recordedHash?: string;
  readonly desiredHash: string;
}

export function nftDrift(i: NftDriftInput): DriftItem[] {
  const out: DriftItem[] = [];
  const fam = i.desired.nftFamily;
  const item = (kind: DriftKind, where: string, detail: string) => out.push({ family: i.family, backend: "nftables", kind, where, detail });
  const ours = `${fam} ${NFT_TABLE}`;
  const theirs = `${fam} ${NFT_LIBVIRT_TABLE} forward`;
  const o = i.observed;
  if (i.desired.empty) {
    if (o.ourTable) item("table-unexpected", ours, "our table exists but the rules want nothing in it");
    if (o.libvirtForward.some((r) => r.ours)) item("accept-unexpected", theirs, "our accept is still in libvirt's forward chain");
    return out;
  }
  if (!o.ourTable) item("table-missing", ours, "our table is gone");
  else {
    if (i.recordedHash !== i.desiredHash) item("not-applied", ours, i.recordedHash ? "the table was applied from other rules or another host state" : "no apply recorded since boot");
    if (i.chainRules) {
      const want = new Map<string, number>();
      for (const l of i.desired.lines) {
        const name = l.slice(0, l.indexOf(" "));
        if (["prerouting", "output", "postrouting", "forward"].includes(name)) want.set(name, (want.get(name) ?? 0) + 1);
      }
      for (const chain of ["prerouting", "output", "postrouting", "forward"]) {
        const have = i.chainRules.get(chain) ?? 0;
        const w = want.get(chain) ?? 0;
        if (have !== w) item("table-changed", `${ours} ${chain}`, `${have} rule(s) where the rules want ${w}`);
      }
    }
    if (i.elements) {
      // A forward lives in map and set elements: someone's `nft delete element`
      // stops it without changing a single rule.
      for (const [set, wanted] of i.desired.keyedElements) {
        const have = i.elements.get(set);
        for (const [key, origin] of wanted) {
          if (!have?.has(key)) out.push({ family: i.family, backend: "nftables", kind: "element-missing", where: `${ours} ${set}`, detail: `{ ${key} }`, origin });
        }
        for (const key of have?.keys() ?? []) if (!wanted.has(key)) item("element-unexpected", `${ours} ${set}`, `{ ${key} }`);
      }
    }
  }
  if (o.libvirtTable && !libvirtRuleInPlace(o)) {
    const n = o.libvirtForward.filter((r) => r.ours).length;
    if (n === 0) item("accept-missing", theirs, "our accept is gone: libvirt rejects the forwarded connections");
    else if (n > 1) item("accept-duplicated", theirs, `our accept is there ${n} times`);
    else item("accept-not-first", theirs, `our accept is rule ${o.libvirtForward.findIndex((r) => r.ours) + 1}, behind libvirt's`);
  }
  return out;
}
