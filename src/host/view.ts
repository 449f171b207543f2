// What libvirt is running right now, as one value: the input to resolution.
// Built from libvirt's status files, then corrected by the event being handled
// (the files lag behind the hook: a starting domain has no status file yet, a
// stopping one may still have one).
import type { DomainInfo } from "../libvirt/domain.js";
import type { NetworkInfo } from "../libvirt/network.js";

export interface HostView {
  readonly domains: ReadonlyMap<string, DomainInfo>;
  readonly networks: ReadonlyMap<string, NetworkInfo>;
  /**
   * The host's own addresses (canonical), read only when egress or map
   * statements need them (effects/host-addresses.ts); undefined: not known,
   * and such statements do not wait for their address.
   */
  readonly localAddresses?: ReadonlySet<string>;
}

export type Correction =
  | { readonly kind: "domain-up"; readonly domain: DomainInfo }
  | { readonly kind: "domain-down"; readonly name: string }
  | { readonly kind: "network-up"; readonly network: NetworkInfo }
  | { readonly kind: "network-down"; readonly name: string }
  /** A NIC plugged into a running domain (hotplug: its status file lags). */
  | { readonly kind: "port-up"; readonly owner: string; readonly mac: string; readonly network: string; readonly bridge?: string }
  /** A NIC hot-unplugged from a running domain. */
  | { readonly kind: "port-down"; readonly owner: string; readonly mac: string };

export function correctView(view: HostView, corrections: readonly Correction[]): HostView {
  const domains = new Map(view.domains);
  const networks = new Map(view.networks);
  for (const c of corrections) {
    switch (c.kind) {
      case "domain-up":
        domains.set(c.domain.name, c.domain);
        break;
      case "domain-down":
        domains.delete(c.name);
        break;
      case "network-up": {
        // The hook's XML lacks the status file's backend; keep what we knew.
        const known = networks.get(c.network.name);
        networks.set(c.network.name, known?.firewallBackend && !c.network.firewallBackend ? { ...c.network, firewallBackend: known.firewallBackend } : c.network);
        break;
      }
      case "network-down":
        networks.delete(c.name);
        break;
      case "port-up": {
        const d = domains.get(c.owner);
        if (d && !d.interfaces.some((i) => i.mac === c.mac)) {
          domains.set(d.name, { ...d, interfaces: [...d.interfaces, { mac: c.mac, type: "network", network: c.network, ...(c.bridge ? { bridge: c.bridge } : {}) }] });
        }
        break;
      }
      case "port-down": {
        const d = domains.get(c.owner);
        if (!d) break;
        const left = d.interfaces.filter((i) => i.mac !== c.mac);
        // Its last NIC on a libvirt network released while its status file
        // still says running: libvirt is letting the domain go (an outgoing
        // migration or a shutdown releases ports before \`stopped\`), or its only
        // NIC was unplugged. Either way nothing can reach it now: its forwards
        // wait, as for a stopped guest, instead of failing with not-attached
        // (which logged a false error on every ordinary migration).
        const hadNetwork = d.interfaces.some((i) => i.network !== undefined);
        if (hadNetwork && !left.some((i) => i.network !== undefined)) domains.delete(d.name);
        else domains.set(d.name, { ...d, interfaces: left });
        break;
      }
    }
  }
  return { ...view, domains, networks };
}

export const emptyView: HostView = { domains: new Map(), networks: new Map() };
