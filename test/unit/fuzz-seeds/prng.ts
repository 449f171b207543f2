// A tiny seeded generator for the fuzz tests: no dependency, and the same seed
// gives the same cases on every machine, so a failure is a reproducible input
// (the failing seed and case number are printed with it).
//
// sfc32 seeded through splitmix32: fast, 128 bits of state, good enough
// statistics for picking test inputs (not for anything cryptographic).

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const split = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** 0 <= n < max */
  int(max: number): number {
    return max <= 0 ? 0 : this.u32() % max;
  }

  /** lo <= n <= hi */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  /** Picks by weight: [[weight, value], ...]. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    const total = items.reduce((n, [w]) => n + w, 0);
    let r = this.int(total);
    for (const [w, v] of items) {
      if (r < w) return v;
      r -= w;
    }
    return (items[items.length - 1] as readonly [number, T])[1];
  }

  /** A child generator: cases stay independent of how much each one drew. */
  fork(n: number): Rng {
    return new Rng((this.seed ^ Math.imul(n + 1, 0x27d4eb2d)) >>> 0);
  }
}

/** Runs `cases` cases per seed; a failure names its seed and case so it can be replayed alone. */
export function forEachCase(seeds: readonly number[], cases: number, body: (rng: Rng, label: string) => void): number {
  let n = 0;
  const only = process.env.FUZZ_CASE; // "seed:case" replays one case
  for (const seed of seeds) {
    const root = new Rng(seed);
    for (let i = 0; i < cases; i++) {
      const label = `seed ${seed} case ${i}`;
      if (only && only !== `${seed}:${i}`) continue;
      const rng = root.fork(i);
      try {
        body(rng, label);
      } catch (e) {
        const err = e as Error;
        err.message = `${label} (replay: FUZZ_CASE=${seed}:${i}): ${err.message}`;
        throw err;
      }
      n++;
    }
  }
  return n;
}

/** Seeds and cases per seed: committed ones, or FUZZ_SEEDS=1,2,3 / FUZZ_CASES=N for a longer run. */
export function seedsFrom(committed: readonly number[], cases: number): { seeds: number[]; cases: number } {
  const env = process.env.FUZZ_SEEDS;
  const seeds = env ? env.split(",").map((s) => Number(s.trim()) >>> 0) : [...committed];
  const n = process.env.FUZZ_CASES ? Number(process.env.FUZZ_CASES) : cases;
  return { seeds, cases: n };
}

// Hostile text: what names, words and values in the fuzz cases are made of.
export const HOSTILE_PIECES = [
  " ", "  ", "\t", "'", '"', "\\", ";", "$(reboot)", "`id`", "${IFS}", "|", "&", "&&", ">", "<", "*", "?", "~", "!",
  "#", "@", ":", ",", "-", "--", "/", "..", "%", "=", "+", "{", "}", "[", "]", "(", ")",
  "\n", "\r", "\x00", "\x1b[31m", "\x7f", "\u00e9", "\u00df", "\u4e2d\u6587", "\u{1f600}", "\u202e", "\u200b", "\ufeff", "\ud800",
  "&amp;", "&lt;", "&#10;", "&#0;", "]]>", "<!--", "-->", "<x/>", "'\\''", "\" -j ACCEPT \"", "-A FORWARD", "COMMIT", "*filter", "} ; flush ruleset ; {",
  "vm", "web", "default", "virbr0", "devstack", "a",
];

/** A name made of hostile pieces; sometimes 200+ characters. */
export function hostileName(rng: Rng, allowControl = true): string {
  const pieces = allowControl ? HOSTILE_PIECES : HOSTILE_PIECES.filter((p) => !/[\x00-\x1f\x7f]/.test(p));
  let s = "";
  const n = rng.range(1, 6);
  for (let i = 0; i < n; i++) s += rng.chance(0.5) ? rng.pick(pieces) : String.fromCharCode(rng.range(0x20, 0x7e));
  if (rng.chance(0.15)) s = s.repeat(Math.ceil(rng.range(200, 400) / Math.max(1, s.length))).slice(0, rng.range(200, 400));
  return s;
}

/** Random text: printable, hostile pieces and raw code units. */
export function randomText(rng: Rng, maxLen: number): string {
  let s = "";
  const len = rng.range(0, maxLen);
  while (s.length < len) {
    s += rng.weighted<() => string>([
      [5, () => String.fromCharCode(rng.range(0x20, 0x7e))],
      [2, () => rng.pick(HOSTILE_PIECES)],
      [1, () => String.fromCharCode(rng.range(0, 0xffff))],
      [1, () => " "],
    ])();
  }
  return s;
}

/** Byte-level mutations of a real input: flips, deletions, duplications, splices of hostile pieces. */
export function mutate(rng: Rng, text: string, rounds = rng.range(1, 8)): string {
  let s = text;
  for (let r = 0; r < rounds; r++) {
    const at = rng.int(s.length + 1);
    const len = rng.range(1, 12);
    s = rng.weighted<() => string>([
      [3, () => s.slice(0, at) + rng.pick(HOSTILE_PIECES) + s.slice(at)],
      [3, () => s.slice(0, at) + s.slice(at + len)],
      [2, () => s.slice(0, at) + s.slice(at, at + len).repeat(rng.range(2, 5)) + s.slice(at + len)],
      [2, () => s.slice(0, at) + String.fromCharCode(rng.range(0, 0x7f)) + s.slice(at + 1)],
      [1, () => {
        const from = rng.int(s.length + 1);
        return s.slice(0, at) + s.slice(from, from + rng.range(1, 80)) + s.slice(at);
      }],
      [1, () => s.slice(0, at) + randomText(rng, 20) + s.slice(at)],
    ])();
  }
  return s;
}
