// What the benches build when it is missing: the two small C helpers
// (bench/*.c, compiled into .build/ when missing or older than their source;
// not committed; needs cc) and dist/floor, the do-nothing single executable
// every figure is set against.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { resolve } from "node:path";

const BENCH = resolve(import.meta.dirname, "..");
const BUILD = resolve(BENCH, "..", ".build");

/** @param {"tcp-rate"|"cputime"} name */
export function buildTool(name) {
  const source = resolve(BENCH, `${name}.c`);
  const out = resolve(BUILD, name);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) return out;
  mkdirSync(BUILD, { recursive: true });
  execFileSync("cc", ["-O2", "-pthread", "-o", out, source], { stdio: "inherit" });
  return out;
}

/** dist/floor, built by .ci/build.mjs --floor when missing; its path. */
export function ensureFloor() {
  const floor = resolve(BENCH, "..", "dist", "floor");
  if (existsSync(floor)) return floor;
  const b = spawnSync(process.execPath, [resolve(BENCH, "..", ".ci", "build.mjs"), "--floor"], { stdio: "inherit" });
  if (b.status !== 0) throw new Error("could not build dist/floor");
  return floor;
}
