// The edge of status: reads the kernel (iptables-save -c, nft -j) once per
// family and turns it into drift and counters with the pure modules beside it.
// Never writes anything and never takes the lock: status is safe to run from
// monitoring at any rate.
import type { Family } from "../net/ip.js";
import type { Plan } from "../plan/intents.js";
import type { RunTool } from "../effects/exec.js";
import { readState, type AppliedFamily } from "../effects/state-store.js";
import type { BackendName } from "../host/backend.js";
import { parseIptablesSave } from "../render/observed.js";
import { renderIptables } from "../render/iptables.js";
import { NFT_TABLE, renderNft } from "../render/nftables.js";
import { observeNft, tableHash } from "../apply/nft-backend.js";
import { iptablesCounters, nftCounters, withoutCounters, type CountersByOrigin, type NftObservation } from "./counters.js";
import { iptablesDrift, nftDrift, type DriftItem } from "./drift.js";

export interface FirewallObservation {
  readonly counters: CountersByOrigin;
  readonly nft: Map<Family, NftObservation>;
  readonly drift: DriftItem[];
  /** Families whose firewall could not be read although we have (or want) rules there. */
  readonly errors: { family: Family; message: string }[];
}

type Observer = (run: RunTool, plan: Plan, family: Family, recorded: AppliedFamily | undefined, out: FirewallObservation) => Promise<void>;

/** One family's counters and drift, read the way each backend is read: the backend is picked once, below. */
const OBSERVERS: Readonly<Record<BackendName, Observer>> = {
  iptables: async (run, plan, family, recorded, out) => {
    const desired = renderIptables(plan, family);
    const wanted = desired.rules.length > 0 || recorded !== undefined;
    const tool = family === 4 ? "iptables-save" : "ip6tables-save";
    const r = await run(tool, ["-c"]);
    if (r.exitCode !== 0) {
      if (wanted) out.errors.push({ family, message: `${tool} failed (exit ${r.exitCode}): ${r.stderr.trim()}` });
      return;
    }
    out.drift.push(...iptablesDrift(family, desired, parseIptablesSave(withoutCounters(r.stdout))));
    iptablesCounters(r.stdout, out.counters);
  },
  nftables: async (run, plan, family, recorded, out) => {
    const desired = renderNft(plan, family);
    const wanted = !desired.empty || recorded !== undefined;
    const o = await observeNft(run, family);
    if ("error" in o) {
      if (wanted) out.errors.push({ family, message: o.error });
      return;
    }
    let obs: NftObservation | undefined;
    if (o.ourTable) {
      const t = await run("nft", ["-j", "list", "table", family === 4 ? "ip" : "ip6", NFT_TABLE]);
      if (t.exitCode === 0) {
        try {
          obs = nftCounters(t.stdout, out.counters);
          out.nft.set(family, obs);
        } catch (e) {
          out.errors.push({ family, message: `nft -j list table: unreadable output (${(e as Error).message})` });
        }
      }
    }
    out.drift.push(
      ...nftDrift({
        family,
        desired,
        observed: o,
        ...(obs ? { chainRules: obs.chainRules, elements: obs.elements } : {}),
        ...(recorded?.backend === "nftables" && recorded.hash ? { recordedHash: recorded.hash } : {}),
        desiredHash: tableHash(desired.body),
      }),
    );
  },
};

export async function observeFirewall(run: RunTool, plan: Plan, backend: BackendName, stateDir: string): Promise<FirewallObservation> {
  const state = readState(stateDir);
  const out: FirewallObservation = { counters: new Map(), nft: new Map(), drift: [], errors: [] };
  const observe = OBSERVERS[backend];
  for (const family of [4, 6] as const) await observe(run, plan, family, state.families[`ipv${family}`], out);
  return out;
}
