// Loaded into one untimed run of a hook (NODE_OPTIONS=--require, bench/lib/memory.mjs):
// at exit, writes the process's resident set split into private (anonymous) and
// file-backed pages. ru_maxrss counts both, and most of it is the 120 MB
// executable's own pages, which the page cache shares between every process
// running it; the private part is what each further hook in a storm adds.
"use strict";
const fs = require("node:fs");
const out = process.env.VIRT_HOOKS_BENCH_RSS_OUT;
if (out) {
  process.on("exit", () => {
    try {
      const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1]);
      fs.writeFileSync(out, JSON.stringify({ hwm: kb("VmHWM"), anon: kb("RssAnon"), file: kb("RssFile") }));
    } catch {
      // No figure: the report shows "-".
    }
  });
}
