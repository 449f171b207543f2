// What the kernel holds in our nftables table, as a short hash of nft's own
// stateless listing (`-s`: no counters, so traffic does not change it). Taken
// right after we apply, and compared before we trust a recorded "already in
// sync": a table someone flushed or edited since then no longer matches.
import { createHash } from "node:crypto";
import type { Family } from "../net/ip.js";
import { NFT_TABLE } from "../render/nftables.js";
import type { RunTool } from "./exec.js";

/** undefined when the table is absent or nft fails: never equal to a recorded fingerprint. */
export async function nftTableFingerprint(run: RunTool, family: Family): Promise<string | undefined> {
  const r = await run("nft", ["-s", "list", "table", family === 4 ? "ip" : "ip6", NFT_TABLE]);
  if (r.exitCode !== 0) return undefined;
  return createHash("sha256").update(r.stdout).digest("hex").slice(0, 16);
}
