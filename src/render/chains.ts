// The chains we own on the iptables backend, and the built-in chain each one
// is entered from. Nothing else in iptables is ever written by us except the
// single jump from each built-in chain (placed first, re-asserted every time).
export type Table = "nat" | "filter";

export interface OwnedChain {
  readonly table: Table;
  readonly name: string;
  readonly from: string;
}

export const OWNED_CHAINS: readonly OwnedChain[] = [
  { table: "nat", name: "VIRT_HOOKS_PRE", from: "PREROUTING" },
  { table: "nat", name: "VIRT_HOOKS_OUT", from: "OUTPUT" },
  { table: "nat", name: "VIRT_HOOKS_POST", from: "POSTROUTING" },
  // Above libvirt's -j LIBVIRT_FWX/FWI/FWO, whose REJECTs would end a forward.
  { table: "filter", name: "VIRT_HOOKS_FWD", from: "FORWARD" },
];

export const chainNamed = (name: string) => OWNED_CHAINS.find((c) => c.name === name) as OwnedChain;

/**
 * Entered from our own VIRT_HOOKS_POST, never from a built-in chain: egress
 * SNAT after its exclusions, so a RETURN for an excluded destination resumes
 * VIRT_HOOKS_POST (the nftables backend writes the same as one rule with a
 * negated set). It exists only while an egress or map statement is live.
 */
export const SNAT_CHAIN = { table: "nat", name: "VIRT_HOOKS_SNAT" } as const satisfies { table: Table; name: string };
