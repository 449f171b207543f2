// --help texts, one per command, in the tone of systemctl/ip: what it does,
// options, exit status.
import type { Command } from "./args.js";

export const EXIT_CODES = `Exit status:
  0  success
  1  the rule files have errors (nothing was applied)
  2  usage error
  3  the firewall refused the change, or the lock could not be taken
  4  applied, but some rules could not be resolved (see the messages)`;

const COMMON = `  --rules-dir DIR   read rules from DIR instead of /etc/libvirt/hooks/rules.d
  -v, --verbose     also print the rendered firewall transaction
  -h, --help        this help`;

export const HELP: Record<Command, string> = {
  help: `Usage: virt-hooks COMMAND [OPTIONS]

Publish libvirt guests' ports and glue libvirt networks together, from rule
files in /etc/libvirt/hooks/rules.d/*.rules, re-applied on every libvirt event.

Commands:
  check     validate the rule files (and resolve them against running guests)
  plan      show what apply would change now; changes nothing
  apply     reconcile the firewall with the rules now
  flush     remove every firewall rule and chain of ours
  version   print the version

Installed as /etc/libvirt/hooks/qemu and /etc/libvirt/hooks/network, the same
program runs as libvirt's hook (it never prints to stdout there).

Options:
${COMMON}
  -V, --version     print the version

${EXIT_CODES}
See virt-hooks COMMAND --help and the README for the rule language.`,
  check: `Usage: virt-hooks check [--rules-dir DIR]

Parse every *.rules file, report errors as file:line:col with a fix, and
resolve each rule against the running guests and networks (readable as root).

${COMMON}

${EXIT_CODES}`,
  plan: `Usage: virt-hooks plan [--rules-dir DIR]

Print each rule's state (live, waiting, failed) and the exact firewall
transaction apply would run now. Changes nothing.

${COMMON}

${EXIT_CODES}`,
  apply: `Usage: virt-hooks apply [--rules-dir DIR]

Reconcile now: compute the whole desired state from the rules and what libvirt
runs, and replace our chains in one transaction per address family. Refuses to
apply anything while the rule files have errors.

${COMMON}

${EXIT_CODES}`,
  flush: `Usage: virt-hooks flush

Remove our jumps and chains (VIRT_HOOKS_*) from iptables, IPv4 and IPv6.
libvirt's own rules are not touched. The next libvirt event or apply puts
them back unless the hooks are uninstalled.

${EXIT_CODES}`,
  hook: `Usage: virt-hooks hook DRIVER OBJECT OP SUBOP [EXTRA] < XML

Run as libvirt's hook would (DRIVER is qemu or network), XML on stdin.
For testing and benchmarks; libvirt itself runs /etc/libvirt/hooks/DRIVER.`,
  version: `Usage: virt-hooks version`,
};
