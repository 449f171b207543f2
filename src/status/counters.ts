// Packet and byte counters of our rules, read from what the kernel prints:
// `iptables-save -c` and `nft -j list table`. Every rule we write carries the
// comment "virt-hooks FILE:LINE", so counters are matched to rules by that
// origin, never by guessing at rule text. Pure: text in, numbers out.
import { basename } from "node:path";
import { positionOf, type Span } from "../rules/source.js";
import { NFT_TABLE } from "../render/nftables.js";

export interface Counter {
  packets: number;
  bytes: number;
}

/**
 * Per origin ("FILE:LINE"): `connections` counts new flows (nat rules see only
 * a flow's first packet), `traffic` the packets and bytes we let through.
 */
export interface OriginCounters {
  connections?: number;
  traffic?: Counter;
}

export type CountersByOrigin = Map<string, OriginCounters>;

/** The key our rules' comments carry: rules.d file name and line. */
export const originKey = (span: Span) => `${basename(span.file.path)}:${positionOf(span.file, span.start).line}`;

const COMMENT = /--comment "?virt-hooks ([^"\s]+)"?/;

function add(map: CountersByOrigin, origin: string, kind: "connections" | "traffic", c: Counter): void {
  const o = map.get(origin) ?? {};
  if (kind === "connections") o.connections = (o.connections ?? 0) + c.packets;
  else o.traffic = { packets: (o.traffic?.packets ?? 0) + c.packets, bytes: (o.traffic?.bytes ?? 0) + c.bytes };
  map.set(origin, o);
}

/** `iptables-save -c` text: "[pkts:bytes] -A CHAIN spec" lines of our chains. */
export function iptablesCounters(saveText: string, into: CountersByOrigin = new Map()): CountersByOrigin {
  let table = "";
  for (const line of saveText.split("\n")) {
    if (line.startsWith("*")) { table = line.slice(1).trim(); continue; }
    const m = /^\[(\d+):(\d+)\] -A (VIRT_HOOKS_\w+) (.*)$/.exec(line);
    if (!m) continue;
    const origin = COMMENT.exec(m[4] as string)?.[1];
    if (!origin) continue;
    const c = { packets: Number(m[1]), bytes: Number(m[2]) };
    const spec = m[4] as string;
    if (table === "filter") add(into, origin, "traffic", c);
    // DNAT: one per forwarded flow. MASQUERADE of a `masquerade` network (a
    // forward's hairpin MASQUERADE would count its flows twice).
    else if (table === "nat" && (/-j DNAT\b/.test(spec) || (m[3] === "VIRT_HOOKS_POST" && /-j MASQUERADE$/.test(spec) && !spec.includes("--ctstate DNAT")))) {
      add(into, origin, "connections", c);
    }
  }
  return into;
}

/** iptables-save -c text without counters: what parseIptablesSave reads. */
export const withoutCounters = (saveText: string) => saveText.replace(/^\[\d+:\d+\] /gm, "");

// --- nftables -------------------------------------------------------------

type Json = unknown;
interface NftRuleJson { family: string; table: string; chain: string; comment?: string; expr?: Json[] }
interface NftSetJson { family: string; name: string; table: string; elem?: Json[] }

/** Element counters of our maps and sets, keyed by the element's key as text ("tcp . 22"). */
export interface NftObservation {
  readonly counters: CountersByOrigin;
  /** "set-or-map name" -> key text -> counter, for elements that have one (sets declared with `counter`). */
  readonly elements: Map<string, Map<string, Counter | undefined>>;
  /** chain name -> number of rules. */
  readonly chainRules: Map<string, number>;
}

function counterOf(expr: Json[] | undefined): Counter | undefined {
  for (const e of expr ?? []) {
    const c = (e as { counter?: { packets?: number; bytes?: number } }).counter;
    if (c && typeof c.packets === "number") return { packets: c.packets, bytes: c.bytes ?? 0 };
  }
  return undefined;
}

const isNat = (expr: Json[] | undefined) => (expr ?? []).some((e) => typeof e === "object" && e !== null && ("dnat" in e || "masquerade" in e || "snat" in e));

/** An element value as nft writes it in text: "tcp . 22", "10.0.0.1 . tcp . 22-23". */
export function nftValueText(v: Json): string {
  if (typeof v === "string" || typeof v === "number") return String(v);
  if (v && typeof v === "object") {
    const o = v as { concat?: Json[]; range?: Json[]; prefix?: { addr: Json; len: number } };
    if (o.concat) return o.concat.map(nftValueText).join(" . ");
    if (o.range) return o.range.map(nftValueText).join("-");
    if (o.prefix) return `${nftValueText(o.prefix.addr)}/${o.prefix.len}`;
  }
  return JSON.stringify(v);
}

function elementOf(e: Json): { key: string; counter?: Counter } {
  // Map elements are [key, data]; set elements the key alone. Either may be
  // wrapped in {"elem": {"val": …, "counter": …}} when it has a counter.
  const key = Array.isArray(e) ? e[0] : e;
  const wrapped = (key as { elem?: { val: Json; counter?: { packets: number; bytes: number } } })?.elem;
  if (wrapped) return { key: nftValueText(wrapped.val), ...(wrapped.counter ? { counter: { packets: wrapped.counter.packets, bytes: wrapped.counter.bytes } } : {}) };
  return { key: nftValueText(key) };
}

/** `nft -j list table FAMILY virt_hooks`: rule counters by comment, element counters, rule counts. */
export function nftCounters(json: string, into: CountersByOrigin = new Map()): NftObservation {
  const items = ((JSON.parse(json) as { nftables?: Json[] }).nftables ?? []) as Record<string, Json>[];
  const elements = new Map<string, Map<string, Counter | undefined>>();
  const chainRules = new Map<string, number>();
  for (const item of items) {
    const rule = item.rule as NftRuleJson | undefined;
    if (rule && rule.table === NFT_TABLE) {
      chainRules.set(rule.chain, (chainRules.get(rule.chain) ?? 0) + 1);
      const origin = /^virt-hooks (\S+)$/.exec(rule.comment ?? "")?.[1];
      const c = counterOf(rule.expr);
      // forward: the traffic we mark through; nat chains: one packet per flow.
      if (origin && c) add(into, origin, rule.chain === "forward" || !isNat(rule.expr) ? "traffic" : "connections", c);
      continue;
    }
    const set = (item.set ?? item.map) as NftSetJson | undefined;
    if (set && set.table === NFT_TABLE) {
      const m = new Map<string, Counter | undefined>();
      for (const e of set.elem ?? []) {
        const el = elementOf(e);
        m.set(el.key, el.counter);
      }
      elements.set(set.name, m);
    }
  }
  return { counters: into, elements, chainRules };
}
