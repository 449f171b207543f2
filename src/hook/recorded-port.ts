// A `port-created` that adds nothing, decided before the XML parser and the
// firewall code are loaded.
//
// libvirtd, as it starts, runs one `port-created` hook for each port of each
// running guest, ONE AFTER ANOTHER, while it answers no one (libvirt-facts.md,
// "Restarts"); then it deletes and re-adds its own firewall rules; then it runs
// one `reconnect` per running guest. A reconcile in those `port-created` hooks
// is wasted twice over: libvirt rebuilds its rules right after it, and the
// `reconnect` that follows reconciles anyway (issue 28: 30 guests cost a
// restart ~3 s of these, 47-69 ms each, every one finding nothing to change).
//
// So a `port-created` whose port the owner's status file already holds (its
// MAC, on this network, with this very port id) is ignored: that port is part
// of a running guest libvirt already recorded, and that guest's `reconnect`
// (daemon restart) or `start` (libvirt writes the port id before it) comes
// next. The port-created that matters, a NIC hot-plugged into a running guest
// (the only hook attach-interface fires), has a port id the status file does
// not hold yet, and takes the full path as before; so does anything this
// text reader does not recognise (libvirt/port-text.ts).
import { join } from "node:path";
import { readTextIfAny } from "../effects/read-text.js";
import type { HookEvent } from "../libvirt/event.js";
import { portOfHookText, statusHoldsPort } from "../libvirt/port-text.js";
import type { RuleInterest } from "../plan/interest.js";

/** Why this event has nothing to do, or undefined: take the full path. */
export function recordedPort(event: HookEvent, xml: string, interest: RuleInterest, libvirtRunDir: string): string | undefined {
  if (event.driver !== "network" || event.op !== "port-created") return undefined;
  const port = portOfHookText(xml);
  if (!port || port.network !== event.object) return undefined;
  if (!interest.domains.has(port.owner)) return "no rule names this port's domain";
  const status = readTextIfAny(join(libvirtRunDir, "qemu", `${port.owner}.xml`));
  if (status === undefined || !statusHoldsPort(status, port)) return undefined;
  return `a recorded port of running guest ${port.owner}: its reconnect or start follows`;
}
