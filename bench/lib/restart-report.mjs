// The restart bench's Markdown report: per backend and N, each variant's
// median time from `systemctl start libvirtd` (after a timed `systemctl stop`)
// until all guests are listed, and until no hook runs any more, their ranges and
// ratios to the restart without hooks measured in the same run; our hooks' journal lines (count, total and max ms); the timeline of one
// restart with virt-hooks; and the repair cases.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { basename, resolve } from "node:path";

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");
const range = (xs) => (xs.length ? `${f0(Math.min(...xs))}-${f0(Math.max(...xs))}` : "-");

function sh(argv) {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "?";
  }
}

const LABEL = {
  none: "no hook",
  floor: "dist/floor as both hooks",
  "virt-hooks-before": "virt-hooks, the --before build (same install)",
  "virt-hooks": "virt-hooks (install.sh, watcher running)",
  python: "libvirt-hook-qemu (Python, qemu hook only)",
};

/** Each kind of hook line's outcome, counted over the runs, without names and figures. */
function outcomes(runs) {
  const n = new Map();
  for (const r of runs) for (const h of r.hooks) {
    const what = `${h.kind}: ${h.text.replace(/^\S+ \S+ \S+ \S+: /, "").replace(/\b[a-z]+[0-9]+\b/g, "…").replace(/[0-9]+/g, "N")}`;
    n.set(what, (n.get(what) ?? 0) + 1);
  }
  return [...n].sort((a, b) => b[1] - a[1]).map(([w, c]) => `${c}× "${w}"`).join("; ");
}

/** Per run: count, total and max ms of one kind of hook line. */
function hookStats(runs, kind) {
  const per = runs.map((r) => {
    const h = r.hooks.filter((x) => x.kind === kind);
    return { n: h.length, total: h.reduce((s, x) => s + x.ms, 0), max: h.length ? Math.max(...h.map((x) => x.ms)) : NaN };
  });
  return { n: median(per.map((p) => p.n)), total: median(per.map((p) => p.total)), max: median(per.map((p) => p.max)), maxMax: Math.max(...per.map((p) => p.max).filter(Number.isFinite)) };
}

function timeline(run) {
  const pc = run.hooks.filter((h) => h.kind === "port-created").sort((a, b) => a.start - b.start);
  const rc = run.hooks.filter((h) => h.kind === "reconnect").sort((a, b) => a.start - b.start);
  const gaps = pc.slice(1).map((h, i) => h.start - pc[i].start);
  const span = (hs) => (hs.length ? `${f0(Math.min(...hs.map((h) => h.start)))} → ${f0(Math.max(...hs.map((h) => h.end)))} ms` : "none");
  const out = [
    `guests listed at ${f0(run.start)} ms (\`systemctl start\` returned at ${f0(run.restartMs)} ms)`,
    `${pc.length} \`port-created\` ${span(pc)}, one after another (median ${f0(median(gaps))} ms from one's start to the next's, each ${range(pc.map((h) => h.ms))} ms)`,
    `${rc.length} \`reconnect\` ${span(rc)} (each ${range(rc.map((h) => h.ms))} ms${rc.length > 1 ? `; all started within ${f0(rc[rc.length - 1].start - rc[0].start)} ms` : ""})`,
  ];
  const others = run.other.filter((x) => x.end >= 0);
  if (others.length) out.push(`other virt-hooks lines: ${others.map((x) => `${f0(x.end)} ms ${x.unit || "?"}: "${x.text.slice(0, 90)}"`).join("; ")}`);
  return out.join("; ");
}

export function render({ results, loads, notes, opts, elapsedS, repo }) {
  const commit = sh(["git", "-C", repo, "rev-parse", "--short", "HEAD"]);
  const model = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const L = [];
  L.push(`# libvirtd restart bench (issue 28)`, "");
  L.push(
    `- date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}; run took ${f0(elapsedS / 60)} min`,
    `- machine: ${cpus().length} CPUs, ${model}; kernel ${release()}; load average (1 min) before the restarts: median ${f2(median(loads))}, ${f2(Math.min(...loads))}-${f2(Math.max(...loads))}`,
    `- binary: ${opts.binary === resolve(repo, "dist/virt-hooks") ? "dist/virt-hooks" : basename(opts.binary)}${opts.before ? `; --before build: ${basename(opts.before)}` : ""}; harness at commit ${commit}`,
    `- ${opts.restarts} restarts per variant and N, variants interleaved (${Object.keys(results[0]?.phases[0]?.runs ?? {}).join(", ")}, then again); a restart is \`systemctl stop libvirtd\` (timed apart: no hook runs then) and \`systemctl start libvirtd\`; **start→listed** runs from that start until \`virsh list --name\` lists all N guests again (active: the guests are paused qemu domains; polled every 50 ms), **hooks done** until the last 50 ms poll that saw a hook process, **whole restart** from the stop to listed`,
  );
  for (const tr of results) L.push(`- ${tr.target} (${tr.backend} backend): ${tr.versions}${tr.jsonschema ? `; jsonschema ${tr.jsonschema}` : ""}; ${tr.memory.map((m) => `N=${m.n}: ${m.free}, qemu ${m.qemuRss} MiB resident each`).join("; ")}`);
  for (const n of notes) L.push(`- ${n}`);
  L.push("");

  L.push("## Summary: median ms from `systemctl start libvirtd` until all guests are listed (× no hook); until no hook runs (× no hook); whole restart incl. the stop (× no hook)", "");
  const cols = results.flatMap((tr) => tr.phases.map((ph) => ({ tr, ph })));
  L.push(`| variant | ${cols.map((c) => `${c.tr.backend} N=${c.ph.n}`).join(" | ")} |`, `|---|${cols.map(() => "---:").join("|")}|`);
  for (const v of Object.keys(LABEL)) {
    if (!cols.some((c) => c.ph.runs[v]?.length)) continue;
    L.push(`| ${LABEL[v]} | ${cols.map(({ ph }) => {
      const m = (vv, k) => median((ph.runs[vv] ?? []).map((r) => r[k]));
      return ["start", "hooksDone", "wall"].map((k) => `${f0(m(v, k))} (${f2(m(v, k) / m("none", k))}×)`).join("; ");
    }).join(" | ")} |`);
  }
  L.push("");

  for (const tr of results) {
    for (const ph of tr.phases) {
      L.push(`## ${tr.target}: ${tr.backend} backend, ${ph.n} running guests, ${2 * ph.n} forwards`, "");
      L.push("| variant | restarts | start→listed median ms | range | × no hook | hooks done median ms | range | × no hook | whole restart median ms (× no hook) | stop ms median (max) | `systemctl start` returned (median ms) | port-created hooks: n / total / max ms | reconnect hooks: n / total / max ms | checks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
      const base = median((ph.runs.none ?? []).map((r) => r.start));
      const baseWall = median((ph.runs.none ?? []).map((r) => r.wall));
      const baseDone = median((ph.runs.none ?? []).map((r) => r.hooksDone));
      for (const [v, runs] of Object.entries(ph.runs)) {
        if (!runs.length) continue;
        const w = runs.map((r) => r.start);
        const whole = median(runs.map((r) => r.wall));
        const pc = hookStats(runs, "port-created"), rc = hookStats(runs, "reconnect");
        const logged = v.startsWith("virt-hooks");
        let checks = "";
        if (logged) checks = `status all live after ${runs.filter((r) => r.status?.ok).length} of ${runs.length}${runs.some((r) => !r.status?.ok) ? ` (${runs.map((r) => `${r.status.live}/${r.status.total}`).join(", ")})` : ""}`;
        if (v === "python") checks = `its rules after each restart: ${runs.map((r) => r.pyRulesAfter).join(", ")} (from a clean firewall each time; before any: ${runs.map((r) => r.pyRulesBefore).join(", ")})`;
        const d = runs.map((r) => r.hooksDone);
        L.push(`| ${LABEL[v]} | ${runs.length} | ${f0(median(w))} | ${range(w)} | ${f2(median(w) / base)} | ${f0(median(d))} | ${range(d)} | ${f2(median(d) / baseDone)} | ${f0(whole)} (${f2(whole / baseWall)}) | ${f0(median(runs.map((r) => r.stopMs)))} (${f0(Math.max(...runs.map((r) => r.stopMs)))}) | ${f0(median(runs.map((r) => r.restartMs)))} | ${logged ? `${f0(pc.n)} / ${f0(pc.total)} / ${f0(pc.max)}` : "(no log)"} | ${logged ? `${f0(rc.n)} / ${f0(rc.total)} / ${f0(rc.max)} (worst ${f0(rc.maxMax)})` : "(no log)"} | ${checks} |`);
      }
      if (ph.warmup.length) L.push("", `Warm-up restarts (not counted): ${ph.warmup.map((w) => `${w.v} ${f0(w.start)} ms (hooks done ${f0(w.hooksDone)}, stop ${f0(w.stopMs)})`).join(", ")}.`);
      L.push("");
      const vh = ph.runs["virt-hooks"] ?? [];
      if (vh.length) {
        const sorted = [...vh].sort((a, b) => a.start - b.start);
        const mid = sorted[(sorted.length - 1) >> 1];
        L.push(`Timeline of the median restart with virt-hooks (ms after \`systemctl start libvirtd\` began; a hook's start is its log line's time minus its own ms): ${timeline(mid)}.`, "");
      }
      for (const v of ["virt-hooks-before", "virt-hooks"]) {
        const runs = ph.runs[v] ?? [];
        if (runs.length) L.push(`What the hooks said, ${LABEL[v]}, all ${runs.length} restarts (guest names and figures elided): ${outcomes(runs)}.`, "");
      }
      if (ph.repair.length) {
        L.push("Nothing lost (virt-hooks):", "", "| our DNAT flushed | command | start→listed ms | flushed at ms after the start | first status after the restart's end | all live, ms after the restart's end | hook lines |", "|---|---|---:|---:|---|---:|---|");
        for (const r of ph.repair) {
          const pc = r.hooks.filter((h) => h.kind === "port-created").length, rc = r.hooks.filter((h) => h.kind === "reconnect").length;
          const acted = r.hooks.filter((h) => !/unchanged|no firewall change|ignored|left to the watcher/.test(h.text)).map((h) => `${h.kind} at ${f0(h.end)} ms: ${h.text.replace(/^[^:]*: /, "").slice(0, 60)}`);
          L.push(`| ${r.flush === "before" ? "just before the restart" : "during it"} | \`${r.what}\` | ${f0(r.start)} | ${r.flushAt ?? "before 0"} | ${r.live.firstOk ? "all live" : `not all live (${r.live.drift.join(", ") || "?"})`} (it took ${f0(r.live.firstMs)} ms) | ${f0(r.live.ms)} | ${pc} port-created, ${rc} reconnect${acted.length ? `; changed: ${acted.slice(0, 3).join("; ")}` : ""} |`);
        }
        L.push("");
      }
    }
  }
  return `${L.join("\n")}\n`;
}
