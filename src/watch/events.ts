// What a line from each event source means: pure, one table per source.
import { DBUS_DRIVER } from "./firewalld-owner.js";

/**
 * Whose table a netfilter change touched, among the only ones that matter to
 * our rules; a change anywhere else (docker's, fail2ban's or crowdsec's sets
 * churning all day, a user's own tables) is no cause to reconcile:
 * - `ours`: `ip`/`ip6 virt_hooks`, the nftables backend's table.
 * - `libvirt`: `ip`/`ip6 libvirt_network`, libvirt's nftables backend; our
 *   accept sits first in its `forward` chain and a rebuild can bury it.
 * - `iptables`: `ip`/`ip6 filter` and `nat`, iptables-nft's tables, where the
 *   iptables backend's chains and jumps live beside libvirt's LIBVIRT_* ones
 *   (libvirt's `mangle` rules and the `raw`/`security` tables hold nothing of
 *   ours, nor anything placed against ours).
 * - `firewalld`: `inet`/`ip`/`ip6 firewalld`. Nothing of ours is there, but
 *   its rebuild is a firewalld reload or restart: firewalld < 2.0 flushes
 *   every iptables table then, and libvirt re-adds its own rules after it on
 *   its own time, on a host whose iptables is legacy too (which nft monitor
 *   cannot see). When D-Bus is not watched, this is the only sign of it.
 * Family and name both: an `inet virt_hooks` is someone else's.
 */
export type TableRole = "ours" | "libvirt" | "iptables" | "firewalld";

const ROLES: Readonly<Record<string, TableRole>> = {
  "ip virt_hooks": "ours",
  "ip6 virt_hooks": "ours",
  "ip libvirt_network": "libvirt",
  "ip6 libvirt_network": "libvirt",
  "ip filter": "iptables",
  "ip nat": "iptables",
  "ip6 filter": "iptables",
  "ip6 nat": "iptables",
  "inet firewalld": "firewalld",
  "ip firewalld": "firewalld",
  "ip6 firewalld": "firewalld",
};

export interface NetfilterChange {
  /** Names it in the repair's log line (causes.ts folds these into tables). */
  readonly why: string;
  /** undefined: the whole ruleset. */
  readonly role?: TableRole;
}

/**
 * `nft monitor` prints one line per change to the ruleset (iptables-nft's
 * changes included; a flush prints a delete per object): `VERB OBJECT FAMILY
 * TABLE …`. Anything that deletes, flushes or inserts can bury or drop our
 * rules; an `add` only matters when it adds a rule (libvirt putting its jumps
 * back, at position 1, above ours). Adds of tables, chains, sets and elements,
 * the monitor's own comments, and every change to a table of no role above,
 * are noise here.
 */
export function netfilterChange(line: string): NetfilterChange | undefined {
  const l = line.trim();
  if (l === "" || l.startsWith("#")) return undefined;
  const m = /^(delete|flush|insert|replace|destroy|add)\s+(\S+)(?:\s+(\S+)\s+(\S+))?/.exec(l);
  if (!m) return undefined;
  const [, verb, what, family, table] = m;
  if (verb === "add" && what !== "rule") return undefined;
  if (what === "ruleset") return { why: `${verb} ruleset` };
  if (!family || !table) return undefined;
  const role = ROLES[`${family} ${table}`];
  return role ? { why: `${verb} ${what} in ${family} ${table}`, role } : undefined;
}

/** A line of `dbus-monitor --profile` that matters to the watcher. */
export type BusLine =
  /** Firewalld's Reloaded, from this unique name (the bus writes it: it cannot be forged). */
  | { readonly kind: "reloaded"; readonly sender: string }
  /** The bus itself: org.fedoraproject.FirewallD1 got a new owner, or lost it. */
  | { readonly kind: "owner-changed" }
  /** The bus itself, to the monitor: it is connected and its matches are in place. */
  | { readonly kind: "connected" };

/**
 * `dbus-monitor --profile` lines (`sig TIME SERIAL SENDER DESTINATION PATH
 * INTERFACE MEMBER`) for the two signals libvirt itself listens to
 * (bridge_driver.c, firewalld_dbus_signal_callback): firewalld's Reloaded,
 * and its bus name changing owner (start, restart, stop). Which Reloaded to
 * believe is firewalld-owner.ts's to say; NameOwnerChanged counts only from
 * the bus itself, and so does the NameLost that tells the monitor it is one.
 */
export function busLine(line: string): BusLine | undefined {
  const f = line.split("\t");
  if (f[0] !== "sig") return undefined;
  const sender = f[3] ?? "";
  const member = f[7]?.trim();
  if (member === "Reloaded" && f[6] === "org.fedoraproject.FirewallD1" && sender.startsWith(":")) return { kind: "reloaded", sender };
  if (sender !== DBUS_DRIVER || f[6] !== DBUS_DRIVER) return undefined;
  if (member === "NameOwnerChanged") return { kind: "owner-changed" };
  // Sent to the monitor's own unique name when it becomes a monitor (and gives that name up).
  if (member === "NameLost" && f[4]?.startsWith(":")) return { kind: "connected" };
  return undefined;
}
