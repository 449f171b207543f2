// Every path the program touches, in one value passed down from main. Tests
// point VIRT_HOOKS_ROOT at a scratch tree; libvirt clears the environment of
// hooks, so in production it is always the real filesystem.
import { join } from "node:path";

export interface Paths {
  readonly hooksDir: string;
  readonly rulesDir: string;
  readonly libvirtRunDir: string;
  readonly stateDir: string;
  /**
   * Which DHCP host entries virt-hooks added to libvirt's networks (`host`
   * rules). Persistent, as those entries are; beside libvirt's own state of
   * its networks (/var/lib/libvirt), so that it goes with libvirt's. The units
   * may write there: StateDirectory=libvirt/virt-hooks (their sandbox).
   */
  readonly ownedHostsFile: string;
  /** dnsmasq's lease status files: <bridge>.status (JSON). */
  readonly dnsmasqDir: string;
  /** Persistent domain definitions (names of guests that exist but may not run). */
  readonly qemuConfigDir: string;
  /** libvirt's network driver config: firewall_backend. */
  readonly networkConf: string;
  /** firewalld's main config: StrictForwardPorts (lint only). */
  readonly firewalldConf: string;
  readonly journalSocket: string;
  readonly syslogSocket: string;
}

export function defaultPaths(root = process.env.VIRT_HOOKS_ROOT ?? ""): Paths {
  const at = (p: string) => (root ? join(root, p) : p);
  return {
    hooksDir: at("/etc/libvirt/hooks"),
    rulesDir: at("/etc/libvirt/hooks/rules.d"),
    libvirtRunDir: at("/run/libvirt"),
    stateDir: at("/run/virt-hooks"),
    ownedHostsFile: at("/var/lib/libvirt/virt-hooks/fixed-addresses.json"),
    dnsmasqDir: at("/var/lib/libvirt/dnsmasq"),
    qemuConfigDir: at("/etc/libvirt/qemu"),
    networkConf: at("/etc/libvirt/network.conf"),
    firewalldConf: at("/etc/firewalld/firewalld.conf"),
    journalSocket: at("/run/systemd/journal/stdout"),
    syslogSocket: at("/dev/log"),
  };
}
