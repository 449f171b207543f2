// Our own IPv4/IPv6 text checks (src/net/ip.ts) against node:net's, which the
// hook no longer loads: the same verdict for every address-shaped string, zone
// indexes ("fe80::1%eth0") aside, which ours refuse on purpose.
import { isIPv4 as nodeIsIPv4, isIPv6 as nodeIsIPv6 } from "node:net";
import { describe, expect, it } from "vitest";
import { isIPv4, isIPv6 } from "../../src/net/ip.js";
import { Rng } from "./fuzz-seeds/prng.js";

const KNOWN = [
  "0.0.0.0", "255.255.255.255", "192.168.122.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.256", "1..2.3", ".1.2.3", "1.2.3.",
  "::", "::1", "1::", "fe80::1", "2001:db8::8a2e:370:7334", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1::2::3", ":::", ":1::", "1::2:", "12345::", "g::1", "::ffff:192.168.1.1",
  "::ffff:192.168.1", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4", "1.2.3.4::", "FE80::ABCD", "",
  "[::1]", " ::1", "::1 ", "0:0:0:0:0:0:0:0", "::0.0.0.0", "1::1.2.3.04",
  // Characters one bit away from hex digits (found by the rule fuzzer: "\x12d00:6::11" passed).
  "\x12d00:6::11", "\x10::1", "::\x19", "G::1", "`::1", "@::1", "1.2.3.\x14",
];

/** Strings built from the characters addresses are made of, shaped like them often enough to matter. */
function candidate(rng: Rng): string {
  const alphabet = "0123456789abcdefABCDEFg:.:.\x10\x12\x19`@G ";
  if (rng.chance(0.3)) {
    const parts = Array.from({ length: rng.chance(0.7) ? 4 : rng.range(1, 6) }, () => String(rng.range(0, 280)).padStart(rng.chance(0.1) ? 3 : 1, "0"));
    return parts.join(".");
  }
  if (rng.chance(0.5)) {
    const groups = Array.from({ length: rng.chance(0.4) ? 8 : rng.range(1, 10) }, () => (rng.chance(0.15) ? "" : rng.range(0, rng.chance(0.9) ? 0xffff : 0x1ffff).toString(16)));
    let text = groups.join(":");
    if (rng.chance(0.2)) text += `:${rng.range(0, 256)}.${rng.range(0, 256)}.${rng.range(0, 256)}.${rng.range(0, 256)}`;
    return text;
  }
  return Array.from({ length: rng.range(0, 20) }, () => alphabet[rng.int(alphabet.length)]).join("");
}

describe("address checks", () => {
  it("agree with node:net on known cases", () => {
    for (const text of KNOWN) {
      expect([text, isIPv4(text)]).toEqual([text, nodeIsIPv4(text)]);
      expect([text, isIPv6(text)]).toEqual([text, nodeIsIPv6(text)]);
    }
  });

  it("agree with node:net on 20,000 generated strings", () => {
    const rng = new Rng(0x1b6);
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      const text = candidate(rng);
      expect([text, isIPv4(text)]).toEqual([text, nodeIsIPv4(text)]);
      expect([text, isIPv6(text)]).toEqual([text, nodeIsIPv6(text)]);
      if (isIPv4(text) || isIPv6(text)) valid++;
    }
    expect(valid).toBeGreaterThan(1000); // the generator does reach valid addresses
  });

  it("refuse zone indexes, which node:net accepts", () => {
    expect(nodeIsIPv6("fe80::1%eth0")).toBe(true);
    expect(isIPv6("fe80::1%eth0")).toBe(false);
  });
});
