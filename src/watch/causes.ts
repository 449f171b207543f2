// The "after …" part of a watcher repair's log line. One reconcile gathers every
// event of a burst, and a firewalld reload or `nft flush ruleset` is dozens of
// netfilter lines: the line names the D-Bus causes as they are and folds the
// netfilter ones into the tables they touched, so the journal line stays short.
const NETFILTER = /^(?:delete|flush|insert|replace|destroy|add) (\S+)(?: in (\S+ \S+))?$/;
const MAX_TABLES = 3;

export function describeCauses(why: readonly string[]): string {
  const named: string[] = [];
  const tables: string[] = [];
  let netfilter = 0;
  for (const w of why) {
    const m = NETFILTER.exec(w);
    if (!m) { named.push(w); continue; }
    netfilter++;
    const where = m[1] === "ruleset" ? "the whole ruleset" : m[2] ?? m[1]!;
    if (!tables.includes(where)) tables.push(where);
  }
  if (netfilter === 0) return named.join(", ");
  const shown = tables.slice(0, MAX_TABLES).join(", ");
  const more = tables.length > MAX_TABLES ? ` and ${tables.length - MAX_TABLES} more` : "";
  const nf = `netfilter changes in ${shown}${more}`;
  return named.length ? `${named.join(", ")}; ${nf}` : nf;
}
