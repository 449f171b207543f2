import { describe, expect, it } from "vitest";
import { decide } from "../../src/hook/policy.js";
import type { RuleInterest } from "../../src/plan/interest.js";
import { hookEventFromArgv, type Driver } from "../../src/libvirt/event.js";
import { parseNetworkHookXml } from "../../src/libvirt/network.js";
import { capturedEvents } from "../helpers/fixtures.js";

const interest: RuleInterest = { anyRules: true, domains: new Set(["vm1"]) };
const none: RuleInterest = { anyRules: false, domains: new Set() };

function decision(line: string, i = interest) {
  const [driver, ...args] = line.split(" ");
  const d = decide(hookEventFromArgv(driver as Driver, args)!, i);
  return d.kind === "ignore" ? "ignore" : d.vetoable ? "reconcile, vetoable" : "reconcile";
}

// The hook contract in one table (see docs/libvirt-facts.md).
const table: [string, string][] = [
  ["qemu vm1 prepare begin -", "ignore"],
  ["qemu vm1 start begin -", "reconcile, vetoable"],
  ["qemu vm1 started begin -", "reconcile"],
  ["qemu vm1 stopped end -", "reconcile"],
  ["qemu vm1 release end destroyed", "reconcile"],
  ["qemu vm1 reconnect begin -", "reconcile"],
  ["qemu vm1 migrate begin -", "ignore"],
  ["qemu vm1 restore begin -", "ignore"],
  ["qemu other start begin -", "ignore"],
  ["network default start begin -", "ignore"],
  ["network default started begin -", "reconcile"],
  ["network default stopped end -", "reconcile"],
  ["network default updated begin -", "reconcile"],
  ["network default port-created begin -", "reconcile"],
  ["network default port-deleted begin -", "reconcile"],
  ["lxc c1 start begin -", "ignore"],
  ["daemon - start - start", "ignore"],
];

describe("what each libvirt event does", () => {
  it.each(table)("%s -> %s", (line, expected) => {
    expect(decision(line)).toBe(expected);
  });

  it("ignores network events when there are no rules at all, except started (re-attach)", () => {
    expect(decision("network default updated begin -", none)).toBe("ignore");
    expect(decision("network default stopped end -", none)).toBe("ignore");
    const d = decide(hookEventFromArgv("network", ["default", "started", "begin", "-"])!, none);
    expect(d.kind === "reconcile" && d.reattach).toBe(true);
  });

  it("looks at a port's owner: another domain's port is not ours", () => {
    const e = capturedEvents().find((c) => c.id.startsWith("04-"))!;
    const d = decide(hookEventFromArgv("network", e.args)!, { anyRules: true, domains: new Set(["someone-else"]) });
    expect(d.kind).toBe("reconcile");
    if (d.kind !== "reconcile") return;
    expect(d.relevant?.({ network: parseNetworkHookXml(e.xml) })).toBe(false);
  });

  it("turns a hot-plugged port into an interface of its owner", () => {
    const e = capturedEvents().find((c) => c.id.startsWith("16-"))!;
    const d = decide(hookEventFromArgv("network", e.args)!, interest);
    if (d.kind !== "reconcile") throw new Error("expected reconcile");
    const corrections = d.corrections({ network: parseNetworkHookXml(e.xml) });
    expect(corrections.map((c) => c.kind)).toEqual(["network-up", "port-up"]);
  });

  it("decides every captured libvirt 11.3 event", () => {
    const decided = capturedEvents().map((e) => `${e.id}: ${decision(`${e.driver} ${e.args.join(" ")}`)}`);
    expect(decided.filter((d) => d.includes("reconcile")).length).toBeGreaterThan(10);
  });
});
