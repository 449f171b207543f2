// The host tier's lab (test/host/lab/*.ts) for a plain Node script: esbuild
// (a dependency already) compiles boot.ts and scene.ts into .build/restart-lab/
// once per run, and they are imported from there. Only boot.ts and scene.ts:
// targets.ts imports vitest, so its two Debian 13 targets are restated here
// (same root, same overlay: network.conf saying nftables).
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const REPO = resolve(import.meta.dirname, "..", "..");
const OUT = resolve(REPO, ".build", "restart-lab");

/** @returns {Promise<{ Host: any, makeRoot: (t: string, repo: string) => string, scene: any }>} */
export async function loadLab() {
  mkdirSync(OUT, { recursive: true });
  await build({
    entryPoints: { boot: resolve(REPO, "test/host/lab/boot.ts"), scene: resolve(REPO, "test/host/lab/scene.ts") },
    outdir: OUT, outExtension: { ".js": ".mjs" }, bundle: true, platform: "node", format: "esm",
    packages: "external", logLevel: "error",
  });
  const boot = await import(pathToFileURL(join(OUT, "boot.mjs")).href);
  const scene = await import(pathToFileURL(join(OUT, "scene.mjs")).href);
  return { Host: boot.Host, makeRoot: boot.makeRoot, scene };
}

/** test/host/lab/targets.ts's trixie and trixie-nft: Debian 13, libvirt 11.3, firewalld 2.3.1. */
export const TARGETS = {
  trixie: { name: "trixie", root: "trixie", backend: "iptables", overlay: {} },
  "trixie-nft": {
    name: "trixie-nft", root: "trixie", backend: "nftables",
    overlay: { "/etc/libvirt/network.conf": (lower) => `${lower}\nfirewall_backend = "nftables"\n` },
  },
};

/** Boots target `t` (as targets.ts's bootTarget does). */
export async function bootTarget(lab, t, name) {
  const root = lab.makeRoot(t.root, REPO);
  const files = {};
  for (const [path, edit] of Object.entries(t.overlay)) files[path] = edit(readFileSync(join(root, path), "utf8"));
  return lab.Host.boot(root, name, files);
}
