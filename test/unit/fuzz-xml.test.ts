// Fuzzing libvirt's XML input: libvirt 11.3's captured hook and status XML,
// mutated, and generated documents of libvirt's vocabulary with hostile
// values. Every document must parse into a value or fail with XmlError (which
// the hook turns into a log line), never another exception; whatever parses
// must flow through resolve, render and re-attach with only safe words out.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MAX_XML_BYTES, XmlError } from "../../src/libvirt/xml.js";
import { parseDomainXml, type DomainInfo } from "../../src/libvirt/domain.js";
import { parseNetworkHookXml, parseNetworkStatusXml, type NetworkInfo } from "../../src/libvirt/network.js";
import { compileRules } from "../../src/rules/compile.js";
import { resolvePlan } from "../../src/plan/resolve.js";
import { renderIptables } from "../../src/render/iptables.js";
import { renderNft } from "../../src/render/nftables.js";
import { planReattach, renderIpBatch, type LinkState } from "../../src/plan/reattach.js";
import { FIXTURES } from "../helpers/fixtures.js";
import { check, checkIpBatch, checkIptables, checkNft, checkPlan, timed } from "./fuzz-seeds/checks.js";
import { forEachCase, hostileName, mutate, seedsFrom, type Rng } from "./fuzz-seeds/prng.js";

const SEEDS = JSON.parse(readFileSync(join(import.meta.dirname, "fuzz-seeds", "seeds.json"), "utf8")) as { xml: number[] };
const REGRESSIONS = join(import.meta.dirname, "fuzz-seeds", "regressions");
const CORPUS = [
  ...readdirSync(FIXTURES).filter((f) => f.endsWith(".xml")).map((f) => readFileSync(join(FIXTURES, f), "utf8")),
  ...readdirSync(REGRESSIONS).filter((f) => f.endsWith(".xml")).map((f) => readFileSync(join(REGRESSIONS, f), "utf8")),
];

const TAGS = ["domain", "domstatus", "name", "uuid", "devices", "interface", "mac", "source", "target", "actual", "mtu", "vlan", "tag", "port",
  "network", "networkstatus", "hookData", "networkport", "owner", "plug", "bridge", "forward", "ip", "dhcp", "host", "range", "firewall",
  "__proto__", "constructor", "toString", "hasOwnProperty", "#text", "x"];
const ATTRS = ["address", "type", "network", "bridge", "dev", "size", "id", "isolated", "mode", "name", "netmask", "prefix", "family", "start", "end", "ip", "mac", "backend", "__proto__"];
const VALUES = ["52:54:00:6c:3c:01", "52:54:00:AA:BB:CC", "virbr0", "vnet0", "default", "vm1", "nat", "route", "open", "yes", "1500", "-1", "1e9",
  "192.168.122.1", "255.255.255.0", "255.0.255.0", "24", "33", "129", "fd00::1", "64", "iptables", "nftables", "4095", "ipv6", ""];

const escapeXml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;").replace(/"/g, "&quot;");

function value(rng: Rng): string {
  return rng.chance(0.6) ? rng.pick(VALUES) : hostileName(rng);
}

function element(rng: Rng, depth: number): string {
  const tag = rng.pick(TAGS);
  const attrs = Array.from({ length: rng.range(0, 3) }, () => ` ${rng.pick(ATTRS)}='${rng.chance(0.9) ? escapeXml(value(rng)) : value(rng)}'`).join("");
  if (depth > 5 || rng.chance(0.3)) return `<${tag}${attrs}/>`;
  const kids = Array.from({ length: rng.range(0, 4) }, () => (rng.chance(0.3) ? escapeXml(value(rng)) : element(rng, depth + 1))).join("");
  return `<${tag}${attrs}>${kids}</${tag}>`;
}

/** A document shaped like what libvirt sends, with hostile values in every slot. */
function libvirtShaped(rng: Rng): string {
  const name = escapeXml(rng.chance(0.5) ? hostileName(rng) : "vm1");
  const nic = () =>
    `<interface type='${rng.pick(["network", "bridge", "direct"])}'><mac address='${escapeXml(value(rng))}'/><source network='${escapeXml(value(rng))}' bridge='${escapeXml(value(rng))}'/>` +
    `<target dev='${escapeXml(value(rng))}'/><mtu size='${escapeXml(value(rng))}'/><vlan><tag id='${escapeXml(value(rng))}'/></vlan><port isolated='yes'/></interface>`;
  const host = () => `<host mac='${escapeXml(value(rng))}' name='${escapeXml(value(rng))}' ip='${escapeXml(value(rng))}'/>`;
  const ip = () =>
    `<ip ${rng.chance(0.3) ? "family='ipv6' " : ""}address='${escapeXml(value(rng))}' ${rng.chance(0.5) ? `prefix='${escapeXml(value(rng))}'` : `netmask='${escapeXml(value(rng))}'`}>` +
    `<dhcp><range start='${escapeXml(value(rng))}' end='${escapeXml(value(rng))}'/>${Array.from({ length: rng.range(0, 3) }, host).join("")}</dhcp></ip>`;
  const network = `<network><name>${name}</name><forward mode='${escapeXml(value(rng))}'/><bridge name='${escapeXml(value(rng))}'/>${Array.from({ length: rng.range(0, 3) }, ip).join("")}</network>`;
  return rng.pick([
    () => `<domain type='kvm'><name>${name}</name><devices>${Array.from({ length: rng.range(0, 4) }, nic).join("")}</devices></domain>`,
    () => `<domstatus><domain><name>${name}</name><devices>${nic()}${nic()}</devices></domain></domstatus>`,
    () => `<hookData>${network}<networkport><owner><name>${name}</name></owner><mac address='${escapeXml(value(rng))}'/><plug type='network' bridge='${escapeXml(value(rng))}'/></networkport></hookData>`,
    () => `<networkstatus>${network}<firewall name='fwRemoval' backend='${escapeXml(value(rng))}'/></networkstatus>`,
  ])();
}

function document(rng: Rng): string {
  return rng.weighted<() => string>([
    [4, () => mutate(rng, rng.pick(CORPUS), rng.range(1, 30))],
    [3, () => libvirtShaped(rng)],
    [1, () => mutate(rng, libvirtShaped(rng), rng.range(1, 10))],
    [2, () => element(rng, 0)],
  ])();
}

type Parsed = { domain?: DomainInfo; network?: NetworkInfo };

/** One parser on one document: a value, or an XmlError. Anything else is a crash. */
function parseOrRefuse<T>(parse: (xml: string) => T, xml: string): T | undefined {
  try {
    return parse(xml);
  } catch (e) {
    check(e instanceof XmlError, "a parser threw something other than XmlError", { error: String(e), xml: xml.slice(0, 400) });
    check(!/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test((e as Error).message), "control character in an XML error", (e as Error).message);
    return undefined;
  }
}

const RULES = compileRules([{
  path: "/etc/libvirt/hooks/rules.d/10-fuzz.rules",
  text: "forward tcp 2222 to vm1:22\nforward tcp,udp 5000-5001 to vm1\nmasquerade default\naccept default to route tcp 22\nforward tcp 8080 to 192.168.122.50:80 from 10.0.0.0/8 in eth0\n",
}]).rules;

/** ip -batch lines checked over the whole run: a fuzz that checks none proves nothing. */
let batchLines = 0;

function downstream(parsed: Parsed): void {
  const networks = new Map<string, NetworkInfo>();
  if (parsed.network) networks.set(parsed.network.name, parsed.network);
  const domains = new Map<string, DomainInfo>();
  if (parsed.domain) domains.set(parsed.domain.name, parsed.domain);
  const view = { networks, domains };
  const plan = resolvePlan(RULES, view);
  checkPlan(plan);
  for (const family of [4, 6] as const) {
    checkIptables(renderIptables(plan, family));
    checkNft(renderNft(plan, family));
  }
  // Re-attach: every tap of the document's guest is off its bridge, on a network
  // of the name its interface gives (the document's own network, when it is one),
  // so that what the fuzzed XML holds really reaches `ip -batch` lines.
  const links = new Map<string, LinkState>();
  for (const d of domains.values()) for (const i of d.interfaces) if (i.tap) links.set(i.tap, { up: false });
  const nets = new Map<string, NetworkInfo>();
  if (parsed.network) nets.set(parsed.network.name, parsed.network);
  for (const d of domains.values()) {
    for (const i of d.interfaces) {
      if (i.network && !nets.has(i.network)) nets.set(i.network, { name: i.network, bridge: i.bridge ?? "virbr0", subnets: [] } as unknown as NetworkInfo);
    }
  }
  for (const net of nets.values()) batchLines += checkIpBatch(renderIpBatch(planReattach(net, domains.values(), links, 1500)));
  for (const d of domains.values()) {
    for (const i of d.interfaces) {
      check(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(i.mac), "MAC", i.mac);
      for (const dev of [i.tap, i.bridge]) check(dev === undefined || /^[A-Za-z0-9_.:@-]{1,15}$/.test(dev), "device name", dev);
    }
  }
}

describe("fuzz: libvirt XML", () => {
  const { seeds, cases } = seedsFrom(SEEDS.xml, 500);

  it(`${seeds.length} seeds x ${cases} documents: a value or XmlError, never a crash, and safe words downstream`, () => {
    let parsedCount = 0;
    let slowest = 0;
    const n = forEachCase(seeds, cases, (rng) => {
      const xml = document(rng);
      slowest = Math.max(slowest, timed(() => {
        const domain = parseOrRefuse(parseDomainXml, xml);
        const hook = parseOrRefuse(parseNetworkHookXml, xml);
        const status = parseOrRefuse(parseNetworkStatusXml, xml);
        if (domain || hook || status) parsedCount++;
        downstream({ ...(domain ? { domain } : {}), ...(hook ? { network: hook.network } : status ? { network: status } : {}) });
      }));
    });
    console.log(`fuzz-xml: ${n} documents, ${parsedCount} parsed into a value, ${batchLines} ip -batch lines checked, slowest ${slowest.toFixed(1)} ms`);
    expect(parsedCount).toBeGreaterThan(n / 10);
    // Earlier, 0 lines over 2,500 documents: the check ran on nothing.
    expect(batchLines).toBeGreaterThan(n / 25);
    expect(slowest).toBeLessThan(1000);
  }, 120_000);
});

describe("fuzz regressions: hostile XML", () => {
  it("billion laughs, external entities and parameter entities are refused before parsing", () => {
    const lol = (n: number) => `<!ENTITY l${n} "${`&l${n - 1};`.repeat(10)}">`;
    const bomb = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY l0 "lol">${Array.from({ length: 9 }, (_, i) => lol(i + 1)).join("")}]><domain><name>&l9;</name></domain>`;
    for (const xml of [
      bomb,
      `<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/shadow">]><domain><name>&x;</name></domain>`,
      `<!doctype d [<!ENTITY % p "x">]><domain><name>a</name></domain>`,
    ]) {
      const ms = timed(() => expect(() => parseDomainXml(xml)).toThrow(/<!DOCTYPE> or <!ENTITY> declaration refused/));
      expect(ms).toBeLessThan(100);
    }
  });

  it("oversize input is refused with its size and the limit, without parsing it", () => {
    const big = `<domain><name>x</name><description>${"a".repeat(MAX_XML_BYTES)}</description></domain>`;
    expect(() => parseDomainXml(big)).toThrow(`XML input of ${big.length} bytes refused: libvirt's own XML is tens of KiB, the limit is ${MAX_XML_BYTES}`);
  });

  it("deep nesting and huge fan-out end in a value or XmlError, quickly", () => {
    for (const xml of [
      "<domain>".repeat(100_000) + "</domain>".repeat(100_000),
      `<domain><name>x</name><devices>${"<interface><mac address='52:54:00:00:00:01'/></interface>".repeat(30_000)}</devices></domain>`,
    ]) {
      const ms = timed(() => parseOrRefuse(parseDomainXml, xml));
      expect(ms).toBeLessThan(5000);
    }
  });
});
