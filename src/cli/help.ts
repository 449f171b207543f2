// --help texts, one per command, in the tone of systemctl/ip: what it does,
// options, exit status.
import type { Command } from "./args.js";

export const EXIT_CODES = `Exit status:
  0  success
  1  the rule files have errors (nothing was applied)
  2  usage error
  3  the firewall refused the change, or the lock could not be taken
  4  applied, but some rules could not be resolved (see the messages)`;

const STATUS_EXIT_CODES = `Exit status (the first that applies; for monitoring, anything but 0 needs a look):
  0  everything as declared: every rule live or waiting for its guest or
     network, and the kernel holds exactly our rules, our jumps first
  1  the rule files have errors
  2  usage error
  3  the firewall could not be read (not root? iptables/nft missing?)
  5  drift: the kernel differs from the rules (run: virt-hooks apply)
  4  some rules cannot be resolved (failed; see the messages)`;

const COMMON = `  --rules-dir DIR   read rules from DIR instead of /etc/libvirt/hooks/rules.d
  -v, --verbose     also print the rendered firewall transaction
  -h, --help        this help`;

const JSON_OPT = `  --json            one JSON document on stdout instead (shape: docs/json.md, "version": 1)`;

export const HELP: Record<Command, string> = {
  help: `Usage: virt-hooks COMMAND [OPTIONS]

Publish libvirt guests' ports and glue libvirt networks together, from rule
files in /etc/libvirt/hooks/rules.d/*.rules, re-applied on every libvirt event.

Commands:
  status          each rule's state, target, lease and counters; drift in the kernel
  check           validate the rule files (and resolve them against running guests)
  plan            show what apply would change now; changes nothing
  plan --event E  what the hook would do for libvirt event E ("qemu NAME start begin")
  explain DOMAIN  every rule that concerns DOMAIN and how its target resolves
  host add NETWORK MAC IP [NAME]   give a guest a fixed address (DHCP host entry),
  host del NETWORK MAC|IP|NAME     live and persistent, without restarting the network
  apply           reconcile the firewall with the rules now
  flush           remove every firewall rule and chain of ours
  watch           stay running; repair within a second whatever rebuilds the
                  firewall (firewalld reloads on D-Bus, nft monitor)
  version         print the version

Installed as /etc/libvirt/hooks/qemu and /etc/libvirt/hooks/network, the same
program runs as libvirt's hook (it never prints to stdout there).

Options:
${COMMON}
${JSON_OPT} (check, plan, status)
  -V, --version     print the version

${EXIT_CODES}
  5  (status) the kernel differs from the rules: run virt-hooks apply
See virt-hooks COMMAND --help and the README for the rule language.`,
  status: `Usage: virt-hooks status [--json] [--rules-dir DIR]

One line per rule:
  RULE       FILE:LINE, as our firewall rules' comments name it
  STATE      live     applied, and the kernel holds it
             waiting  its guest is not running, or its network not active
             failed   cannot be resolved (why, and the fix, on stderr)
             drifted  resolved, but the kernel lacks or changed its rules
  TARGET     the resolved address(es) and port(s), or subnets
  LEASE      dnsmasq's current lease for the target's NIC
             (/var/lib/libvirt/dnsmasq/BRIDGE.status); "!" and a
             lease-differs warning when it is not the fixed address
  CONNS      connections forwarded (DNAT/masquerade hits: one per flow)
  PKTS BYTES packets and bytes let through (original direction)
  "-" where a value does not apply or is not counted (nftables keeps
  forwards without from/in as map elements, which have no counter of their
  own unless the table declares element counters).

Then any drift: our jumps missing or no longer first in PREROUTING, OUTPUT,
POSTROUTING, FORWARD (iptables), our accept not first in libvirt's forward
chain or our table gone or changed (nftables), rules of ours missing or
unexpected. The fix is always: virt-hooks apply.

Warnings (stderr): unknown domain or network names (with the closest known
ones), host addresses not on this host, forwards that take a port a host
service listens on, leases that differ from fixed addresses.

Reads only: never takes the lock or changes anything; safe for monitoring.
Colour only when stdout is a terminal (and NO_COLOR is unset).

Options:
${JSON_OPT}
  --rules-dir DIR   read rules from DIR instead of /etc/libvirt/hooks/rules.d
  -h, --help        this help

${STATUS_EXIT_CODES}`,
  check: `Usage: virt-hooks check [--json] [--rules-dir DIR]

Parse every *.rules file, report errors as file:line:col with a fix, and
resolve each rule against the running guests and networks (readable as root).
Also warns (without failing) about names this host does not know, host
addresses that are not this host's, and forwards that take a port a host
service listens on.

${COMMON}
${JSON_OPT}

${EXIT_CODES}`,
  plan: `Usage: virt-hooks plan [--event "DRIVER OBJECT OP SUBOP"] [--json] [--rules-dir DIR]

Print each rule's state (live, waiting, failed) and the exact firewall
transaction apply would run now. Changes nothing.

--event shows what the hook would do when libvirt sends that event, e.g.
  virt-hooks plan --event "qemu devstack start begin"
  virt-hooks plan --event "network default stopped end"
with the same policy and view correction as the hook. libvirt's XML for the
event is stood in for by its status file (/run/libvirt/...), else the
persistent definition (/etc/libvirt/qemu/NAME.xml, .../networks/NAME.xml).
Rules whose state the event changes show "before → after". Port events
(port-created/port-deleted) need libvirt's XML to know the guest: shown as
ignored.

${COMMON}
${JSON_OPT}

${EXIT_CODES}`,
  explain: `Usage: virt-hooks explain DOMAIN [--rules-dir DIR]

Every rule that concerns DOMAIN (forwards to it or its addresses,
masquerades and accepts of its networks) and how its target resolves: each
NIC's MAC, network and bridge, the DHCP host entry that gives the fixed
address, dnsmasq's lease, the rule's state, and the firewall rules it
renders. For a defined guest that is not running: what starting it would do.

Options:
  --rules-dir DIR   read rules from DIR instead of /etc/libvirt/hooks/rules.d
  -h, --help        this help

Exit status:
  0  explained
  2  usage error
  4  no domain of that name is running or defined`,
  apply: `Usage: virt-hooks apply [--rules-dir DIR]

Reconcile now: compute the whole desired state from the rules and what libvirt
runs, and replace our chains in one transaction per address family. Refuses to
apply anything while the rule files have errors.

${COMMON}

${EXIT_CODES}`,
  watch: `Usage: virt-hooks watch

Stay in the foreground and keep the firewall as the rules declare when
something other than libvirt rebuilds it: firewalld's Reloaded signal and
its restarts (D-Bus, through dbus-monitor), and every change to the ruleset
(nft monitor: a flush, a deleted table, chain or jump, rules inserted above
ours). Each burst of events is one reconcile, through the same path and lock
as apply, about 0.1-0.4 s after it; after a firewalld reload it looks again
1 s and 3 s later, when libvirt has re-added its own rules. A reconcile that
repairs logs one line; one that finds everything in place logs nothing.
Without D-Bus or firewalld it watches netfilter alone (and says so once);
without nft, D-Bus alone; virt-hooks-apply.timer stays the safety net.
Run by virt-hooks-watch.service. Idle, it only waits on two pipes.
Records its state in /run/virt-hooks/watch.json (virt-hooks status shows it).

Options:
  -h, --help        this help

Exit status: 0 after SIGTERM or SIGINT.`,
  flush: `Usage: virt-hooks flush

Remove our jumps and chains (VIRT_HOOKS_*) from iptables, and our nftables
table (virt_hooks) with our accept in libvirt's forward chain; IPv4 and IPv6.
libvirt's own rules are not touched. The next libvirt event or apply puts
them back unless the hooks are uninstalled.

${EXIT_CODES}`,
  host: `Usage: virt-hooks host add NETWORK MAC IP [NAME]
       virt-hooks host del NETWORK MAC|IP|NAME

Add or remove a DHCP host entry (a fixed address) of a libvirt network, live
and persistently, with
  virsh net-update NETWORK add|delete ip-dhcp-host "<host mac=.. name=.. ip=../>" \
        --parent-index N --live --config
(--live only for a transient network, --config only for one that is not
running). No net-destroy/net-start: running guests keep their network.

Checked first, against the running network (/run/libvirt/network/NETWORK.xml)
or its definition: the network exists; the MAC is a unicast MAC; IP is inside
one of the network's subnets, not its network, broadcast or own address, and
not leased by dnsmasq to another MAC right now (inside a DHCP range is fine:
dnsmasq never leases a reserved address to anyone else); no other entry has
this MAC, IP or NAME (the same entry again changes nothing). An IPv6 entry needs NAME and has no MAC
(libvirt's dnsmasq matches IPv6 clients by name). Each refusal says the fix.

del removes every entry with that MAC, address or name.

For the same entry on every host, write it in rules.d instead:
  host NETWORK MAC IP [NAME]
and virt-hooks apply (its units, the watcher) keeps it in the network.

The guest gets the address at its next DHCP renewal (or restart its DHCP
client); forwards that name the guest follow at once (libvirt fires the
network's updated event).

Exit status:
  0  done, or the entry was already there
  1  refused (the message says why and how to fix it)
  2  usage error
  3  virsh failed (its message is shown)`,
  hook: `Usage: virt-hooks hook DRIVER OBJECT OP SUBOP [EXTRA] < XML

Run as libvirt's hook would (DRIVER is qemu or network), XML on stdin.
For testing and benchmarks; libvirt itself runs /etc/libvirt/hooks/DRIVER.`,
  version: `Usage: virt-hooks version`,
};
