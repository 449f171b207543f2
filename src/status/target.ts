// How a domain's NICs lead to addresses: which network each NIC is on, which
// DHCP <host> entry gives it a fixed address, and what dnsmasq leased it. The
// explanation behind resolvePlan's answer (status, explain). Pure.
import type { Family } from "../net/ip.js";
import type { DomainInfo, DomainInterface } from "../libvirt/domain.js";
import type { NetworkInfo } from "../libvirt/network.js";
import type { HostView } from "../host/view.js";
import type { Lease } from "../libvirt/leases.js";

export interface FixedAddress {
  readonly family: Family;
  readonly address: string;
  /** How the DHCP <host> entry was matched: by this NIC's MAC, or (MAC-less, IPv6) by the domain's name. */
  readonly matchedBy: "mac" | "name";
}

export interface NicResolution {
  readonly mac: string;
  readonly type: string;
  readonly tap?: string;
  /** The network by name (type='network') or the one whose bridge it is on. */
  readonly network?: string;
  readonly networkActive: boolean;
  readonly bridge?: string;
  readonly fixed: readonly FixedAddress[];
  /** dnsmasq's leases for this MAC on the network's bridge. */
  readonly leases: readonly Lease[];
}

function networkOf(nic: DomainInterface, view: HostView): NetworkInfo | undefined {
  if (nic.network) return view.networks.get(nic.network);
  if (nic.bridge) return [...view.networks.values()].find((n) => n.bridge === nic.bridge);
  return undefined;
}

export function resolveNics(domain: DomainInfo, view: HostView, leasesOf: (bridge: string) => readonly Lease[]): NicResolution[] {
  return domain.interfaces.map((nic) => {
    const network = networkOf(nic, view);
    const bridge = network?.bridge ?? nic.bridge;
    const fixed: FixedAddress[] = [];
    for (const subnet of network?.subnets ?? []) {
      for (const h of subnet.dhcpHosts) {
        const by = h.mac ? (h.mac === nic.mac ? "mac" : undefined) : h.name === domain.name ? "name" : undefined;
        if (by && !fixed.some((f) => f.address === h.address)) fixed.push({ family: subnet.family, address: h.address, matchedBy: by });
      }
    }
    const leases = bridge ? leasesOf(bridge).filter((l) => l.mac === nic.mac) : [];
    const networkName = network?.name ?? nic.network;
    return {
      mac: nic.mac,
      type: nic.type,
      ...(nic.tap ? { tap: nic.tap } : {}),
      ...(networkName ? { network: networkName } : {}),
      networkActive: network !== undefined,
      ...(bridge ? { bridge } : {}),
      fixed,
      leases,
    };
  });
}

export interface LeaseCheck {
  readonly nic: NicResolution;
  /** The lease of the address's family, if dnsmasq has one. */
  readonly lease?: Lease;
  /** A lease exists and it is not the fixed address we forward to. */
  readonly differs: boolean;
}

/** The NIC that owns a fixed address we forward to, and how its lease compares. */
export function leaseFor(nics: readonly NicResolution[], address: string, family: Family): LeaseCheck | undefined {
  const nic = nics.find((n) => n.fixed.some((f) => f.address === address));
  if (!nic) return undefined;
  const same = nic.leases.filter((l) => (l.ip.includes(":") ? 6 : 4) === family);
  const lease = same.find((l) => l.ip === address) ?? same[0];
  return { nic, ...(lease ? { lease } : {}), differs: lease !== undefined && lease.ip !== address };
}
