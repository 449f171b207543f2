// IPv4/IPv6 addresses and prefixes as plain values. Everything the firewall
// renderers emit goes through here, so addresses reach iptables/nft in one
// canonical spelling (and equal addresses compare equal).
//
// The address checks are our own, not node:net's isIPv4/isIPv6: the first
// isIPv6 call compiles a large regular expression (about 6 ms of a hook's
// run, measured with --cpu-prof), and importing node:net costs its own
// module initialisation on a path that otherwise never needs it.

export type Family = 4 | 6;

export interface Cidr {
  readonly family: Family;
  /** Canonical network address (host bits cleared). */
  readonly address: string;
  readonly prefix: number;
}

const DIGIT_0 = 48;
const DIGIT_9 = 57;

/** Dotted quad, each part 0-255 without leading zeros (as node:net and inet_pton read it). */
export function isIPv4(text: string): boolean {
  let parts = 0;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && text.charCodeAt(i) !== 46 /* . */) continue;
    const len = i - start;
    if (len < 1 || len > 3) return false;
    let value = 0;
    for (let j = start; j < i; j++) {
      const c = text.charCodeAt(j);
      if (c < DIGIT_0 || c > DIGIT_9) return false;
      value = value * 10 + (c - DIGIT_0);
    }
    if (value > 255 || (len > 1 && text.charCodeAt(start) === DIGIT_0)) return false;
    parts++;
    start = i + 1;
  }
  return parts === 4;
}

function isHexGroup(group: string): boolean {
  if (group.length < 1 || group.length > 4) return false;
  for (let i = 0; i < group.length; i++) {
    const c = group.charCodeAt(i);
    const hex = (c >= DIGIT_0 && c <= DIGIT_9) || (c >= 97 && c <= 102) /* a-f */ || (c >= 65 && c <= 70); /* A-F */
    if (!hex) return false;
  }
  return true;
}

/**
 * RFC 4291 text form: eight hex groups, at most one "::" standing for one or
 * more zero groups, optionally an IPv4 tail in place of the last two groups.
 * No zone index ("%eth0"): a firewall rule cannot use one.
 */
export function isIPv6(text: string): boolean {
  if (text.length < 2 || text.length > 45) return false;
  const gap = text.indexOf("::");
  if (gap >= 0 && text.indexOf("::", gap + 1) >= 0) return false;
  const groupsOf = (part: string): string[] | undefined => {
    if (part === "") return [];
    const groups = part.split(":");
    return groups.every((g) => g !== "") ? groups : undefined;
  };
  const head = groupsOf(gap >= 0 ? text.slice(0, gap) : text);
  const tail = gap >= 0 ? groupsOf(text.slice(gap + 2)) : [];
  if (!head || !tail) return false;
  const all = [...head, ...tail];
  let count = all.length;
  // Only the text's very last group may be an IPv4 tail ("1.2.3.4::" is not one).
  const last = text.endsWith(":") ? undefined : all[all.length - 1];
  if (last !== undefined && last.includes(".")) {
    if (!isIPv4(last)) return false;
    all.pop();
    count++; // an IPv4 tail fills two groups
  }
  if (!all.every(isHexGroup)) return false;
  return gap >= 0 ? count <= 7 : count === 8;
}

export function familyOf(address: string): Family | undefined {
  if (isIPv4(address)) return 4;
  if (isIPv6(address)) return 6;
  return undefined;
}

function v4ToBig(a: string): bigint {
  return a.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function bigToV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join(".");
}

function v6ToBig(a: string): bigint {
  let text = a.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4tail?.[1]) {
    const n = v4ToBig(v4tail[1]);
    text = text.slice(0, -v4tail[1].length) + ((n >> 16n) & 0xffffn).toString(16) + ":" + (n & 0xffffn).toString(16);
  }
  const [head = "", tail] = text.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bigToV6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt((7 - i) * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return hex.slice(0, bestStart).join(":") + "::" + hex.slice(bestStart + bestLen).join(":");
}

export function toBig(address: string, family: Family): bigint {
  return family === 4 ? v4ToBig(address) : v6ToBig(address);
}

export function fromBig(n: bigint, family: Family): string {
  return family === 4 ? bigToV4(n) : bigToV6(n);
}

const bits = (family: Family) => (family === 4 ? 32 : 128);

/** The canonical spelling of an address, or undefined when it is not one. */
export function canonicalAddress(address: string): string | undefined {
  const family = familyOf(address);
  return family === undefined ? undefined : fromBig(toBig(address, family), family);
}

export function makeCidr(address: string, prefix: number): Cidr | undefined {
  const family = familyOf(address);
  if (family === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > bits(family)) return undefined;
  const width = BigInt(bits(family));
  const mask = prefix === 0 ? 0n : ((1n << width) - 1n) ^ ((1n << (width - BigInt(prefix))) - 1n);
  return { family, address: fromBig(toBig(address, family) & mask, family), prefix };
}

/** "10.0.0.0/8", "fd00::/64" or a bare address (a host prefix). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) {
    const family = familyOf(text);
    return family === undefined ? undefined : makeCidr(text, bits(family));
  }
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  return makeCidr(text.slice(0, slash), Number(prefixText));
}

export function prefixFromNetmask(netmask: string): number | undefined {
  if (!isIPv4(netmask)) return undefined;
  const n = v4ToBig(netmask);
  const text = n.toString(2).padStart(32, "0");
  return /^1*0*$/.test(text) ? text.indexOf("0") === -1 ? 32 : text.indexOf("0") : undefined;
}

export function cidrContains(cidr: Cidr, address: string): boolean {
  const family = familyOf(address);
  if (family !== cidr.family) return false;
  return makeCidr(address, cidr.prefix)?.address === cidr.address;
}

export function formatCidr(cidr: Cidr): string {
  return `${cidr.address}/${cidr.prefix}`;
}

export function isHostCidr(cidr: Cidr): boolean {
  return cidr.prefix === bits(cidr.family);
}

// Kernel device names as we accept them from libvirt's XML and pass them to
// iptables, nft and ip: nothing that could split a command word, end an nft
// string or escape a /sys path. libvirt's own (virbrN, vnetN, macvtapN) fit.
const DEVICE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

export function isDeviceName(name: string): boolean {
  return DEVICE_NAME.test(name) && name !== "." && name !== "..";
}

/** "52:54:00:AA:bb:0c" -> "52:54:00:aa:bb:0c"; anything else -> undefined. */
export function normalMac(mac: string): string | undefined {
  const m = mac.trim().toLowerCase();
  return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m) ? m : undefined;
}
