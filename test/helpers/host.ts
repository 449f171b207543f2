// Small HostView builders for resolver and renderer tests.
import type { HostView } from "../../src/host/view.js";
import type { DomainInfo } from "../../src/libvirt/domain.js";
import { parseNetworkHookXml, type NetworkInfo } from "../../src/libvirt/network.js";

export function network(name: string, bridge: string, mode: string, ipXml: string): NetworkInfo {
  const forward = mode === "isolated" ? "" : `<forward mode='${mode}'/>`;
  return parseNetworkHookXml(`<hookData><network><name>${name}</name>${forward}<bridge name='${bridge}'/>${ipXml}</network></hookData>`).network;
}

export const defaultNet = network(
  "default",
  "virbr0",
  "nat",
  `<ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.100' end='192.168.122.254'/>
     <host mac='52:54:00:6c:3c:11' name='devstack' ip='192.168.122.11'/>
     <host mac='52:54:00:6c:3c:12' name='vm2' ip='192.168.122.12'/></dhcp></ip>`,
);

export const routeNet = network(
  "route",
  "virbr1",
  "route",
  `<ip address='192.168.100.1' prefix='24'><dhcp><range start='192.168.100.128' end='192.168.100.254'/>
     <host mac='52:54:00:00:01:01' name='web' ip='192.168.100.10'/></dhcp></ip>`,
);

export function domain(name: string, nics: [mac: string, network: string][]): DomainInfo {
  return { name, interfaces: nics.map(([mac, net]) => ({ mac, type: "network", network: net })) };
}

export function view(domains: DomainInfo[], networks: NetworkInfo[]): HostView {
  return { domains: new Map(domains.map((d) => [d.name, d])), networks: new Map(networks.map((n) => [n.name, n])) };
}
