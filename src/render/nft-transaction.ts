// One `nft -f` transaction per family: our table replaced whole (declare,
// delete, define: atomic, and idempotent whether or not it existed) and the
// single accept rule kept first in libvirt's `forward` chain, found by its
// handle and comment — never by guessing at rule text.
import { NFT_ACCEPT_MARK, NFT_LIBVIRT_RULE_COMMENT, NFT_LIBVIRT_TABLE, NFT_TABLE, type NftTable } from "./nftables.js";

export interface NftObserved {
  readonly ourTable: boolean;
  readonly libvirtTable: boolean;
  /** Handles of the rules in libvirt's forward chain, in order, with whether each is ours. */
  readonly libvirtForward: readonly { readonly handle: number; readonly ours: boolean }[];
}

export const LIBVIRT_ACCEPT_RULE = `meta mark & 0x${NFT_ACCEPT_MARK.toString(16)} == 0x${NFT_ACCEPT_MARK.toString(16)} counter accept comment "${NFT_LIBVIRT_RULE_COMMENT}"`;

/** Is our accept the first rule of libvirt's forward chain, and the only one of ours? */
export function libvirtRuleInPlace(o: NftObserved): boolean {
  const ours = o.libvirtForward.filter((r) => r.ours);
  return ours.length === 1 && o.libvirtForward[0]?.ours === true;
}

export function renderNftTransaction(desired: NftTable, o: NftObserved): string {
  const fam = desired.nftFamily;
  const out: string[] = [];
  if (!desired.empty || o.ourTable) {
    out.push(`table ${fam} ${NFT_TABLE} {}`, `delete table ${fam} ${NFT_TABLE}`);
  }
  if (!desired.empty) out.push(desired.body.trimEnd());
  if (o.libvirtTable) {
    const keep = !desired.empty && libvirtRuleInPlace(o);
    if (!keep) {
      for (const r of o.libvirtForward) if (r.ours) out.push(`delete rule ${fam} ${NFT_LIBVIRT_TABLE} forward handle ${r.handle}`);
      if (!desired.empty) out.push(`insert rule ${fam} ${NFT_LIBVIRT_TABLE} forward ${LIBVIRT_ACCEPT_RULE}`);
    }
  }
  return out.length ? out.join("\n") + "\n" : "";
}

/** Removal for `flush` and backend switches. */
export function renderNftRemoval(fam: "ip" | "ip6", o: NftObserved): string {
  const out: string[] = [];
  if (o.ourTable) out.push(`delete table ${fam} ${NFT_TABLE}`);
  for (const r of o.libvirtForward) if (r.ours) out.push(`delete rule ${fam} ${NFT_LIBVIRT_TABLE} forward handle ${r.handle}`);
  return out.length ? out.join("\n") + "\n" : "";
}
