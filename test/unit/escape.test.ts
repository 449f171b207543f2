// The one escaper every face prints through (src/text/escape.ts): nothing a
// guest or a name brings in reaches a terminal or a log record raw, and JSON
// text stays JSON that parses back to the exact string.
import { describe, expect, it } from "vitest";
import { escapeLine, escapeText } from "../../src/text/escape.js";
import { escapingIo } from "../../src/cli/io.js";
import { renderTable } from "../../src/cli/table.js";

const code = (c: number) => String.fromCharCode(c);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
/** Every code point the brief names, and the invisible neighbours we add. */
const HOSTILE = [
  ...range(0x00, 0x08), ...range(0x0b, 0x1f), 0x7f, ...range(0x80, 0x9f),
  0x061c, 0x200e, 0x200f, 0x2028, 0x2029, ...range(0x202a, 0x202e), ...range(0x2066, 0x2069),
  ...range(0x200b, 0x200d), ...range(0x2060, 0x2064), 0xfeff, ...range(0xfff9, 0xfffb),
];
const RAW = new RegExp(`[${HOSTILE.map((c) => `\\u${c.toString(16).padStart(4, "0")}`).join("")}]`);
const EVIL = "web\x1b]0;owned\x07\x1b[2J\x9b31m\u202egnp.exe\u2028virt-hooks: fake\r\x7f\u2066x\u2069";

describe("escapeText / escapeLine", () => {
  it("escapes every hostile code point as \\uXXXX, one by one", () => {
    for (const c of HOSTILE) {
      const s = `a${code(c)}b`;
      expect(escapeText(s), c.toString(16)).toBe(`a\\u${c.toString(16).padStart(4, "0")}b`);
      expect(escapeLine(s), c.toString(16)).toBe(`a\\u${c.toString(16).padStart(4, "0")}b`);
    }
  });

  it("keeps newlines and tabs in text, escapes them in a record", () => {
    expect(escapeText("a\nb\tc")).toBe("a\nb\tc");
    expect(escapeLine("a\nb\tc")).toBe("a\\u000ab\\u0009c");
  });

  it("leaves printable text alone, Unicode letters and emoji included, and is idempotent", () => {
    const fine = "vm-1 café 名前 \u00a0 \u00ff \u2030 😀 \\ \" ' <>";
    expect(escapeText(fine)).toBe(fine);
    expect(escapeText(escapeText(EVIL))).toBe(escapeText(EVIL));
    expect(escapeLine(escapeLine(EVIL))).toBe(escapeLine(EVIL));
  });

  it("a hostile name leaves nothing raw, and the rest of it readable", () => {
    const out = escapeLine(EVIL);
    expect(out).not.toMatch(RAW);
    expect(out).not.toMatch(/[\n\r\t]/);
    expect(out).toBe("web\\u001b]0;owned\\u0007\\u001b[2J\\u009b31m\\u202egnp.exe\\u2028virt-hooks: fake\\u000d\\u007f\\u2066x\\u2069");
  });

  it("JSON through the text escaper still parses to the exact string", () => {
    const doc = { hostname: EVIL, nested: [EVIL, "a\\u001b"], plain: "x" };
    const text = escapeText(JSON.stringify(doc, null, 2));
    expect(text).not.toMatch(RAW);
    expect(JSON.parse(text)).toEqual(doc);
  });
});

describe("the sinks use it", () => {
  it("escapingIo escapes stdout and stderr, and keeps a raw channel for painted tables only", () => {
    const seen: string[] = [];
    const io = escapingIo({ out: (t) => seen.push(`out:${t}`), err: (t) => seen.push(`err:${t}`), stdin: async () => "", now: () => 0, version: "x" });
    io.out(`${EVIL}\n`);
    io.err(`${EVIL}\n`);
    for (const s of seen) expect(s).not.toMatch(RAW);
    expect(seen[0]).toBe(`out:${escapeText(EVIL)}\n`);
  });

  it("renderTable escapes cells before measuring and painting them", () => {
    const t = renderTable([{ title: "NAME" }, { title: "X" }], [[EVIL, "1"]], (_r, _c, padded) => `\x1b[32m${padded}\x1b[0m`);
    const withoutOurColours = t.replace(/\x1b\[(?:32|0)m/g, "");
    expect(withoutOurColours).not.toMatch(RAW);
    expect(withoutOurColours).toContain(escapeLine(EVIL));
  });
});
