// What each libvirt event means for us: ignore it, or reconcile with the view
// corrected by the event. Pure and table-driven, so the whole hook contract
// (libvirt-facts.md) is visible and testable in one place.
import type { DomainInfo } from "../libvirt/domain.js";
import type { HookEvent } from "../libvirt/event.js";
import type { NetworkHookData } from "../libvirt/network.js";
import type { Correction } from "../host/view.js";
import type { RuleInterest } from "../plan/interest.js";

export type Decision =
  | { readonly kind: "ignore"; readonly why: string }
  | {
      readonly kind: "reconcile";
      /** May a failure refuse this event (only with `set on-error block`)? */
      readonly vetoable: boolean;
      /** Does the decision need the event's XML (parsed lazily)? */
      readonly needs: "domain-xml" | "network-xml" | "nothing";
      readonly corrections: (input: EventInput) => Correction[];
      /**
       * The corrections are exactly "this domain is up, as the event's XML says":
       * when its status file says all that XML says they add nothing, which is
       * checked without the parser (libvirt/domain-text.ts).
       */
      readonly upFromXml?: true;
      /** Put running guests' taps back on this network's bridge (it was just (re)created). */
      readonly reattach?: boolean;
      /** `uplink`/`route` of this network: assert them (up) or put back what they moved (down). */
      readonly links?: "up" | "down";
      /** Checked once the XML is parsed: false turns the decision into ignore. */
      readonly relevant?: (input: EventInput) => boolean;
    };

export interface EventInput {
  readonly domain?: DomainInfo;
  readonly network?: NetworkHookData;
}

const ignore = (why: string): Decision => ({ kind: "ignore", why });

export function decide(event: HookEvent, interest: RuleInterest): Decision {
  if (event.driver === "qemu") return decideQemu(event, interest);
  if (event.driver === "network") return decideNetwork(event, interest);
  return ignore(`${event.driver} events are not managed`);
}

function decideQemu(event: HookEvent, interest: RuleInterest): Decision {
  if (!interest.domains.has(event.object)) return ignore("no rule names this domain");
  switch (event.op) {
    // Taps exist and are on the bridge; the firewall is what's left to do.
    case "start":
      return { kind: "reconcile", vetoable: true, needs: "domain-xml", upFromXml: true, corrections: (i) => (i.domain ? [{ kind: "domain-up", domain: i.domain }] : []) };
    // After a daemon restart, once libvirt has rebuilt its own rules: re-assert ours.
    case "reconnect":
      return { kind: "reconcile", vetoable: false, needs: "domain-xml", upFromXml: true, corrections: (i) => (i.domain ? [{ kind: "domain-up", domain: i.domain }] : []) };
    // Again at started, never vetoing: libvirt writes a guest's status file only
    // just before this hook, so a start of another guest in between rebuilt our
    // rules without this one. The last started of a burst sees every guest.
    case "started":
      return { kind: "reconcile", vetoable: false, needs: "domain-xml", upFromXml: true, corrections: (i) => (i.domain ? [{ kind: "domain-up", domain: i.domain }] : []) };
    // release comes once libvirt has let go of everything, status file included:
    // it repairs a concurrent event that still saw this guest as running.
    case "stopped":
    case "release":
      return { kind: "reconcile", vetoable: false, needs: "nothing", corrections: () => [{ kind: "domain-down", name: event.object }] };
    // prepare: no taps yet (start follows).
    // release: stopped already removed. migrate/restore: filters whose stdout
    // would replace the domain XML: we print nothing and do nothing.
    default:
      return ignore(`nothing to do on ${event.op}`);
  }
}

function decideNetwork(event: HookEvent, interest: RuleInterest): Decision {
  // A (re)started network needs its guests' taps back even when there are no rules.
  if (event.op === "started") {
    return {
      kind: "reconcile",
      vetoable: false,
      needs: "network-xml",
      reattach: true,
      links: "up",
      corrections: (i) => (i.network ? [{ kind: "network-up", network: i.network.network }] : []),
    };
  }
  if (!interest.anyRules) return ignore("no rules");
  switch (event.op) {
    // libvirt's own rules exist now (libvirt-facts: started runs after them).
    case "updated":
      return { kind: "reconcile", vetoable: false, needs: "network-xml", links: "up", corrections: (i) => (i.network ? [{ kind: "network-up", network: i.network.network }] : []) };
    // The XML names the bridge an uplink was a port of (the status file is gone).
    case "stopped":
      return { kind: "reconcile", vetoable: false, needs: "network-xml", links: "down", corrections: () => [{ kind: "network-down", name: event.object }] };
    // A NIC plugged by hotplug (attach-interface fires only this); at daemon
    // restart it comes before libvirt's rebuild, and reconnect follows.
    case "port-created":
      return {
        kind: "reconcile",
        vetoable: false,
        needs: "network-xml",
        relevant: (i) => portOwnerInterested(i, interest),
        corrections: (i) => {
          const out: Correction[] = i.network ? [{ kind: "network-up", network: i.network.network }] : [];
          const port = i.network?.port;
          if (i.network && port?.owner && port.mac) {
            out.push({ kind: "port-up", owner: port.owner, mac: port.mac, network: i.network.network.name, ...(port.bridge ? { bridge: port.bridge } : {}) });
          }
          return out;
        },
      };
    case "port-deleted":
      return {
        kind: "reconcile",
        vetoable: false,
        needs: "network-xml",
        relevant: (i) => portOwnerInterested(i, interest),
        corrections: (i) => {
          const port = i.network?.port;
          return port?.owner && port.mac ? [{ kind: "port-down", owner: port.owner, mac: port.mac }] : [];
        },
      };
    // start: before the bridge and libvirt's rules exist; started follows.
    default:
      return ignore(`nothing to do on ${event.op}`);
  }
}

function portOwnerInterested(input: EventInput, interest: RuleInterest): boolean {
  const owner = input.network?.port?.owner;
  return owner !== undefined && interest.domains.has(owner);
}

/** What the rules name: decides which events matter before any XML is read. */
