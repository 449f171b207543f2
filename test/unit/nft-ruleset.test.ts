// render/observed.ts parseNftRuleset: the one `nft -j -s list ruleset ip` an
// event reads (issue 15), on nft 1.0.6's real output (test/fixtures/nft: libvirt's
// table with our accept first in `forward`, our table, and an iptables-nft table).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseNftRuleset } from "../../src/render/observed.js";
import { digest, jsDigest } from "../../src/apply/digest.js";
import * as zlib from "node:zlib";

const names = { ours: "virt_hooks", libvirt: "libvirt_network", libvirtComment: "virt-hooks" };
const real = readFileSync(new URL("../fixtures/nft/ruleset-ip.json", import.meta.url), "utf8");

describe("parseNftRuleset", () => {
  it("finds both tables, libvirt's forward rules in order with ours first, and only our table's objects", () => {
    const o = parseNftRuleset(real, "ip", names);
    expect(o.ourTable).toBe(true);
    expect(o.libvirtTable).toBe(true);
    expect(o.libvirtForward.map((r) => r.ours)).toEqual([true, false, false, false]);
    expect(o.ourTableText).toContain('"name":"virt_hooks"');
    expect(o.ourTableText).not.toContain("libvirt_network");
    expect(o.ourTableText).not.toContain('"FORWARD"');
  });

  it("another family's listing holds nothing of ours", () => {
    expect(parseNftRuleset(real, "ip6", names)).toEqual({ ourTable: false, libvirtTable: false, libvirtForward: [], ourTableText: "" });
  });

  it("libvirt's table without a forward chain counts as absent (nothing to sit in front of)", () => {
    const json = JSON.stringify({ nftables: [{ table: { family: "ip", name: "libvirt_network", handle: 1 } }, { chain: { family: "ip", table: "libvirt_network", name: "guest_nat", handle: 2 } }] });
    expect(parseNftRuleset(json, "ip", names)).toMatchObject({ libvirtTable: false, libvirtForward: [] });
  });

  it("the fingerprint follows any change in our table, not in others", () => {
    const base = parseNftRuleset(real, "ip", names).ourTableText;
    const flushed = JSON.parse(real) as { nftables: Record<string, { table?: string }>[] };
    flushed.nftables = flushed.nftables.filter((i) => !(i.rule && i.rule.table === "virt_hooks"));
    expect(digest(parseNftRuleset(JSON.stringify(flushed), "ip", names).ourTableText)).not.toBe(digest(base));
    const otherChanged = JSON.parse(real) as { nftables: Record<string, unknown>[] };
    otherChanged.nftables.push({ rule: { family: "ip", table: "filter", chain: "FORWARD", handle: 99, expr: [] } });
    expect(parseNftRuleset(JSON.stringify(otherChanged), "ip", names).ourTableText).toBe(base);
  });
});

describe("digest", () => {
  // The native CRC-32 path (Node >= 22.2, 20.15) and the JavaScript one (older Nodes) alike.
  for (const [name, d] of [["digest", digest], ["jsDigest", jsDigest]] as const) {
    it(`${name}: 32 hex digits, stable, and tells parts, lengths and every unit apart`, () => {
      expect(d("a", "bc")).toMatch(/^[0-9a-f]{32}$/);
      expect(d("a", "bc")).toBe(d("a", "bc"));
      expect(d("a", "bc")).not.toBe(d("ab", "c"));
      expect(d("a", "")).not.toBe(d("a"));
      expect(d("x".repeat(1000))).not.toBe(d("x".repeat(999) + "y"));
      expect(d("x".repeat(1001))).not.toBe(d("x".repeat(1000)));
      expect(d("héllo ✓")).not.toBe(d("hello ✓"));
      const rules = Array.from({ length: 200 }, (_, i) => `forward tcp 192.168.1.100:${20000 + i} to vm:${22 + i}\n`).join("");
      const seen = new Set([d(rules)]);
      for (let i = 0; i < rules.length; i += 97) seen.add(d(rules.slice(0, i) + (rules[i] === "1" ? "2" : "1") + rules.slice(i + 1)));
      expect(seen.size).toBe(1 + Math.ceil(rules.length / 97));
    });
  }

  it.runIf(typeof zlib.crc32 === "function")("takes the native path where Node has CRC-32", () => {
    expect(digest("a", "bc")).not.toBe(jsDigest("a", "bc"));
    // CRC-32 of "1:" (the length) then "a" (UTF-8), as node:zlib computes it.
    expect(digest("a").slice(0, 8)).toBe((zlib.crc32("a", zlib.crc32("1:")) >>> 0).toString(16).padStart(8, "0"));
  });
});
