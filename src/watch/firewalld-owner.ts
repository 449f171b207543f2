// Who may tell the watcher that firewalld reloaded: the current owner of
// org.fedoraproject.FirewallD1, and no one else. A signal's sender is written
// by the bus (a client cannot set it), and on the system bus only root may own
// that name (firewalld's bus policy), so the owner's unique name is the proof.
// Any local user can *send* a Reloaded signal; before this, every one of them
// made root reconcile (issue 25, item 6).
//
// Two locks on that door, both bound to the owner:
// - the match rules dbus-monitor installs: Reloaded only with
//   sender='org.fedoraproject.FirewallD1', which the bus checks against the
//   name's primary owner when it routes each signal (dbus-daemon's
//   match_rule_matches; a forged signal never reaches us, costing us
//   nothing), and NameOwnerChanged only with sender='org.freedesktop.DBus',
//   the bus itself;
// - here: the owner's unique name, asked of the bus (GetNameOwner) when the
//   monitor connects and at every NameOwnerChanged, and a Reloaded counts only
//   from that unique name.
// Pure: the lookup's process is run-watch.ts's.

export const FIREWALLD_NAME = "org.fedoraproject.FirewallD1";
export const DBUS_DRIVER = "org.freedesktop.DBus";

export const DBUS_MATCHES: readonly string[] = [
  `type='signal',sender='${FIREWALLD_NAME}',interface='${FIREWALLD_NAME}',member='Reloaded'`,
  `type='signal',sender='${DBUS_DRIVER}',interface='${DBUS_DRIVER}',member='NameOwnerChanged',arg0='${FIREWALLD_NAME}'`,
];

/** dbus-send's argv asking the bus who owns firewalld's name now. */
export const GET_NAME_OWNER_ARGS: readonly string[] = [
  "--system", "--print-reply=literal", `--dest=${DBUS_DRIVER}`, "/org/freedesktop/DBus", `${DBUS_DRIVER}.GetNameOwner`, `string:${FIREWALLD_NAME}`,
];

/**
 * What the watcher knows of the owner: a unique name; `none` (the bus says no
 * one owns it: firewalld is not running, and no Reloaded is believed); or
 * `unknown` (the question failed: dbus-send missing or timed out), when only
 * the bus's own check of the match stands.
 */
export type Owner = { readonly kind: "owner"; readonly name: string } | { readonly kind: "none" } | { readonly kind: "unknown"; readonly why: string };

/** A unique name as the bus writes them (`:1.42`); anything else is not one. */
const UNIQUE = /^:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+$/;

export function parseOwnerReply(r: { exitCode: number; stdout: string; stderr: string }): Owner {
  const out = r.stdout.trim();
  if (r.exitCode === 0 && UNIQUE.test(out)) return { kind: "owner", name: out };
  if (/NameHasNoOwner/.test(r.stderr)) return { kind: "none" };
  const why = (r.stderr.trim().split("\n")[0] ?? "").slice(0, 200) || `exit ${r.exitCode}`;
  return { kind: "unknown", why };
}

/** Whether a Reloaded from `sender` (a unique name, set by the bus) is firewalld's. */
export function believeReloaded(owner: Owner, sender: string): boolean {
  if (owner.kind === "owner") return sender === owner.name;
  return owner.kind === "unknown";
}
