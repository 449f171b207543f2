// render/observed.ts parseNftRuleset: the one `nft -j -s list ruleset ip` an
// event reads (issue 15), on nft 1.0.6's real output (test/fixtures/nft: libvirt's
// table with our accept first in `forward`, our table, and an iptables-nft table).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseNftRuleset } from "../../src/render/observed.js";
import { digest } from "../../src/apply/digest.js";

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
  it("is 32 hex digits, stable, and tells parts apart", () => {
    expect(digest("a", "bc")).toMatch(/^[0-9a-f]{32}$/);
    expect(digest("a", "bc")).toBe(digest("a", "bc"));
    expect(digest("a", "bc")).not.toBe(digest("ab", "c"));
    expect(digest("x".repeat(1000))).not.toBe(digest("x".repeat(999) + "y"));
  });
});
