// The work the build does once, just before it serialises V8's code cache of
// the deferred code (.ci/build.mjs, "Deferred code"): what a hook that acts
// computes, on libvirt's captured XML and firewall listings, for both
// backends. V8 puts into a code cache every function compiled before the cache
// is made; without this run it held little more than the modules' top levels,
// and each event compiled the XML parser, the rule compiler, the planner and
// the renderers afresh on first call (issue 15: a cold parse of a 2.5 KB domain
// XML took ~4 ms, a warm one a tenth of that).
//
// Never called at run time. The tools' answers come from the build's samples
// through `run`, and nothing is applied (dryRun): this is neither a test nor
// a second code path, only the real functions called once.
import { parseDomainStatusXml, parseDomainXml } from "../libvirt/domain.js";
import { parseNetworkHookXml, parseNetworkStatusXml } from "../libvirt/network.js";
import { hookEventFromArgv } from "../libvirt/event.js";
import { compileRules } from "../rules/compile.js";
import { correctView } from "../host/view.js";
import { converge } from "../converge/converge.js";
import { OCCASIONS } from "../converge/occasion.js";
import type { Paths } from "../config/paths.js";
import { decide } from "./policy.js";
import { interestOf } from "../plan/interest.js";
import { summaryLine } from "./outcome.js";
import { correctionsRedundant, inputsKey } from "./coalesce.js";
import type { RunTool } from "../effects/exec.js";

export interface WorkloadSamples {
  /** What `qemu NAME start begin -` reads on stdin. */
  readonly domainXml: string;
  /** /run/libvirt/qemu/NAME.xml. */
  readonly domainStatusXml: string;
  /** /run/libvirt/network/NAME.xml, with libvirt's firewall record. */
  readonly networkStatusXml: string;
  /** What `network NAME started begin -` reads on stdin. */
  readonly networkHookXml: string;
  /** iptables-save of a host where libvirt made its rules. */
  readonly iptablesSave: string;
  /** nft -j -s list ruleset ip, the same host on libvirt's nftables backend. */
  readonly nftJson: string;
  /** A rules.d file (forwards to the sample domain). */
  readonly rules: string;
  /** A scratch directory for state reads (nothing is written: dry run). */
  readonly stateDir: string;
}

export async function exerciseActingPath(s: WorkloadSamples): Promise<void> {
  const domain = parseDomainXml(s.domainXml);
  const recorded = parseDomainStatusXml(s.domainStatusXml);
  const network = parseNetworkStatusXml(s.networkStatusXml);
  parseNetworkHookXml(s.networkHookXml);
  const files = [{ path: "/etc/libvirt/hooks/rules.d/50-sample.rules", text: s.rules }];
  const compiled = compileRules(files);
  const interest = interestOf(compiled.rules);
  const event = hookEventFromArgv("qemu", [domain.name, "start", "begin", "-"]);
  const decision = event ? decide(event, interest) : undefined;
  const corrections = decision?.kind === "reconcile" ? decision.corrections({ domain }) : [{ kind: "domain-up" as const, domain }];
  correctionsRedundant(corrections, () => recorded);
  inputsKey({ rules: files, statusIdentity: "sample", networkConf: undefined });
  const run: RunTool = async (tool) => ({
    exitCode: 0,
    stdout: tool === "nft" ? s.nftJson : tool.endsWith("-save") ? s.iptablesSave : "",
    stderr: "",
  });
  for (const backend of ["iptables", "nftables"] as const) {
    const view = correctView({ domains: new Map([[recorded.name, recorded]]), networks: new Map([[network.name, { ...network, firewallBackend: backend }]]) }, corrections);
    // Through the one door the hook takes, in its dry row (nothing written, no lock).
    const paths = { stateDir: s.stateDir, networkConf: `${s.stateDir}/network.conf` } as Paths;
    const result = await converge(OCCASIONS["plan-event"], { rules: compiled.rules, view, paths, event: { network: network.name, reattach: false } }, { run });
    summaryLine(`qemu ${domain.name} start begin`, result, 1);
  }
}
