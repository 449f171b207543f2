// The bench's two small C helpers (bench/*.c), compiled into .build/ when
// missing or older than their source. Not committed; needs cc.
import { execFileSync } from "node:child_process";
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
