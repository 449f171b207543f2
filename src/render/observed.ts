// What iptables-save says about the parts we care about: where our jumps stand
// in the built-in chains, which of our chains exist, and their current rules.
import { OWNED_CHAINS, SNAT_CHAIN, type Table } from "./chains.js";

export interface ObservedIptables {
  /** For each built-in chain we jump from: 1-based positions of our exact jump. */
  readonly jumps: ReadonlyMap<string, readonly number[]>;
  /** Our chains that exist, with their rules' specs ("-A CHAIN" stripped). */
  readonly chains: ReadonlyMap<string, readonly string[]>;
  /** Rules elsewhere that jump into one of our chains in a way we did not write. */
  readonly foreignJumps: readonly string[];
}

const key = (table: Table, chain: string) => `${table}/${chain}`;

export function parseIptablesSave(text: string): ObservedIptables {
  const jumps = new Map<string, number[]>();
  const chains = new Map<string, string[]>();
  const foreignJumps: string[] = [];
  const counts = new Map<string, number>();
  const ours = new Set([...OWNED_CHAINS.map((c) => c.name), SNAT_CHAIN.name]);
  let table: string | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) { table = line.slice(1).trim(); continue; }
    if (table !== "nat" && table !== "filter") continue;
    if (line.startsWith(":")) {
      const name = line.slice(1).split(" ")[0] as string;
      if (ours.has(name)) chains.set(key(table, name), []);
      continue;
    }
    if (!line.startsWith("-A ")) continue;
    const rest = line.slice(3);
    const space = rest.indexOf(" ");
    const chain = space < 0 ? rest : rest.slice(0, space);
    const spec = space < 0 ? "" : rest.slice(space + 1);
    const k = key(table, chain);
    const position = (counts.get(k) ?? 0) + 1;
    counts.set(k, position);
    if (ours.has(chain)) {
      chains.get(k)?.push(spec);
      continue;
    }
    const owned = OWNED_CHAINS.find((c) => c.table === table && c.from === chain && spec === `-j ${c.name}`);
    if (owned) {
      const list = jumps.get(k) ?? [];
      list.push(position);
      jumps.set(k, list);
    } else if ([...ours].some((name) => spec.endsWith(`-j ${name}`) || spec.includes(`-j ${name} `) || spec.includes(`-g ${name}`))) {
      foreignJumps.push(`-t ${table} -A ${chain} ${spec}`);
    }
  }
  return { jumps, chains, foreignJumps };
}

export const observedKey = key;

/**
 * What `nft -j -s list ruleset ip|ip6` says about the parts we care about, in
 * one listing (issue 15: it replaced `list tables`, `list chain … forward` and
 * `-s list table`, three processes an event): whether our table and libvirt's
 * exist, the rules of libvirt's `forward` chain in order (handle, ours or not),
 * and a fingerprint of everything in our table. `-s` (stateless) lists
 * counters as null, so traffic does not change the fingerprint; handles do
 * appear in it, and change only when a table, chain, rule or set is rewritten.
 */
export interface NftRulesetObserved {
  readonly ourTable: boolean;
  readonly libvirtTable: boolean;
  readonly libvirtForward: readonly { readonly handle: number; readonly ours: boolean }[];
  /** JSON of our table's objects in listing order, one per line ("" when absent): what is fingerprinted. */
  readonly ourTableText: string;
}

interface NftItem {
  readonly [kind: string]: { readonly family?: string; readonly name?: string; readonly table?: string; readonly chain?: string; readonly handle?: number; readonly comment?: string } | undefined;
}

export function parseNftRuleset(json: string, fam: "ip" | "ip6", names: { readonly ours: string; readonly libvirt: string; readonly libvirtComment: string }): NftRulesetObserved {
  const items = ((JSON.parse(json) as { nftables?: NftItem[] }).nftables ?? []);
  let ourTable = false;
  let libvirtTable = false;
  let libvirtChain = false;
  const libvirtForward: { handle: number; ours: boolean }[] = [];
  const ourText: string[] = [];
  for (const item of items) {
    const kind = Object.keys(item)[0];
    const o = kind === undefined ? undefined : item[kind];
    if (!o || kind === "metainfo" || o.family !== fam) continue;
    const table = kind === "table" ? o.name : o.table;
    if (table === names.ours) {
      if (kind === "table") ourTable = true;
      ourText.push(JSON.stringify(item));
    } else if (table === names.libvirt) {
      if (kind === "table") libvirtTable = true;
      else if (kind === "chain" && o.name === "forward") libvirtChain = true;
      else if (kind === "rule" && o.chain === "forward" && typeof o.handle === "number") libvirtForward.push({ handle: o.handle, ours: o.comment === names.libvirtComment });
    }
  }
  // libvirt's table without a forward chain: nothing of libvirt's to sit in front of.
  const withChain = libvirtTable && libvirtChain;
  return { ourTable, libvirtTable: withChain, libvirtForward: withChain ? libvirtForward : [], ourTableText: ourTable ? ourText.join("\n") : "" };
}
