// The resident set of one run split into private and file-backed pages (see
// rss-at-exit.cjs): the environment that makes a run record it, and the record.
// At exit, not at the peak: a hook's heap only grows in its few tens of
// milliseconds (VmHWM, the peak, is recorded beside it).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const PRELOAD = resolve(import.meta.dirname, "rss-at-exit.cjs");

/** Runs `fn(env)` with `env` extended to record the split; resolves with fn's result and the split in MiB (or undefined). */
export async function withMemorySplit(env, fn) {
  const dir = mkdtempSync(join(tmpdir(), "virt-hooks-bench-rss-"));
  const out = join(dir, "rss.json");
  try {
    const result = await fn({ ...env, NODE_OPTIONS: `--require ${PRELOAD}`, VIRT_HOOKS_BENCH_RSS_OUT: out });
    let split;
    try {
      const kb = JSON.parse(readFileSync(out, "utf8"));
      split = { peakMiB: kb.hwm / 1024, privateMiB: kb.anon / 1024, fileMiB: kb.file / 1024 };
    } catch {
      split = undefined;
    }
    return { result, split };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
