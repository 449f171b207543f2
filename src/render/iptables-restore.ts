// One iptables-restore --noflush transaction that makes our chains exactly the
// desired rules and puts each jump first in its built-in chain. Declaring a
// chain (":NAME - [0:0]") under --noflush creates or empties it; the built-in
// chains themselves are never flushed, so libvirt's and others' rules stay.
import { OWNED_CHAINS, SNAT_CHAIN, type Table } from "./chains.js";
import type { IptablesRuleset } from "./iptables.js";
import { observedKey, type ObservedIptables } from "./observed.js";

// iptables-restore commits each table at its own COMMIT, so one run is not one
// kernel transaction. filter goes first: if its part is refused nothing has
// changed yet, and a forward's ACCEPT never lags behind its DNAT (a DNAT'd flow
// without its ACCEPT would die in libvirt's REJECT).
const TABLES: readonly Table[] = ["filter", "nat"];

export function renderRestore(desired: IptablesRuleset, observed: ObservedIptables): string {
  const out: string[] = [];
  for (const table of TABLES) {
    out.push(`*${table}`);
    const chains = OWNED_CHAINS.filter((c) => c.table === table);
    for (const c of chains) out.push(`:${c.name} - [0:0]`);
    for (const c of chains) {
      const positions = observed.jumps.get(observedKey(table, c.from)) ?? [];
      if (positions.length === 1 && positions[0] === 1) continue;
      for (let i = 0; i < positions.length; i++) out.push(`-D ${c.from} -j ${c.name}`);
      out.push(`-I ${c.from} 1 -j ${c.name}`);
    }
    const snat = table === SNAT_CHAIN.table ? snatChainState(desired, observed) : undefined;
    // Declared (created or emptied) before the rule of VIRT_HOOKS_POST that jumps to it.
    if (snat?.wanted || snat?.present) out.push(`:${SNAT_CHAIN.name} - [0:0]`);
    for (const r of desired.rules) if (r.table === table) out.push(`-A ${r.chain} ${r.spec}`);
    // No longer used: VIRT_HOOKS_POST above no longer jumps to it.
    if (snat?.present && !snat.wanted) out.push(`-X ${SNAT_CHAIN.name}`);
    out.push("COMMIT");
  }
  return out.join("\n") + "\n";
}

function snatChainState(desired: IptablesRuleset, observed: ObservedIptables) {
  return { wanted: desired.rules.some((r) => r.chain === SNAT_CHAIN.name), present: observed.chains.has(observedKey(SNAT_CHAIN.table, SNAT_CHAIN.name)) };
}

/**
 * Puts our chains back to what was observed before a transaction that the tool
 * refused part-way (an earlier table's COMMIT already took effect). Jumps are
 * left where they are: one of ours first is never wrong. A chain that did not
 * exist before is emptied rather than deleted, since a jump may point at it.
 */
export function renderRollback(observed: ObservedIptables): string {
  const out: string[] = [];
  for (const table of TABLES) {
    const chains = OWNED_CHAINS.filter((c) => c.table === table);
    // VIRT_HOOKS_SNAT only if it was there: a nat table refused as a whole changed nothing.
    const snat = table === SNAT_CHAIN.table && observed.chains.has(observedKey(SNAT_CHAIN.table, SNAT_CHAIN.name)) ? [SNAT_CHAIN] : [];
    out.push(`*${table}`, ...[...chains, ...snat].map((c) => `:${c.name} - [0:0]`));
    for (const c of [...chains, ...snat]) for (const spec of observed.chains.get(observedKey(table, c.name)) ?? []) out.push(`-A ${c.name} ${spec}`);
    out.push("COMMIT");
  }
  return out.join("\n") + "\n";
}

/** Removes our jumps and chains: `flush` and `install.sh --uninstall`. */
export function renderRemoval(observed: ObservedIptables): string | undefined {
  const out: string[] = [];
  for (const table of TABLES) {
    const chains: { name: string }[] = OWNED_CHAINS.filter((c) => c.table === table && observed.chains.has(observedKey(table, c.name)));
    if (table === SNAT_CHAIN.table && observed.chains.has(observedKey(table, SNAT_CHAIN.name))) chains.push(SNAT_CHAIN);
    const jumpLines = OWNED_CHAINS.filter((c) => c.table === table).flatMap((c) =>
      (observed.jumps.get(observedKey(table, c.from)) ?? []).map(() => `-D ${c.from} -j ${c.name}`),
    );
    if (chains.length === 0 && jumpLines.length === 0) continue;
    out.push(`*${table}`, ...jumpLines);
    for (const c of chains) out.push(`-F ${c.name}`);
    for (const c of chains) out.push(`-X ${c.name}`);
    out.push("COMMIT");
  }
  return out.length ? out.join("\n") + "\n" : undefined;
}

/** Does the kernel hold exactly the desired rules with every jump first? */
export function inSync(desired: IptablesRuleset, observed: ObservedIptables): boolean {
  // Nothing wanted and nothing of ours there: leave the family alone entirely.
  if (desired.rules.length === 0 && observed.chains.size === 0 && observed.jumps.size === 0) return true;
  for (const c of OWNED_CHAINS) {
    const positions = observed.jumps.get(observedKey(c.table, c.from)) ?? [];
    if (positions.length !== 1 || positions[0] !== 1) return false;
    const have = observed.chains.get(observedKey(c.table, c.name));
    const want = desired.rules.filter((r) => r.table === c.table && r.chain === c.name).map((r) => r.spec);
    if (!have || have.length !== want.length || have.some((s, i) => s !== want[i])) return false;
  }
  const have = observed.chains.get(observedKey(SNAT_CHAIN.table, SNAT_CHAIN.name));
  const want = desired.rules.filter((r) => r.chain === SNAT_CHAIN.name).map((r) => r.spec);
  if (have === undefined ? want.length > 0 : have.length !== want.length || have.some((s, i) => s !== want[i])) return false;
  return true;
}
