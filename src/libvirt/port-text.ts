// A network port as libvirt formats it, read from the text without the XML
// parser: the `port-created` hooks of a libvirtd restart (one per running
// guest's port, run one after another while libvirtd answers nothing) decide
// from this whether they have anything to do before the parser is loaded
// (hook/recorded-port.ts).
//
// Only libvirt's own formatting is recognised (virNetworkPortDefFormat and the
// domain status file's <interface>: single-quoted attributes, one element per
// line). Anything else, an escaped character included, is "not recognised",
// and the hook takes its full path: this reader may only ever say "the same
// port", never guess.
import { MAC, NAME, UUID } from "./plain-format.js";

export interface PortText {
  /** The network the hook was called for (<hookData><network><name>). */
  readonly network: string;
  /** <networkport><uuid>: the domain status file's <source portid=…>. */
  readonly uuid: string;
  readonly owner: string;
  /** Lower case, as libvirt formats it. */
  readonly mac: string;
}

const NETWORK_NAME = new RegExp(`^\\s*<hookData>\\s*<network\\b[^>]*>\\s*<name>(${NAME})</name>`);
const PORT = new RegExp(
  `<networkport>\\s*<uuid>(${UUID})</uuid>\\s*<owner>\\s*<name>(${NAME})</name>\\s*<uuid>${UUID}</uuid>\\s*</owner>(?:\\s*<group>[^<&]*</group>)?\\s*<mac address='(${MAC})'/>`,
);

/** The port of a `port-created`/`port-deleted` hook's XML, or undefined when it is not libvirt's plain formatting. */
export function portOfHookText(xml: string): PortText | undefined {
  const network = NETWORK_NAME.exec(xml)?.[1];
  const port = PORT.exec(xml);
  if (network === undefined || !port || port.slice(1).some((p) => p === undefined)) return undefined;
  const [, uuid, owner, mac] = port as unknown as [string, string, string, string];
  if (owner === "." || owner === ".." || network === "." || network === "..") return undefined;
  // One network and one port, as libvirt sends them: the first of several would be a guess.
  if (xml.indexOf("<networkport>") !== xml.lastIndexOf("<networkport>") || (xml.match(/<network[\s>]/g) ?? []).length !== 1) return undefined;
  return { network, uuid, owner, mac };
}

/**
 * Whether a domain status file (/run/libvirt/qemu/NAME.xml) already holds this
 * port: an <interface> with its MAC whose source is this network with this
 * very port id. libvirt writes the port id there once the port is the
 * guest's; a hot-plugged NIC's or a starting guest's new port is not there yet.
 */
export function statusHoldsPort(statusText: string, port: PortText): boolean {
  const source = `<source network='${port.network}' portid='${port.uuid}'`;
  for (let at = statusText.indexOf("<interface "); at >= 0; at = statusText.indexOf("<interface ", at + 1)) {
    const end = statusText.indexOf("</interface>", at);
    if (end < 0) return false;
    const element = statusText.slice(at, end);
    if (element.includes(`<mac address='${port.mac}'/>`) && element.includes(source)) return true;
  }
  return false;
}
