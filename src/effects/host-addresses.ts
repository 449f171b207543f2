// The host's own addresses, from the kernel through os.networkInterfaces()
// (getifaddrs: no process spawned). Read for egress and map statements only,
// which wait while their address is not this host's (plan/egress.ts), and by
// check's lint.
import { networkInterfaces } from "node:os";
import { canonicalAddress } from "../net/ip.js";
import type { HostView } from "../host/view.js";
import type { RuleSet } from "../rules/model.js";

export function readHostAddresses(): string[] | undefined {
  try {
    const out = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) {
        const c = canonicalAddress(a.address.replace(/%.*$/, ""));
        if (c) out.add(c);
      }
    }
    return [...out];
  } catch {
    return undefined;
  }
}

/** The view with the host's addresses, when egress or map statements need them and they are not there yet. */
export function withLocalAddresses(view: HostView, rules: Pick<RuleSet, "egress">, read: () => string[] | undefined = readHostAddresses): HostView {
  if (rules.egress.length === 0 || view.localAddresses) return view;
  const addresses = read();
  return addresses ? { ...view, localAddresses: new Set(addresses) } : view;
}
