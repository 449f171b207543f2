// The host tier's targets: which Debian, which libvirt firewall backend, and
// which test file runs where. A target is a cached root (make-root.sh) plus what
// is laid over it before boot, so Debian 13's two backends share one root.
//
// Which files run where (CI's time is the limit: every file on each Debian's
// default, plus what a second backend adds):
//   stock       Debian 12, libvirt 9.0 iptables, firewalld 1.3.3, Node 18: every file
//   trixie      Debian 13, libvirt 11.3 iptables (Debian's default), firewalld 2.3.1, Node 20: every file
//               (cockpit.test.ts: stock's Cockpit 287 and trixie's 337, on those two alone)
//   trixie-nft  Debian 13, libvirt 11.3 with firewall_backend = "nftables": every file but
//               the package's (its scripts touch the firewall only through `virt-hooks`,
//               which the other files prove on this backend)
//   backports   Debian 12 + bookworm-backports, libvirt 11.3 nftables: the outages of
//               firewalld's and our own rules only, the one place it adds what trixie-nft
//               does not: our nft rules repaired under nftables 1.0.6 and firewalld 1.3.3
//               (which flushes iptables on reload)
import { readFileSync } from "node:fs";
import { describe, it } from "vitest";
import { join } from "node:path";
import { Host, makeRoot } from "./boot.js";

export type TargetName = "stock" | "backports" | "trixie" | "trixie-nft";
export type HostFile = "install" | "outages" | "articles" | "migrate" | "package" | "cockpit";

export interface Target {
  name: TargetName;
  /** The cached root it boots (make-root.sh's argument). */
  root: "stock" | "backports" | "trixie";
  debian: 12 | 13;
  /** libvirt's firewall backend on this target: which of our objects a test damages. */
  backend: "iptables" | "nftables";
  /** Debian's own Node major version (the README's from-source install runs on it). */
  node: number;
  /** Files laid over the root before boot, as full contents (path -> root's file -> new text). */
  overlay?: Record<string, (lower: string) => string>;
  /** outages.test.ts: only the cases whose names match (all when absent). */
  outages?: RegExp;
}

const NFT_BACKEND = { "/etc/libvirt/network.conf": (lower: string) => `${lower}\nfirewall_backend = "nftables"\n` };

export const TARGETS: Record<TargetName, Target> = {
  stock: { name: "stock", root: "stock", debian: 12, backend: "iptables", node: 18 },
  // What only it has: firewalld 1.3.3 and nftables 1.0.6 around our nft objects. So the cases
  // that rebuild firewalld's or our rules; libvirt's own restarts are trixie-nft's libvirt 11.3.
  backports: {
    name: "backports", root: "backports", debian: 12, backend: "nftables", node: 18,
    outages: /^(firewall-cmd --reload|systemctl (reload|restart) firewalld|nft flush ruleset|iptables -F|our accept rule|nft delete table ip virt_hooks)/,
  },
  trixie: { name: "trixie", root: "trixie", debian: 13, backend: "iptables", node: 20 },
  "trixie-nft": { name: "trixie-nft", root: "trixie", debian: 13, backend: "nftables", node: 20, overlay: NFT_BACKEND },
};

const COVERAGE: Record<HostFile, TargetName[]> = {
  install: ["stock", "trixie", "trixie-nft"],
  outages: ["stock", "backports", "trixie", "trixie-nft"],
  articles: ["stock", "trixie", "trixie-nft"],
  migrate: ["stock", "trixie", "trixie-nft"],
  package: ["stock", "trixie"],
  // The browser tier: Debian 12's Cockpit 287 and Debian 13's 337 (the page reads
  // `virt-hooks status --json`, which the other files prove on each backend).
  cockpit: ["stock", "trixie"],
};

/** The targets a file runs on; VH_HOST_TARGETS=a,b narrows them (while working on one). */
export function targetsFor(file: HostFile): Target[] {
  const only = process.env.VH_HOST_TARGETS?.split(",").filter(Boolean);
  return COVERAGE[file].filter((n) => !only || only.includes(n)).map((n) => TARGETS[n]);
}

/** The target's root, built or reused; the same for every host booted from it. */
export function rootOf(t: Target, repo: string): string {
  return makeRoot(t.root, repo);
}

/** Boots a host of target `t` from its root (see rootOf). */
export function bootTarget(t: Target, root: string, name: string): Promise<Host> {
  const files: Record<string, string> = {};
  for (const [path, edit] of Object.entries(t.overlay ?? {})) files[path] = edit(readFileSync(join(root, path), "utf8"));
  return Host.boot(root, name, files);
}

/**
 * One describe block per target the file runs on, titled "TITLE: TARGET". A file
 * whose targets VH_HOST_TARGETS filtered out reports one skipped suite, not vitest's
 * "no test suite found" failure.
 */
export function describeTargets(file: HostFile, title: string, body: (t: Target) => void): void {
  const ts = targetsFor(file);
  if (!ts.length) describe.skip(`${title}: no target of ${file} in VH_HOST_TARGETS`, () => { it.skip("(none)", () => {}); });
  for (const t of ts) describe(`${title}: ${t.name}`, () => body(t));
}
