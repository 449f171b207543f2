// The cases of issues 8 and 15, each timing the real executable as libvirt runs
// it, beside the baseline of issue 15 (bench/baseline-hook.sh: a bash hook
// calling iptables once per rule, as the libvirt wiki's does).
// Every timed run is also checked: exit 0, nothing on stdout, no failure in
// its log line, and the kernel state it leaves (a wrong-but-fast hook must not
// look good here).
import { BenchHost, forwardsTo, guest } from "./host.mjs";
import { baselineRules, driftDnat, fingerprint, libvirtRebuild, resetFirewall } from "./firewall.mjs";
import { summarize, traceChildren } from "./children.mjs";
import { withMemorySplit } from "./memory.mjs";
import { Samples, timed } from "./measure.mjs";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

export const FORWARD_COUNTS = [1, 10, 50, 200];

export class Bench {
  constructor({ hostNetns, binary, floor, reps }) {
    Object.assign(this, { hostNetns, binary, floor, reps });
    this.floors = { true: new Samples(), floor: new Samples(), floorRss: new Samples() };
    this.rows = [];
    this.problems = [];
  }

  row(section, name, backend, extra = {}) {
    const r = { section, name, backend, samples: new Samples(), cpu: new Samples(), rss: new Samples(), pairedFloor: new Samples(), pairedFloorCpu: new Samples(), ...extra };
    this.rows.push(r);
    return r;
  }

  /**
   * One run of the trivial single executable, counted as the floor of `rows`:
   * the machine's load drifts (other work on it), so each figure is compared
   * with floor runs taken between its own samples.
   */
  async pairFloor(...rows) {
    const r = await timed([this.floor], { env: { LC_ALL: "C", PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }, input: "", cpu: true });
    this.floors.floor.add(r.ms);
    this.floors.floorRss.add(r.rssMiB);
    for (const row of rows) {
      row.pairedFloor.add(r.ms);
      row.pairedFloorCpu.add(r.cpuMs);
    }
  }

  /** A hook run, timed (into `row`, if given) and checked. */
  async hook(host, line, input, row) {
    const r = await timed(host.hookArgv(line), { env: host.env(), input, cpu: true });
    this.check(line, r);
    row?.samples.add(r.ms);
    row?.cpu.add(r.cpuMs);
    row?.rss.add(r.rssMiB);
    return r;
  }

  /** A hook run must exit 0, print nothing on stdout and log no failure; the CLI (`cli`) may print. */
  check(what, r, cli = false) {
    if (r.code !== 0 || (!cli && r.stdout !== "") || /FAILED|error:|internal error/.test(r.stderr)) {
      this.problems.push(`${what}: exit ${r.code}, stdout ${JSON.stringify(r.stdout.slice(0, 80))}, stderr ${r.stderr.trim().slice(0, 300)}`);
    }
  }

  async expectState(backend, wanted, what) {
    const got = await fingerprint(this.hostNetns, backend);
    if (got !== wanted) this.problems.push(`${what}: kernel holds ${got}, expected ${wanted}`);
    return got === wanted;
  }

  /** One untimed traced run: transactions and other children, and the resident set's private and file-backed parts. */
  async trace(host, line, input, row) {
    const { result, split } = await withMemorySplit(host.env(), (env) => traceChildren(host.hookArgv(line), { env, input }));
    this.check(`${line} (traced)`, result.run);
    Object.assign(row, summarize(result.children), { memory: split });
  }
}

/** /bin/true and the trivial single executable, interleaved, with the hooks' environment and stdin. */
export async function floors(b, input) {
  const env = { LC_ALL: "C", PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };
  for (let i = 0; i < b.reps.fast; i++) {
    b.floors.true.add((await timed(["/bin/true"], { env, input })).ms);
    b.floors.floor.add((await timed([b.floor], { env, input })).ms);
  }
  b.floors.memory ??= (await withMemorySplit(env, (e) => timed([b.floor], { env: e, input }))).split;
}

/** Events the hook must decide from argv and rules.d alone: no firewall, no child. */
export async function ignoredEvents(b) {
  const host = new BenchHost(b.binary, "iptables");
  try {
    const g = guest(1);
    const other = guest(2);
    host.setGuests([g, other]);
    host.writeRules(forwardsTo(g, 10));
    await resetFirewall(b.hostNetns, "iptables");
    const cases = [
      ["qemu start of a domain no rule names", `qemu ${other.name} start begin -`, host.domainXml(other)],
      ["qemu prepare (nothing to do)", `qemu ${g.name} prepare begin -`, host.domainXml(g)],
      ["qemu migrate (nothing to do)", `qemu ${g.name} migrate begin -`, host.domainXml(g)],
      ["network start (nothing to do)", "network default start begin -", host.networkXml("01-network-start-begin.xml")],
    ];
    for (const [name, line, input] of cases) {
      const row = b.row("ignored", name, "-");
      await b.hook(host, line, input); // warm the page cache
      for (let i = 0; i < b.reps.fast; i++) {
        await b.pairFloor(row);
        await b.hook(host, line, input, row);
      }
      await b.trace(host, line, input, row);
    }
    await ignoredWithJournal(b, host, cases[0]);
  } finally {
    host.dispose();
  }
}

/**
 * The first ignored case again, logging where a systemd host's hook logs: a
 * stream socket at run/systemd/journal/stdout (a listener that counts the
 * lines; each run must deliver exactly one). Without it every other row logs
 * to stderr, which no production host does.
 */
async function ignoredWithJournal(b, host, [name, line, input]) {
  const dir = join(host.root, "run/systemd/journal");
  mkdirSync(dir, { recursive: true });
  let lines = 0;
  const server = createServer((s) => {
    s.setEncoding("utf8").on("data", (d) => (lines += d.split("\n").filter((l) => /^<\d>/.test(l)).length));
    s.on("error", () => {});
  });
  await new Promise((r) => server.listen(join(dir, "stdout"), r));
  try {
    const row = b.row("ignored", `${name}, logging to a journal socket`, "-");
    await b.hook(host, line, input);
    for (let i = 0; i < b.reps.fast; i++) {
      await b.pairFloor(row);
      await b.hook(host, line, input, row);
    }
    await new Promise((r) => setTimeout(r, 50));
    if (lines !== b.reps.fast + 1) b.problems.push(`${name} with a journal socket: ${lines} journal lines for ${b.reps.fast + 1} runs`);
    await b.trace(host, line, input, row);
  } finally {
    await new Promise((r) => server.close(r));
  }
}

/** start, reconnect (in sync, and after our DNAT rules were flushed), stopped of one guest with `count` forwards. */
export async function lifecycle(b, backend, count) {
  const host = new BenchHost(b.binary, backend);
  try {
    const g = guest(1);
    host.setGuests([g]);
    host.writeRules(forwardsTo(g, count));
    await resetFirewall(b.hostNetns, backend);
    const xml = host.domainXml(g);
    const stoppedXml = host.domainXml(g, "17-qemu-stopped-end.xml");
    // What the kernel holds with the guest running, and after it stopped (our chains, empty).
    await b.hook(host, `qemu ${g.name} start begin -`, xml);
    const live = await fingerprint(b.hostNetns, backend);
    await b.hook(host, `qemu ${g.name} stopped end -`, stoppedXml);
    const idle = await fingerprint(b.hostNetns, backend);
    const rows = {
      start: b.row("event", `start, ${count} fwd`, backend, { count }),
      reconnect: b.row("event", `reconnect, ${count} fwd`, backend, { count }),
      drift: b.row("event", `reconnect after our DNAT was flushed, ${count} fwd`, backend, { count, repaired: 0, tries: 0 }),
      stopped: b.row("event", `stopped, ${count} fwd`, backend, { count }),
    };
    const cycle = async (traced) => {
      const run = traced ? (line, input, row) => b.trace(host, line, input, row) : (line, input, row) => b.hook(host, line, input, row);
      host.running(g, false);
      await run(`qemu ${g.name} start begin -`, xml, rows.start);
      await b.expectState(backend, live, `${backend} start ${count}`);
      host.running(g, true);
      await run(`qemu ${g.name} reconnect begin -`, host.liveXml(g), rows.reconnect);
      await b.expectState(backend, live, `${backend} reconnect ${count}`);
      await driftDnat(b.hostNetns, backend);
      await run(`qemu ${g.name} reconnect begin -`, host.liveXml(g), rows.drift);
      rows.drift.tries++;
      if ((await fingerprint(b.hostNetns, backend)) === live) rows.drift.repaired++;
      else await b.hook(host, `qemu ${g.name} start begin -`, xml); // put it right for the next step (old binaries)
      await run(`qemu ${g.name} stopped end -`, stoppedXml, rows.stopped);
      host.running(g, false);
      await b.expectState(backend, idle, `${backend} stopped ${count}`);
    };
    // The baseline (iptables only: the wiki's hook knows nothing else), same guest, forwards and XML.
    const bash = backend === "iptables" ? baselineRows(b, host, g, count) : undefined;
    for (let i = 0; i < b.reps.event; i++) {
      await b.pairFloor(...Object.values(rows), ...(bash ? Object.values(bash.rows) : []));
      await cycle(false);
      await bash?.cycle();
    }
    await cycle(true);
  } finally {
    host.dispose();
  }
}

/**
 * bench/baseline-hook.sh for guest `g` with `count` forwards (the ports of
 * forwardsTo): start, reconnect, stopped, each timed and checked like ours
 * (exit 0, empty stdout, and the kernel holds its 2 rules per port after start
 * and reconnect, none after stopped).
 */
function baselineRows(b, host, g, count) {
  host.writeBaseline(g, count);
  const rows = {
    start: b.row("baseline", `bash hook: start, ${count} fwd`, "iptables", { count, event: "start" }),
    reconnect: b.row("baseline", `bash hook: reconnect, ${count} fwd`, "iptables", { count, event: "reconnect" }),
    stopped: b.row("baseline", `bash hook: stopped, ${count} fwd`, "iptables", { count, event: "stopped" }),
  };
  const run = async (event, input, row, want) => {
    const r = await timed(host.baselineArgv(`${g.name} ${event} begin -`), { env: host.env(), input, cpu: true });
    b.check(`bash hook ${event} ${count}`, r);
    row.samples.add(r.ms);
    row.cpu.add(r.cpuMs);
    row.rss.add(r.rssMiB);
    const got = await baselineRules(b.hostNetns, g.ip);
    if (got !== want) b.problems.push(`bash hook ${event} ${count}: kernel holds ${got} of its rules, expected ${want}`);
  };
  const cycle = async () => {
    await run("start", host.domainXml(g), rows.start, 2 * count);
    await run("reconnect", host.liveXml(g), rows.reconnect, 2 * count);
    await run("stopped", host.domainXml(g, "17-qemu-stopped-end.xml"), rows.stopped, 0);
  };
  return { rows, cycle };
}

/**
 * One guest's events on a busy host: `running` guests up (2 forwards each, as
 * the storm's), and one more guest, with 2 forwards, that starts and stops;
 * plus a reconnect of a running one. Every acting event reads the status
 * files of the running guests the rules name, so this is where their number
 * shows (the lifecycle rows have one guest).
 */
export async function busyHost(b, backend, running = 50, perGuest = 2) {
  const host = new BenchHost(b.binary, backend);
  try {
    const all = Array.from({ length: running + 1 }, (_, i) => guest(i + 1));
    const extra = all[running];
    host.setGuests(all);
    host.writeRules(all.map((g, i) => forwardsTo(g, perGuest, 20000 + i * perGuest)).join(""));
    await resetFirewall(b.hostNetns, backend);
    for (const g of all.slice(0, running)) host.running(g, true);
    b.check("apply", await timed(host.cliArgv("apply"), { env: host.env() }), true);
    const idle = await fingerprint(b.hostNetns, backend);
    const xml = host.domainXml(extra);
    await b.hook(host, `qemu ${extra.name} start begin -`, xml);
    const live = await fingerprint(b.hostNetns, backend);
    host.running(extra, true);
    await b.hook(host, `qemu ${extra.name} stopped end -`, host.domainXml(extra, "17-qemu-stopped-end.xml"));
    host.running(extra, false);
    const rows = {
      start: b.row("busy", `start, ${perGuest} fwd, ${running} other guests running`, backend),
      reconnect: b.row("busy", `reconnect of a running guest, ${running + 1} running`, backend),
      stopped: b.row("busy", `stopped, ${perGuest} fwd, ${running} other guests running`, backend),
    };
    const cycle = async (traced) => {
      const run = traced ? (line, input, row) => b.trace(host, line, input, row) : (line, input, row) => b.hook(host, line, input, row);
      await run(`qemu ${extra.name} start begin -`, xml, rows.start);
      await b.expectState(backend, live, `${backend} busy start`);
      host.running(extra, true);
      await run(`qemu ${all[0].name} reconnect begin -`, host.liveXml(all[0]), rows.reconnect);
      await b.expectState(backend, live, `${backend} busy reconnect`);
      await run(`qemu ${extra.name} stopped end -`, host.domainXml(extra, "17-qemu-stopped-end.xml"), rows.stopped);
      host.running(extra, false);
      await b.expectState(backend, idle, `${backend} busy stopped`);
    };
    for (let i = 0; i < b.reps.event; i++) {
      await b.pairFloor(...Object.values(rows));
      await cycle(false);
    }
    await cycle(true);
  } finally {
    host.dispose();
  }
}

/** libvirtd restarts with 50 guests running: 50 `reconnect` hooks at once; total wall time. */
export async function storm(b, backend, guests = 50, perGuest = 2) {
  const host = new BenchHost(b.binary, backend);
  try {
    const all = Array.from({ length: guests }, (_, i) => guest(i + 1));
    host.setGuests(all);
    host.writeRules(all.map((g, i) => forwardsTo(g, perGuest, 20000 + i * perGuest)).join(""));
    await resetFirewall(b.hostNetns, backend);
    for (const g of all) host.running(g, true);
    b.check("apply", await timed(host.cliArgv("apply"), { env: host.env() }), true);
    const live = await fingerprint(b.hostNetns, backend);
    const env = { LC_ALL: "C", PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };
    const floorRow = b.row("storm", `${guests} trivial single executables in parallel (floor)`, "-");
    for (const [i, g] of all.entries()) host.writeBaseline(g, perGuest, 20000 + i * perGuest);
    const bashRow = backend === "iptables" ? b.row("storm", `${guests} bash hooks reconnecting (baseline, 2 iptables calls per rule)`, "iptables", { baseline: true }) : undefined;
    const rows = [
      [b.row("storm", `${guests} reconnects, firewall as we left it`, backend, { transactions: [], covered: [] }), false],
      [b.row("storm", `${guests} reconnects after libvirt rebuilt its rules`, backend, { transactions: [], covered: [] }), true],
    ];
    for (let i = 0; i < b.reps.storm; i++) {
      const t0 = performance.now();
      await Promise.all(all.map(() => timed([b.floor], { env, input: "" })));
      floorRow.samples.add(performance.now() - t0);
      for (const [row, rebuild] of rows) {
        if (rebuild) await libvirtRebuild(b.hostNetns, backend);
        const s0 = performance.now();
        const runs = await Promise.all(all.map((g) => timed(host.hookArgv(`qemu ${g.name} reconnect begin -`), { env: host.env(), input: host.liveXml(g) })));
        row.samples.add(performance.now() - s0);
        runs.forEach((r, k) => b.check(`storm ${all[k].name}`, r));
        // Each log line says whether that hook changed the firewall ("unchanged" when not).
        row.transactions.push(runs.filter((r) => /ipv4 (\+|re-asserted)/.test(r.stderr)).length);
        row.covered.push(runs.filter((r) => /verified by a hook that started after this one/.test(r.stderr)).length);
        await b.expectState(backend, live, `${backend} storm`);
      }
      if (bashRow) await bashStorm(b, host, all, perGuest, bashRow);
    }
  } finally {
    host.dispose();
  }
}

/** The baseline's storm: every guest's rules in place (one start each), then all `reconnect`s at once, then one stopped each. */
async function bashStorm(b, host, all, perGuest, row) {
  for (const g of all) b.check(`bash hook start ${g.name}`, await timed(host.baselineArgv(`${g.name} start begin -`), { env: host.env(), input: host.domainXml(g) }));
  const s0 = performance.now();
  const runs = await Promise.all(all.map((g) => timed(host.baselineArgv(`${g.name} reconnect begin -`), { env: host.env(), input: host.liveXml(g) })));
  row.samples.add(performance.now() - s0);
  runs.forEach((r, k) => b.check(`bash storm ${all[k].name}`, r));
  let wrong = 0;
  for (const g of all) if ((await baselineRules(b.hostNetns, g.ip)) !== 2 * perGuest) wrong++;
  if (wrong) b.problems.push(`bash storm: ${wrong} of ${all.length} guests without exactly their ${2 * perGuest} rules after the storm`);
  row.wrong = (row.wrong ?? 0) + wrong;
  for (const g of all) b.check(`bash hook stopped ${g.name}`, await timed(host.baselineArgv(`${g.name} stopped end -`), { env: host.env(), input: host.domainXml(g, "17-qemu-stopped-end.xml") }));
}

/** `virt-hooks apply` against the number of forwards: first apply, unchanged, one rule changed. */
export async function applyCost(b, backend, counts = [1, 10, 100, 1000]) {
  const host = new BenchHost(b.binary, backend);
  try {
    host.setGuests([]);
    await resetFirewall(b.hostNetns, backend);
    const rules = (n, last) => {
      const lines = [];
      for (let i = 0; i < n; i++) lines.push(`forward tcp 192.168.1.100:${20000 + i} to 192.168.122.${20 + (i % 200)}:${i === n - 1 ? last : 22}`);
      return lines.join("\n") + "\n";
    };
    const cli = async (row, ...args) => {
      const r = await timed(host.cliArgv(...args), { env: host.env(), cpu: true });
      if (r.code !== 0) b.problems.push(`${args.join(" ")}: exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
      row?.samples.add(r.ms);
      row?.cpu.add(r.cpuMs);
    };
    for (const n of counts) {
      const first = b.row("apply", `apply ${n} fwd, from nothing`, backend, { count: n });
      const same = b.row("apply", `apply ${n} fwd, unchanged`, backend, { count: n });
      const changed = b.row("apply", `apply ${n} fwd, one changed`, backend, { count: n });
      for (let i = 0; i < b.reps.apply; i++) {
        await b.pairFloor(first, same, changed);
        host.writeRules(rules(n, 22));
        await cli(undefined, "flush");
        await cli(first, "apply");
        await cli(same, "apply");
        host.writeRules(rules(n, 23));
        await cli(changed, "apply");
      }
    }
    await cli(undefined, "flush");
  } finally {
    host.dispose();
  }
}

