// Why a reconcile runs, and so what it includes: the one table every entry
// point's difference is read from (issue 27). converge.ts does exactly what a
// row says; a face picks its row and passes what it read.
//
// Two decisions are rows here on purpose:
// - `host` entries (virsh net-update) are never converged from a hook: a hook
//   runs inside libvirtd's own call, and calling libvirt from there deadlocks.
//   apply, its units and the watcher converge them, outside the firewall lock.
// - re-attach and uplinks/routes happen only for the event that calls for them
//   (a network started or stopped): apply, the units and the watcher do not
//   re-assert them. Re-attach puts a tap back on its bridge and `uplink` moves
//   the host's addresses; doing either from a timer would undo an admin's
//   deliberate `ip link set vnet0 nomaster` or a hand-moved address every
//   minute, and the network's own events (which the hook always gets) are the
//   only moments libvirt takes them away.

export type OccasionName = "hook" | "plan-event" | "apply" | "plan" | "watch";

export interface Occasion {
  readonly name: OccasionName;
  /** Print/record nothing, change nothing, take no lock. */
  readonly dryRun: boolean;
  /** Converge `host` statements first (virsh): never from a hook. */
  readonly hostEntries: boolean;
  /** The event's own steps: its view corrections, re-attach, uplinks and routes. */
  readonly eventSteps: boolean;
  /** Look at both families and both backends even where nothing of ours is recorded (cleans leftovers). */
  readonly everyFamily: boolean;
  /** May be covered by a reconcile that started after it (a libvirtd restart's storm, hook/coalesce.ts). */
  readonly coalesce: boolean;
  /** Write the hooks' interest record (hook/interest-cache.ts) for the rules it ran with. */
  readonly primeInterest: boolean;
  /**
   * How rules.d is read by the face: a hook keeps each refused file's last
   * accepted text (a wrong chmod must not drop every forward); the admin's
   * commands and the watcher read strictly and say what is refused.
   */
  readonly rules: "last-good" | "strict";
}

const row = (name: OccasionName, r: Omit<Occasion, "name">): Occasion => ({ name, ...r });

//                                   dryRun hostEntries eventSteps everyFamily coalesce primeInterest rules
export const OCCASIONS: Readonly<Record<OccasionName, Occasion>> = {
  hook: row("hook", { dryRun: false, hostEntries: false, eventSteps: true, everyFamily: false, coalesce: true, primeInterest: false, rules: "last-good" }),
  // rules.d as it is on disk: a dry run writes no last-good record (a refused file is reported, as by check).
  "plan-event": row("plan-event", { dryRun: true, hostEntries: false, eventSteps: true, everyFamily: false, coalesce: false, primeInterest: false, rules: "strict" }),
  apply: row("apply", { dryRun: false, hostEntries: true, eventSteps: false, everyFamily: true, coalesce: false, primeInterest: true, rules: "strict" }),
  plan: row("plan", { dryRun: true, hostEntries: true, eventSteps: false, everyFamily: true, coalesce: false, primeInterest: false, rules: "strict" }),
  watch: row("watch", { dryRun: false, hostEntries: true, eventSteps: false, everyFamily: true, coalesce: false, primeInterest: true, rules: "strict" }),
};
