// What a line from each event source means: pure, one table per source.

/**
 * `nft monitor` prints one line per change to the ruleset (iptables-nft's
 * changes included). Anything that deletes, flushes or inserts can bury or
 * drop our rules; an `add` only matters when it adds a rule (libvirt putting
 * its jumps back, at position 1, above ours). Adds of tables, chains, sets and
 * elements, and the monitor's own comments, are noise here.
 */
export function netfilterChange(line: string): string | undefined {
  const l = line.trim();
  if (l === "" || l.startsWith("#")) return undefined;
  const m = /^(delete|flush|insert|replace|destroy|add)\s+(\S+)(?:\s+(\S+)\s+(\S+))?/.exec(l);
  if (!m) return undefined;
  const [, verb, what, family, table] = m;
  if (verb === "add" && what !== "rule") return undefined;
  if (what === "ruleset") return `${verb} ruleset`;
  return `${verb} ${what}${family && table ? ` in ${family} ${table}` : ""}`;
}

/**
 * `dbus-monitor --system --profile` lines for the two signals libvirt itself
 * listens to (bridge_driver.c, firewalld_dbus_signal_callback): firewalld's
 * Reloaded, and its bus name changing owner (start, restart, stop).
 */
export function firewalldChange(line: string): string | undefined {
  const f = line.split("\t");
  if (f[0] !== "sig") return undefined;
  const member = f[7]?.trim();
  if (member === "Reloaded") return "firewalld reloaded";
  if (member === "NameOwnerChanged") return "firewalld (re)started or stopped";
  return undefined;
}
