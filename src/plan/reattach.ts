// net-destroy + net-start leaves running guests' taps off the new bridge (and
// libvirt forgets their ports) until the daemon restarts. This plans what
// libvirt's own re-attach would do: tap on the bridge, MTU, isolation, up.
import type { DomainInfo } from "../libvirt/domain.js";
import type { NetworkInfo } from "../libvirt/network.js";

export interface LinkState {
  /** The bridge a device is enslaved to, or undefined when it is free. */
  readonly master?: string;
  readonly up: boolean;
}

export interface ReattachAction {
  readonly domain: string;
  readonly tap: string;
  readonly bridge: string;
  readonly mtu?: number;
  readonly isolated: boolean;
  readonly vlanTags?: readonly number[];
}

/**
 * `links` holds only the devices that exist: a tap that is gone (its guest
 * stopped meanwhile) is left alone, as is one already on the bridge and up.
 */
export function planReattach(
  network: NetworkInfo,
  domains: Iterable<DomainInfo>,
  links: ReadonlyMap<string, LinkState>,
  bridgeMtu?: number,
): ReattachAction[] {
  const bridge = network.bridge;
  if (!bridge) return [];
  const actions: ReattachAction[] = [];
  for (const d of domains) {
    for (const nic of d.interfaces) {
      const belongs = nic.network === network.name || (nic.type === "bridge" && nic.bridge === bridge);
      if (!belongs || !nic.tap) continue;
      const link = links.get(nic.tap);
      if (!link || (link.master === bridge && link.up)) continue;
      const mtu = nic.mtu ?? bridgeMtu;
      actions.push({
        domain: d.name,
        tap: nic.tap,
        bridge,
        ...(mtu ? { mtu } : {}),
        isolated: nic.isolated === true,
        ...(nic.vlanTags?.length ? { vlanTags: nic.vlanTags } : {}),
      });
    }
  }
  return actions;
}

/** One `ip -batch` script for all actions: one process, whatever the number of guests. */
export function renderIpBatch(actions: readonly ReattachAction[]): string {
  const lines: string[] = [];
  for (const a of actions) {
    lines.push(`link set dev ${a.tap} master ${a.bridge}`);
    if (a.mtu) lines.push(`link set dev ${a.tap} mtu ${a.mtu}`);
    if (a.isolated) lines.push(`link set dev ${a.tap} type bridge_slave isolated on`);
    lines.push(`link set dev ${a.tap} up`);
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}
