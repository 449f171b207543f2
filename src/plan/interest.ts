// Which guests the rules name, and whether any rule exists at all: what an
// event's relevance is decided from (hook/policy.ts), and what the hooks'
// interest record keeps (effects/interest-cache.ts). Pure.
import type { RuleSet } from "../rules/model.js";

/** Names of domains that any rule targets by name: events of other domains cost nothing. */
export interface RuleInterest {
  readonly anyRules: boolean;
  readonly domains: ReadonlySet<string>;
}

export function interestOf(rules: RuleSet): RuleInterest {
  const domains = new Set<string>();
  for (const f of rules.forwards) if (f.target.kind === "domain") domains.add(f.target.name);
  // egress/map (issue 29): their guests' events matter as a forward's do.
  for (const e of rules.egress) if (e.target.kind === "domain") domains.add(e.target.name);
  return { anyRules: rules.forwards.length + rules.masquerades.length + rules.accepts.length + rules.uplinks.length + rules.routes.length + rules.egress.length > 0, domains };
}
