#!/usr/bin/env node
// npm run bench:restart [-- OPTIONS] (issue 28): `systemctl restart libvirtd`
// on a booted Debian 13 host (systemd-nspawn, test/host/lab) with N running
// guests, 2 forwards each, until `virsh list` shows them all again; with no
// hook, with the do-nothing single executable (dist/floor) as both hooks, with
// virt-hooks installed by install.sh (watcher running), and with the public
// Python hook libvirt-hook-qemu (its qemu hook, as its Makefile installs it),
// interleaved; on libvirt's iptables and nftables backends. Prints a Markdown report.
//
//   --guests LIST       running guests per phase (default 30,100)
//   --restarts K        restarts per variant and phase (default 5)
//   --targets LIST      trixie,trixie-nft (default both)
//   --variants LIST     none,floor,virt-hooks,python (default all)
//   --binary PATH       the virt-hooks executable to install (default dist/virt-hooks)
//   --before PATH       an earlier build, measured beside it in the same run (variant
//                       virt-hooks-before: the same install, units and rules.d)
//   --python-hook DIR   a git checkout of saschpe/libvirt-hook-qemu (its variant is
//                       skipped without it; its source is never copied into this repo)
//   --no-warmup         no uncounted warm-up round before the counted ones
//   --quick             5 guests, 2 restarts (a smoke run)
//   --out FILE          also write the report to FILE
//
// Needs root, systemd-nspawn and the cached roots of test/host/make-root.sh.
// Everything happens inside the booted host (its own network namespace);
// the host is stopped by PID at the end.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { bootTarget, loadLab, TARGETS } from "./lib/restart-lab.mjs";
import {
  addGuests, copyFileIn, installVirtHooks, must, prepareNetwork, pythonRulesCountAndClean, rulesFile, stagePythonHook, useVariant, writeIn,
} from "./lib/restart-host.mjs";
import { FLUSH, hookLines, restartOnce, settle, statusLive, timeToLive } from "./lib/restart-measure.mjs";
import { render } from "./lib/restart-report.mjs";
import { ensureFloor } from "./lib/tools.mjs";

const REPO = resolve(import.meta.dirname, "..");
const VARIANTS = ["none", "floor", "virt-hooks-before", "virt-hooks", "python"];

function parseArgs(argv) {
  const o = { guests: [30, 100], restarts: 5, targets: Object.keys(TARGETS), variants: VARIANTS, binary: resolve(REPO, "dist/virt-hooks"), before: undefined, python: undefined, quick: false, out: undefined, warmup: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--guests") o.guests = argv[++i].split(",").map(Number);
    else if (a === "--restarts") o.restarts = Number(argv[++i]);
    else if (a === "--targets") o.targets = argv[++i].split(",");
    else if (a === "--variants") o.variants = argv[++i].split(",");
    else if (a === "--binary") o.binary = resolve(argv[++i]);
    else if (a === "--before") o.before = resolve(argv[++i]);
    else if (a === "--python-hook") o.python = resolve(argv[++i]);
    else if (a === "--quick") o.quick = true;
    else if (a === "--no-warmup") o.warmup = false;
    else if (a === "--out") o.out = resolve(argv[++i]);
    else throw new Error(`unknown argument ${a} (see the comment at the top of bench/restart.mjs)`);
  }
  if (o.quick) { o.guests = [5]; o.restarts = 2; }
  for (const t of o.targets) if (!TARGETS[t]) throw new Error(`unknown target ${t}; one of ${Object.keys(TARGETS).join(", ")}`);
  for (const v of o.variants) if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}; one of ${VARIANTS.join(", ")}`);
  if (o.guests.some((n) => !(n > 0 && n <= 200))) throw new Error("--guests: 1-200 each");
  o.guests.sort((a, b) => a - b);
  return o;
}

const loadavg = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

async function main() {
  if (process.getuid() !== 0) throw new Error("the restart bench needs root (systemd-nspawn)");
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(o.binary)) throw new Error(`${o.binary} is missing: npm run build`);
  const floor = ensureFloor();
  const variants = o.variants.filter((v) => (v !== "python" || o.python) && (v !== "virt-hooks-before" || o.before));
  const notes = [];
  if (o.variants.includes("python") && !o.python) notes.push("The Python hook's variant was skipped: no `--python-hook DIR` given.");
  const lab = await loadLab();
  const t0 = Date.now();
  const step = (s) => process.stderr.write(`bench:restart: ${s} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  const results = [];
  const loads = [];
  // After each restart the report so far, next to --out (a long run that fails keeps what it measured).
  const partial = () => { if (o.out) writeFileSync(`${o.out}.partial`, render({ results, loads, notes, opts: o, elapsedS: (Date.now() - t0) / 1000, repo: REPO })); };
  for (const tn of o.targets) {
    const t = TARGETS[tn];
    step(`${tn}: booting`);
    const host = await bootTarget(lab, t, `vh-rb-${tn}-${process.pid}`);
    const stop = () => host.stop();
    process.once("SIGINT", () => { stop().finally(() => process.exit(130)); });
    try {
      const tr = { target: tn, backend: t.backend, phases: [], versions: "", memory: [] };
      results.push(tr);
      tr.versions = must(host, "libvirtd --version | head -1; firewall-cmd --version; python3 --version; systemctl --version | head -1", "versions").trim().split("\n").join("; ");
      prepareNetwork(host);
      copyFileIn(host, floor, "/usr/local/lib/restart-bench/floor");
      step(`${tn}: install.sh`);
      installVirtHooks(host, REPO, o.binary, o.before);
      if (o.python) tr.jsonschema = stagePythonHook(host, o.python);
      let have = 0;
      for (const n of o.guests) {
        step(`${tn}: ${n} guests`);
        await useVariant(host, "none", n);
        addGuests(host, have, n);
        have = n;
        writeIn(host, "/etc/libvirt/hooks/rules.d/50-restart-bench.rules", rulesFile(n));
        tr.memory.push({ n, free: must(host, "free -m | awk '/^Mem:/{print $3\" MiB used, \"$7\" MiB available\"}'", "free").trim(),
          qemuRss: Number(must(host, "ps -C qemu-system-x86_64 -o rss= | awk '{s+=$1; n++} END {printf \"%d\", n ? s/n/1024 : 0}'", "rss").trim()) });
        const ph = { n, runs: Object.fromEntries(variants.map((v) => [v, []])), repair: [], warmup: [] };
        tr.phases.push(ph);
        // Round 0 warms up (not counted): the first restart with a freshly installed
        // 120 MB executable as a hook was measured at 31 s once.
        for (let r = o.warmup ? -1 : 0; r < o.restarts; r++) {
          for (const v of variants) {
            await useVariant(host, v, n);
            let py;
            if (v === "python") py = pythonRulesCountAndClean(host);
            await settle(host);
            loads.push(loadavg());
            const m = restartOnce(host, n, t.backend);
            await settle(host);
            const j = hookLines(host, m.cursor, m.t0);
            const run = { ...m, hooks: j.hooks, other: j.other, load: loadavg() };
            if (v.startsWith("virt-hooks")) run.status = statusLive(host);
            if (v === "python") {
              run.pyRulesBefore = py.before;
              run.pyRulesAfter = pythonRulesCountAndClean(host).before;
            }
            if (r >= 0) { ph.runs[v].push(run); partial(); }
            else ph.warmup.push({ v, start: m.start, hooksDone: m.hooksDone, stopMs: m.stopMs });
            step(`${tn} N=${n} #${r < 0 ? "warm-up" : r + 1} ${v}: stop ${m.stopMs} ms, start→listed ${m.start} ms, hooks done ${m.hooksDone} ms${run.status ? ` (status ${run.status.live}/${run.status.total} live)` : ""}${v === "python" ? ` (its rules: ${run.pyRulesAfter})` : ""}`);
          }
        }
        partial();
        if (variants.includes("virt-hooks")) {
          await useVariant(host, "virt-hooks", n);
          for (const flush of ["before", "during"]) {
            await settle(host);
            if (!statusLive(host).ok) throw new Error("status not all live before a repair case");
            const m = restartOnce(host, n, t.backend, flush, false);
            const live = await timeToLive(host, m.t2);
            await settle(host);
            const j = hookLines(host, m.cursor, m.t0);
            ph.repair.push({ flush, what: FLUSH[t.backend], ...m, live, hooks: j.hooks, other: j.other });
            partial();
            step(`${tn} N=${n} flush ${flush}: start→listed ${m.start} ms, all live ${live.ms} ms after its end`);
          }
        }
      }
    } finally {
      step(`${tn}: stopping the host`);
      await stop();
    }
  }
  const report = render({ results, loads, notes, opts: o, elapsedS: (Date.now() - t0) / 1000, repo: REPO });
  process.stdout.write(report);
  if (o.out) writeFileSync(o.out, report);
}

main().catch((e) => {
  process.stderr.write(`bench:restart: ${e.stack ?? e}\n`);
  process.exit(1);
});
