// Which programs one hook run started, from `strace -f -e trace=execve`: the
// firewall transactions (iptables-restore, nft -f) and every other child. Used
// in a separate, untimed pass: tracing slows the process down many times.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timed } from "./measure.mjs";

/** Runs argv under strace; returns the run and the programs it executed (itself excluded). */
export async function traceChildren(argv, opts) {
  const dir = mkdtempSync(join(tmpdir(), "virt-hooks-bench-trace-"));
  const log = join(dir, "execve");
  try {
    const r = await timed(["strace", "-f", "-qq", "-s", "128", "-e", "trace=execve", "-o", log, ...argv], opts);
    const execs = readFileSync(log, "utf8")
      .split("\n")
      .filter((l) => / execve\(/.test(l) && / = 0$/.test(l))
      .map((l) => {
        const m = /execve\("([^"]*)", \[(.*?)\]/.exec(l);
        const args = m ? [...m[2].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1]) : [];
        return { path: m?.[1] ?? "?", args };
      });
    return { run: r, children: execs.slice(1) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const base = (p) => p.slice(p.lastIndexOf("/") + 1);

/** Firewall transactions among children: *-restore, or nft reading a script (-f). */
export const isTransaction = (c) => /-restore$/.test(base(c.path)) || (base(c.path) === "nft" && c.args.includes("-f"));

export function summarize(children) {
  const tx = children.filter(isTransaction).length;
  const others = children.filter((c) => !isTransaction(c)).map((c) => [base(c.path), ...c.args.slice(1)].join(" "));
  return { tx, children: children.length, others };
}
