// Which firewall backend libvirt uses, so our rules go where libvirt's are.
// What libvirt recorded for its running networks is the truth; network.conf
// is what it will use next; an explicit `set backend` overrides both.
import type { HostView } from "./view.js";

export type BackendName = "iptables" | "nftables";
export type BackendSetting = "auto" | BackendName;

export interface BackendChoice {
  readonly backend: BackendName;
  readonly why: string;
}

/** `firewall_backend = "nftables"` from /etc/libvirt/network.conf, if set. */
export function parseNetworkConf(text: string | undefined): BackendName | undefined {
  if (!text) return undefined;
  for (const line of text.split("\n")) {
    const m = /^\s*firewall_backend\s*=\s*"(iptables|nftables)"\s*(#.*)?$/.exec(line);
    if (m) return m[1] as BackendName;
  }
  return undefined;
}

export function chooseBackend(setting: BackendSetting, view: HostView, networkConf: string | undefined): BackendChoice {
  if (setting !== "auto") return { backend: setting, why: "set backend" };
  const used = new Set<BackendName>();
  for (const n of view.networks.values()) {
    if (n.firewallBackend === "iptables" || n.firewallBackend === "nftables") used.add(n.firewallBackend);
  }
  const conf = parseNetworkConf(networkConf);
  if (used.size === 1) return { backend: [...used][0] as BackendName, why: "libvirt's running networks" };
  if (conf) return { backend: conf, why: "network.conf" };
  if (used.has("nftables")) return { backend: "nftables", why: "libvirt's running networks" };
  return { backend: "iptables", why: "default" };
}

/**
 * How each backend is named where an admin reads it (the hook's log line, the
 * CLI's transaction header): a table, not a test of the name at each place.
 * Pure and tiny: the hook's first stage uses it without loading the backends.
 */
export const BACKEND_TEXT: Readonly<Record<BackendName, { readonly prefix: string; readonly tool: (family: 4 | 6) => string }>> = {
  iptables: { prefix: "", tool: (f) => `${f === 4 ? "iptables" : "ip6tables"}-restore --noflush --wait` },
  nftables: { prefix: "nft ", tool: () => "nft -f -" },
};
