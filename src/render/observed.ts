// What iptables-save says about the parts we care about: where our jumps stand
// in the built-in chains, which of our chains exist, and their current rules.
import { OWNED_CHAINS, type Table } from "./chains.js";

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
  const ours = new Set(OWNED_CHAINS.map((c) => c.name));
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
