// Hostile domain and network names (spaces, quotes, ;, $(...), backticks,
// newlines, unicode, 200+ characters) through every place we write one:
// the shell words of the virsh hint (checked by a real sh), the host XML in
// it (checked by our parser), rules that quote them, and the iptables, nft
// and ip text generated around them.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { shellWord, resolvePlan } from "../../src/plan/resolve.js";
import { compileRules } from "../../src/rules/compile.js";
import { parseDomainXml } from "../../src/libvirt/domain.js";
import { parseNetworkHookXml } from "../../src/libvirt/network.js";
import { attr, child, parseXml, XmlError } from "../../src/libvirt/xml.js";
import { renderIptables } from "../../src/render/iptables.js";
import { renderNft } from "../../src/render/nftables.js";
import { planReattach, renderIpBatch } from "../../src/plan/reattach.js";
import { check, checkDiagnostic, checkIpBatch, checkIptables, checkNft } from "./fuzz-seeds/checks.js";
import { forEachCase, hostileName, seedsFrom } from "./fuzz-seeds/prng.js";

const SEEDS = JSON.parse(readFileSync(join(import.meta.dirname, "fuzz-seeds", "seeds.json"), "utf8")) as { names: number[] };
const { seeds, cases } = seedsFrom(SEEDS.names, 300);

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const escapeXml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;");
const quote = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** What a POSIX sh makes of each command line: its words, NUL-separated, one record per line given. */
function shWords(commands: readonly string[]): string[][] {
  const script = commands.map((c) => `set -- ${c}\nprintf '%s\\0' "$@"; printf '\\1\\0'\n`).join("");
  // The script on stdin: as one argument it would pass the kernel's 128 KiB limit.
  const r = spawnSync("sh", [], { input: script, encoding: "utf8", env: { PATH: "/usr/bin:/bin", LC_ALL: "C.UTF-8" }, maxBuffer: 64 << 20 });
  check(r.status === 0, "sh failed", r.stderr);
  const out: string[][] = [[]];
  for (const w of r.stdout.split("\0").slice(0, -1)) {
    if (w === "\x01") out.push([]);
    else (out.at(-1) as string[]).push(w);
  }
  return out.slice(0, -1);
}

describe("fuzz: hostile names", () => {
  it(`shellWord: ${seeds.length * cases} hostile words each come back from sh as exactly one word, unchanged`, () => {
    const words: string[] = ["", "-", "'", "''", "a'b", "$(reboot)", "`id`", "\n", "!", "~root", "*", "a b"];
    // No NUL (no C string holds one) and well-formed UTF-16 (what comes from UTF-8 text).
    forEachCase(seeds, cases, (rng) => words.push(hostileName(rng).replace(/\0/g, "").replace(LONE_SURROGATE, "")));
    const got = shWords(words.map((w) => `${shellWord(w)} end`));
    expect(got).toEqual(words.map((w) => [w, "end"]));
  });

  it(`names through XML, rules, resolve and render: the hint is one virsh command with the exact names, the rest only safe words`, () => {
    const hints: { command: string; name: string; expected: string[] }[] = [];
    let refused = 0;
    let resolved = 0;
    forEachCase(seeds, cases, (rng, label) => {
      const dom = hostileName(rng).replace(LONE_SURROGATE, "");
      const net = hostileName(rng).replace(LONE_SURROGATE, "");
      const mac = "52:54:00:12:34:56";
      const netXml = `<hookData><network><name>${escapeXml(net)}</name><forward mode='nat'/><bridge name='${rng.chance(0.8) ? "virbr3" : escapeXml(hostileName(rng))}'/>` +
        `<ip address='10.33.0.1' prefix='24'><dhcp><range start='10.33.0.100' end='10.33.0.200'/></dhcp></ip></network></hookData>`;
      const domXml = `<domain><name>${escapeXml(dom)}</name><devices><interface type='network'><mac address='${mac}'/><source network='${escapeXml(net)}' bridge='virbr3'/><target dev='${rng.chance(0.8) ? "vnet7" : escapeXml(hostileName(rng))}'/></interface></devices></domain>`;
      let network;
      let domain;
      try {
        network = parseNetworkHookXml(netXml).network;
        domain = parseDomainXml(domXml);
      } catch (e) {
        check(e instanceof XmlError && /control character|has no <name>/.test((e as Error).message), `${label}: only empty names and names with control characters are refused`, String(e));
        refused++;
        return;
      }
      check(network.name === net && domain.name === dom, "names round-trip through XML", [net, dom]);
      const rules = compileRules([{ path: "/etc/libvirt/hooks/rules.d/10-names.rules", text: `forward tcp 2222 to ${quote(dom)}@${quote(net)}:22\nmasquerade ${quote(net)}\naccept ${quote(net)} to 10.0.0.0/8 tcp 22\n` }]);
      for (const d of rules.diagnostics) checkDiagnostic(d);
      if (dom.includes("/") || net.includes("/")) return; // libvirt forbids "/" in names, and so do rules (bad-name)
      check(rules.diagnostics.length === 0, "hostile names quoted in rules compile cleanly", rules.diagnostics.map((d) => d.message));
      const view = { domains: new Map([[dom, domain]]), networks: new Map([[net, network]]) };
      const plan = resolvePlan(rules.rules, view);
      for (const family of [4, 6] as const) {
        checkIptables(renderIptables(plan, family));
        checkNft(renderNft(plan, family));
      }
      checkIpBatch(renderIpBatch(planReattach(network, [domain], new Map([["vnet7", { up: false }]]), 1500)));
      const failed = plan.states.find((s) => s.state === "failed");
      check(failed?.state === "failed" && failed.diagnostic.code === "no-fixed-address", "no fixed address", failed);
      checkDiagnostic(failed.diagnostic);
      const hint = failed.diagnostic.hint as string;
      const command = /virsh .* --live --config/.exec(hint)?.[0];
      check(command, "the hint holds a virsh command", hint);
      const hostXml = `<host mac='${mac}' name='${escapeXml(dom)}' ip='10.33.0.2'/>`;
      hints.push({ command, name: dom, expected: ["virsh", "net-update", net, "add", "ip-dhcp-host", hostXml, "--live", "--config"] });
      resolved++;
    });
    const got = shWords(hints.map((h) => h.command));
    for (let i = 0; i < hints.length; i++) {
      expect(got[i]).toEqual(hints[i]?.expected);
      // The XML the admin pastes is read back by libvirt with the domain's exact name
      // (the guest's name itself, not another parse of the same text).
      const host = child(parseXml(got[i]?.[5] as string), "host");
      expect(attr(host, "name")).toBe(hints[i]?.name);
    }
    console.log(`fuzz-names: ${seeds.length * cases} name pairs, ${resolved} hints run through sh, ${refused} refused (control characters)`);
    expect(resolved).toBeGreaterThan((seeds.length * cases) / 3);
  }, 60_000);
});
