#!/usr/bin/env node
// npm run bench [-- OPTIONS]: times the real dist/virt-hooks as libvirt runs it
// (issue 8) and prints a Markdown report (bench/RESULTS.md is one, committed).
//
//   --binary PATH   the executable to time (default dist/virt-hooks)
//   --quick         fewer repetitions (a smoke run; figures are noisier)
//   --only LIST     comma-separated sections: ignored,nothing,events,busy,storm,apply,packet
//   --out FILE      also write the report to FILE
//
// Needs root. Re-executes itself under `unshare -n`: every firewall, link and
// sysctl it touches is in that private namespace, proven before use.
import { spawnSync } from "node:child_process";
import { existsSync, readlinkSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { applyCost, Bench, busyHost, FORWARD_COUNTS, floors, ignoredEvents, lifecycle, storm } from "./lib/cases.mjs";
import { nothingToDo } from "./lib/nothing-to-do.mjs";
import { packetPath } from "./lib/packet.mjs";
import { render } from "./lib/report.mjs";
import { assertPrivate, currentNetns } from "./lib/netns.mjs";
import { SYSTEM_PATH, useCputime } from "./lib/measure.mjs";
import { buildTool, ensureFloor } from "./lib/tools.mjs";

const REPO = resolve(import.meta.dirname, "..");
const SECTIONS = ["ignored", "nothing", "events", "busy", "storm", "apply", "packet"];

function parseArgs(argv) {
  const o = { binary: resolve(REPO, "dist/virt-hooks"), quick: false, only: SECTIONS, out: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--binary") o.binary = resolve(argv[++i]);
    else if (a === "--quick") o.quick = true;
    else if (a === "--only") o.only = argv[++i].split(",");
    else if (a === "--out") o.out = resolve(argv[++i]);
    else throw new Error(`unknown argument ${a} (see the comment at the top of bench/run.mjs)`);
  }
  for (const s of o.only) if (!SECTIONS.includes(s)) throw new Error(`unknown section ${s}; one of ${SECTIONS.join(", ")}`);
  return o;
}

function outer() {
  if (process.getuid() !== 0) throw new Error("the bench needs root (it creates network namespaces)");
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(opts.binary)) throw new Error(`${opts.binary} is missing: npm run build`);
  ensureFloor(); // the inner half times it
  const r = spawnSync("unshare", ["-n", "--", process.execPath, import.meta.filename, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, PATH: `${process.env.PATH ?? ""}:${SYSTEM_PATH}`, VIRT_HOOKS_BENCH_HOST_NETNS: currentNetns() },
  });
  process.exit(r.status ?? 1);
}

async function inner(hostNetns) {
  // The host's namespace is the one our parent (the outer run, before unshare) is in.
  if (readlinkSync(`/proc/${process.ppid}/ns/net`) !== hostNetns) throw new Error("run the bench as npm run bench, not its inner half");
  assertPrivate(hostNetns);
  const opts = parseArgs(process.argv.slice(2));
  const reps = opts.quick ? { fast: 10, event: 4, storm: 2, apply: 2, packet: 2 } : { fast: 25, event: 8, storm: 3, apply: 3, packet: 4 };
  const b = new Bench({ hostNetns, binary: opts.binary, floor: resolve(REPO, "dist/floor"), reps });
  const t0 = performance.now();
  const step = (what) => process.stderr.write(`bench: ${what} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  spawnSync("ip", ["link", "set", "lo", "up"]);
  // Resident memory counts the executable's pages that are mapped, and a file just
  // written (a fresh build) is wholly in the page cache, where the kernel's fault-around
  // maps far more of its 120 MB than a run touches (measured: 60 MiB against 42 MiB for
  // the same --version). Both executables start out of the cache, as an installed one
  // that has not run for a while does; then each run maps what it reads.
  for (const exe of [opts.binary, resolve(REPO, "dist/floor")]) spawnSync("dd", [`if=${exe}`, "iflag=nocache", "count=0", "status=none"]);
  useCputime(buildTool("cputime"));
  const stdin = "<domain/>\n".repeat(300);
  await floors(b, stdin);
  if (opts.only.includes("ignored")) {
    step("ignored events");
    await ignoredEvents(b);
  }
  for (const backend of ["iptables", "nftables"]) {
    if (opts.only.includes("nothing")) {
      step(`${backend}: hooks with nothing to do (issue 28)`);
      await nothingToDo(b, backend);
    }
    if (opts.only.includes("events")) {
      for (const n of FORWARD_COUNTS) {
        step(`${backend}: start/reconnect/stopped with ${n} forwards`);
        await lifecycle(b, backend, n);
      }
    }
    if (opts.only.includes("busy")) {
      step(`${backend}: one guest's events with 50 others running`);
      await busyHost(b, backend);
    }
    if (opts.only.includes("storm")) {
      step(`${backend}: reconnect storm`);
      await storm(b, backend);
    }
    if (opts.only.includes("apply")) {
      step(`${backend}: apply cost`);
      await applyCost(b, backend);
    }
    if (opts.only.includes("packet")) {
      step(`${backend}: packet path`);
      await packetPath(b, backend);
    }
  }
  await floors(b, stdin);
  const report = render(b, { binary: opts.binary, elapsedS: (performance.now() - t0) / 1000 });
  process.stdout.write(report);
  if (opts.out) writeFileSync(opts.out, report);
}

const host = process.env.VIRT_HOOKS_BENCH_HOST_NETNS;
(host ? inner(host) : Promise.resolve(outer())).catch((e) => {
  process.stderr.write(`bench: ${e.stack ?? e}\n`);
  process.exit(1);
});
