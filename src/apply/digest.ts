// A 128-bit non-cryptographic digest of text, for "is this the same as last
// time" keys (the desired state, a hook's inputs, our nft table): what a
// change must alter, never a secret or a signature. node:crypto did this
// before; loading it cost about 9 ms of every event that acts (--cpu-prof,
// issue 15), more than hashing the largest rule set here in plain JavaScript.
// Four 32-bit multiply-xor lanes over pairs of UTF-16 code units, each with its own
// odd multiplier and seed, finalised with murmur3's avalanche and mixed
// across lanes: any change of one code unit changes every lane.

const MUL = [0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f, 0x165667b1] as const;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** 32 hex digits; `parts` are digested as one text with an unambiguous separator. */
export function digest(...parts: readonly string[]): string {
  let a = 0x9e3779b9 | 0, b = 0x7f4a7c15 | 0, c = 0xf39cc060 | 0, d = 0x5ced1b2f | 0;
  let n = 0;
  for (const text of parts) {
    // The length first: ("ab", "c") and ("a", "bc") differ. Then two code units
    // per step (half the steps: a hook runs this cold, in V8's interpreter, where
    // each step costs; 1.2 ms of an acting event's --cpu-prof before). Past the
    // end charCodeAt is NaN, which `|` and `<<` take as 0: the length, hashed
    // first, tells a padded last unit from a real zero.
    for (let i = -2; i < text.length; i += 2) {
      const u = i < 0 ? text.length ^ 0x5bd1e995 : text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16);
      a = Math.imul(a ^ u, MUL[0]); a = (a << 13) | (a >>> 19);
      b = Math.imul(b ^ u, MUL[1]); b = (b << 15) | (b >>> 17);
      c = Math.imul(c ^ u, MUL[2]); c = (c << 11) | (c >>> 21);
      d = Math.imul(d ^ u, MUL[3]); d = (d << 17) | (d >>> 15);
    }
    n += text.length + 1;
  }
  a = fmix(a ^ n); b = fmix(b ^ a); c = fmix(c ^ b); d = fmix(d ^ c);
  a = fmix(a ^ d);
  const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");
  return hex(a) + hex(b) + hex(c) + hex(d);
}
