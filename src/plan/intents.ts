// The backend-neutral plan: every rule resolved against the running host into
// concrete addresses. Renderers (iptables today, nftables next) turn this into
// their own transaction; status and plan output read it as it is.
import type { Cidr, Family } from "../net/ip.js";
import type { Diagnostic } from "../rules/diagnostic.js";
import type { AcceptRule, EgressRule, ForwardRule, MasqueradeRule, PortRange, Proto, Rule } from "../rules/model.js";

export interface ForwardIntent {
  readonly rule: ForwardRule;
  readonly family: Family;
  readonly protos: readonly Proto[];
  readonly hostAddress?: string;
  readonly hostPorts: PortRange;
  readonly targetAddress: string;
  /** Absent: same as hostPorts. */
  readonly targetPorts?: PortRange;
  readonly from: readonly Cidr[];
  readonly inInterface?: string;
  /** Guest subnets that may reach the forward through the host's address (hairpin): masqueraded. */
  readonly hairpinSources: readonly Cidr[];
}

export interface MasqueradeIntent {
  readonly rule: MasqueradeRule;
  readonly subnet: Cidr;
  readonly bridge?: string;
}

export interface AcceptIntent {
  readonly rule: AcceptRule;
  readonly from: Cidr;
  readonly fromBridge?: string;
  readonly to: Cidr;
  readonly toBridge?: string;
  readonly protos: readonly Proto[];
  readonly ports?: PortRange;
  /** FROM is a NAT network: exempt this traffic from libvirt's masquerade so TO sees the real source. */
  readonly keepSource: boolean;
}

/**
 * One guest address leaving from one host address (egress), and for a map
 * also reached at it. `excluded`: every active libvirt network's subnet of the
 * family, plus multicast and broadcast: traffic there is never rewritten by
 * us (the guest's own network, other libvirt networks and `accept` peers see
 * the guest's own address, or whatever libvirt does with it).
 */
export interface EgressIntent {
  readonly rule: EgressRule;
  readonly family: Family;
  readonly guestAddress: string;
  readonly hostAddress: string;
  /** map: every port of hostAddress, any protocol, goes to guestAddress. */
  readonly inbound: boolean;
  readonly excluded: readonly Cidr[];
  /** map: the guest's own network's subnets, masqueraded when they reach it through hostAddress (hairpin). */
  readonly hairpinSources: readonly Cidr[];
}

export type RuleState =
  | { readonly rule: Rule; readonly state: "live"; readonly detail: string }
  | { readonly rule: Rule; readonly state: "waiting"; readonly detail: string }
  | { readonly rule: Rule; readonly state: "failed"; readonly detail: string; readonly diagnostic: Diagnostic };

export interface Plan {
  readonly forwards: readonly ForwardIntent[];
  readonly masquerades: readonly MasqueradeIntent[];
  readonly accepts: readonly AcceptIntent[];
  /** egress and map statements, in file order. */
  readonly egress: readonly EgressIntent[];
  readonly states: readonly RuleState[];
}

export interface RuleCounts {
  readonly live: number;
  readonly waiting: number;
  readonly failed: number;
}

export function countStates(states: readonly RuleState[]): RuleCounts {
  return {
    live: states.filter((s) => s.state === "live").length,
    waiting: states.filter((s) => s.state === "waiting").length,
    failed: states.filter((s) => s.state === "failed").length,
  };
}
