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
