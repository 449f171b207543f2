// A non-cryptographic digest of text, for "is this the same as last time"
// keys (the desired state, a hook's inputs, our nft table): what a change must
// alter, never a secret or a signature. node:crypto did this once; loading it
// cost about 9 ms of every event that acts (--cpu-prof, issue 15).
//
// Where Node has it (22.2 and later), zlib's CRC-32, through the zlib binding
// that node:zlib wraps (0.06 ms to reach, against 2 ms to load node:zlib): of
// each part's UTF-8 and of its UTF-16LE bytes, each part preceded by its
// length, chained, plus the total length. Native, it takes microseconds where
// the JavaScript below, run cold in V8's interpreter as a hook runs it, took
// 10-13 ms of CPU per event at 200 forwards (bench/, issue 15).
//
// Otherwise (Node 18/20), four 32-bit multiply-xor lanes over pairs of UTF-16
// code units, each with its own odd multiplier and seed, finalised with
// murmur3's avalanche and mixed across lanes: any change of one code unit
// changes every lane. The two give different digests of the same text; a
// process only ever uses one, and a digest recorded by the other merely
// fails to match once (the cost of one look at the kernel).

type Crc32 = (data: string | Uint8Array, value: number) => number;

let native: Crc32 | null | undefined;

function nativeCrc32(): Crc32 | null {
  if (native === undefined) {
    native = null;
    try {
      const b = (process as unknown as { binding(name: string): { crc32?: unknown } }).binding("zlib");
      const crc = typeof b.crc32 === "function" ? (b.crc32 as Crc32) : undefined;
      // CRC-32's check value: the binding answers as expected, or it is not used.
      if (crc && crc("123456789", 0) >>> 0 === 0xcbf43926) native = crc;
    } catch {
      // No such binding: the JavaScript digest.
    }
  }
  return native;
}

const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");

/** 32 hex digits; `parts` are digested as one text with an unambiguous separator. */
export function digest(...parts: readonly string[]): string {
  const crc = nativeCrc32();
  if (!crc) return jsDigest(...parts);
  let a = 0, b = 0, n = 0;
  for (const text of parts) {
    // The length first: ("ab", "c") and ("a", "bc") differ.
    const len = `${text.length}:`;
    a = crc(text, crc(len, a));
    b = crc(Buffer.from(text, "utf16le"), crc(len, (b ^ 0x5bd1e995) >>> 0));
    n = (n + text.length + 1) | 0;
  }
  return hex(a) + hex(b) + hex(n) + hex(parts.length);
}

const MUL = [0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f, 0x165667b1] as const;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** digest() in plain JavaScript, where Node has no native CRC-32 to lend. */
export function jsDigest(...parts: readonly string[]): string {
  let a = 0x9e3779b9 | 0, b = 0x7f4a7c15 | 0, c = 0xf39cc060 | 0, d = 0x5ced1b2f | 0;
  let n = 0;
  for (const text of parts) {
    // The length first: ("ab", "c") and ("a", "bc") differ. Then two code units
    // per step (half the steps: a hook runs this cold, in V8's interpreter, where
    // each step costs; 1.2 ms of an acting event's --cpu-prof before). An odd
    // last unit is paired with 0 (the length, hashed first, tells it from a real
    // zero), never read past the end: charCodeAt out of bounds deoptimises the
    // optimised loop (measured: 4 ms for 9 KB instead of 0.9).
    const last = text.length - 1;
    for (let i = -2; i <= last; i += 2) {
      const u = i < 0 ? text.length ^ 0x5bd1e995 : text.charCodeAt(i) | (i < last ? text.charCodeAt(i + 1) << 16 : 0);
      a = Math.imul(a ^ u, MUL[0]); a = (a << 13) | (a >>> 19);
      b = Math.imul(b ^ u, MUL[1]); b = (b << 15) | (b >>> 17);
      c = Math.imul(c ^ u, MUL[2]); c = (c << 11) | (c >>> 21);
      d = Math.imul(d ^ u, MUL[3]); d = (d << 17) | (d >>> 15);
    }
    n += text.length + 1;
  }
  a = fmix(a ^ n); b = fmix(b ^ a); c = fmix(c ^ b); d = fmix(d ^ c);
  a = fmix(a ^ d);
  return hex(a) + hex(b) + hex(c) + hex(d);
}
