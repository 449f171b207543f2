// Which tracked connections a change of egress/map translations makes stale
// (apply/stale-flows.ts): read back from what each backend recorded, compared
// with the new plan, turned into bounded conntrack argv.
import { describe, expect, it } from "vitest";
import { plannedTranslations, recordedTranslations, staleFlowCommands, MAX_FLOW_DELETIONS, type Translation } from "../../src/apply/stale-flows.js";
import { resolvePlan } from "../../src/plan/resolve.js";
import { renderIptables } from "../../src/render/iptables.js";
import { renderNft } from "../../src/render/nftables.js";
import { compileText } from "../helpers/rules.js";
import { defaultNet, domain, routeNet, view } from "../helpers/host.js";

const host = view([domain("devstack", [["52:54:00:6c:3c:11", "default"]]), domain("web", [["52:54:00:00:01:01", "route"]])], [defaultNet, routeNet]);
const planOf = (text: string) => resolvePlan(compileText(text).rules, host);
const RULES = "egress from 203.0.113.5 for devstack\nmap 203.0.113.6 to web\nforward tcp 8080 to devstack:80\n";
const WANT: Translation[] = [
  { family: 4, kind: "snat", guest: "192.168.122.11", address: "203.0.113.5" },
  { family: 4, kind: "snat", guest: "192.168.100.10", address: "203.0.113.6" },
  { family: 4, kind: "dnat", guest: "192.168.100.10", address: "203.0.113.6" },
];
const sorted = (t: Translation[]) => [...t].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe("stale flows", () => {
  it("reads back from both backends' records exactly what the plan translates", () => {
    const plan = planOf(RULES);
    expect(sorted(plannedTranslations(plan, 4))).toEqual(sorted(WANT));
    const ipt = renderIptables(plan, 4).rules.map((r) => `-t ${r.table} -A ${r.chain} ${r.spec}`);
    expect(sorted(recordedTranslations(ipt, 4))).toEqual(sorted(WANT));
    expect(sorted(recordedTranslations(renderNft(plan, 4).lines, 4))).toEqual(sorted(WANT));
    // Forwards are not translations of a guest's own traffic.
    expect(recordedTranslations(renderNft(planOf("forward tcp 8080 to devstack:80"), 4).lines, 4)).toEqual([]);
    expect(recordedTranslations(["-t nat -A VIRT_HOOKS_SNAT -s $(x)/32 -j SNAT --to-source 1.2.3.4"], 4)).toEqual([]);
  });

  it("nothing changed: nothing deleted", () => {
    expect(staleFlowCommands(WANT, WANT)).toEqual([]);
  });

  it("an egress appears, changes or goes: that guest's source-NATed flows; a map goes: the flows DNAT'd through its address", () => {
    const [e, m, d] = WANT as [Translation, Translation, Translation];
    expect(staleFlowCommands([], [e])).toEqual([["-D", "-f", "ipv4", "-s", "192.168.122.11", "--src-nat"]]);
    expect(staleFlowCommands([e], [{ ...e, address: "203.0.113.9" }])).toEqual([["-D", "-f", "ipv4", "-s", "192.168.122.11", "--src-nat"]]);
    expect(staleFlowCommands([e, m, d], [e])).toEqual([
      ["-D", "-f", "ipv4", "-s", "192.168.100.10", "--src-nat"],
      ["-D", "-f", "ipv4", "-d", "203.0.113.6", "--dst-nat"],
    ]);
    // A new map leaves the host's own connections on the address alone.
    expect(staleFlowCommands([], [m, d])).toEqual([["-D", "-f", "ipv4", "-s", "192.168.100.10", "--src-nat"]]);
  });

  it("is bounded", () => {
    const many: Translation[] = Array.from({ length: 100 }, (_, i) => ({ family: 4, kind: "snat", guest: `10.0.${i >> 8}.${i & 255}`, address: "203.0.113.5" }));
    expect(staleFlowCommands([], many)).toHaveLength(MAX_FLOW_DELETIONS);
  });
});

describe("stale flows: running conntrack", () => {
  it("counts what conntrack deleted; a missing tool or a refusal is reported, never thrown", async () => {
    const { deleteStaleFlows } = await import("../../src/apply/stale-flows.js");
    const calls: string[][] = [];
    const out = await deleteStaleFlows(async (tool, args) => {
      calls.push([tool, ...args]);
      return args.includes("10.0.0.1")
        ? { exitCode: 0, stdout: "", stderr: "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n" }
        : { exitCode: 1, stdout: "", stderr: "cannot run conntrack: not found" };
    }, [["-D", "-f", "ipv4", "-s", "10.0.0.1", "--src-nat"], ["-D", "-f", "ipv4", "-s", "10.0.0.2", "--src-nat"]]);
    expect(calls.map((c) => c[0])).toEqual(["conntrack", "conntrack"]);
    expect(out).toEqual([
      { argv: ["-D", "-f", "ipv4", "-s", "10.0.0.1", "--src-nat"], deleted: 3 },
      { argv: ["-D", "-f", "ipv4", "-s", "10.0.0.2", "--src-nat"], error: "conntrack exited 1: cannot run conntrack: not found" },
    ]);
  });
});
