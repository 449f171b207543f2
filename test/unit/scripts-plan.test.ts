// Per-guest scripts, the pure part: which scripts run for an event, in what
// order, whether a failure refuses it, whether stdout chains (libvirt's filter
// semantics), and the log line. The runner is exercised with a fake exec.
import { describe, expect, it } from "vitest";
import { hookEventFromArgv, type Driver } from "../../src/libvirt/event.js";
import { objectDir, planScripts, scriptPaths, type ScriptEntry, type ScriptListing, type StatLike } from "../../src/guest-scripts/plan.js";
import { afterScript, inputFor, scriptLine, startChain, trimOutput, type ScriptResult } from "../../src/guest-scripts/outcome.js";
import { runScripts, type ExecScript } from "../../src/effects/guest-scripts-run.js";
import type { Level, LogSink } from "../../src/effects/log.js";

const ROOT_ONLY = { owners: [0] };
const H = "/etc/libvirt/hooks";
const event = (line: string) => {
  const [driver, ...args] = line.split(" ");
  return hookEventFromArgv(driver as Driver, args)!;
};
const dir = (mode = 0o755, uid = 0): StatLike => ({ kind: "directory", mode: 0o040000 | mode, uid });
const file = (mode = 0o755, uid = 0): StatLike => ({ kind: "file", mode: 0o100000 | mode, uid });

function listing(line: string, entries: Record<string, StatLike | undefined>, over: Partial<ScriptListing> = {}): ScriptListing {
  const p = scriptPaths(H, event(line))!;
  const es: ScriptEntry[] = Object.entries(entries).map(([name, stat]) => ({ name, path: `${p.leaf}/${name}`, ...(stat ? { stat } : {}) }));
  return { dirs: p.dirs.map((path) => ({ path, stat: dir() })), leaf: { path: p.leaf, stat: dir() }, entries: es, ...over };
}

const plan = (line: string, entries: Record<string, StatLike | undefined>, over: Partial<ScriptListing> = {}) => planScripts(event(line), listing(line, entries, over), ROOT_ONLY);
const names = (paths: readonly string[]) => paths.map((p) => p.slice(p.lastIndexOf("/") + 1));

describe("per-guest scripts: where they live", () => {
  it.each([
    ["qemu web prepare begin -", `${H}/qemu.d/web`],
    ["network default started begin -", `${H}/network.d/default`],
    ["lxc c1 start begin -", undefined],
    ["daemon - start - start", undefined],
    ["qemu .. prepare begin -", undefined],
    ["qemu . prepare begin -", undefined],
    ["qemu a/b prepare begin -", undefined],
  ])("%s -> %s", (line, expected) => {
    expect(objectDir(H, event(line))).toBe(expected);
  });

  it("probes <driver>.d, <object>, <op>, then the <subop> leaf", () => {
    expect(scriptPaths(H, event("qemu web release end destroyed"))).toEqual({
      dirs: [`${H}/qemu.d`, `${H}/qemu.d/web`, `${H}/qemu.d/web/release`],
      leaf: `${H}/qemu.d/web/release/end`,
    });
  });
});

// The hook contract for scripts (docs/libvirt-facts.md "What a non-zero exit does").
const contract: [string, { vetoes: boolean; filter: boolean }][] = [
  ["qemu web prepare begin -", { vetoes: true, filter: false }],
  ["qemu web start begin -", { vetoes: true, filter: false }],
  ["qemu web started begin -", { vetoes: true, filter: false }],
  ["qemu web migrate begin -", { vetoes: true, filter: true }],
  ["qemu web restore begin -", { vetoes: true, filter: true }],
  ["qemu web reconnect begin -", { vetoes: false, filter: false }],
  ["qemu web stopped end -", { vetoes: false, filter: false }],
  ["qemu web release end destroyed", { vetoes: false, filter: false }],
  ["network default start begin -", { vetoes: true, filter: false }],
  ["network default started begin -", { vetoes: true, filter: false }],
  ["network default port-created begin -", { vetoes: true, filter: false }],
  ["network default port-deleted begin -", { vetoes: false, filter: false }],
  ["network default stopped end -", { vetoes: false, filter: false }],
  ["network default updated begin -", { vetoes: false, filter: false }],
];

describe("per-guest scripts: what a failure may do", () => {
  it.each(contract)("%s -> %o", (line, expected) => {
    const p = plan(line, { run: file() });
    expect({ vetoes: p.vetoes, filter: p.filter }).toEqual(expected);
    expect(p.argv).toEqual(line.split(" ").slice(1));
  });
});

describe("per-guest scripts: which run, in what order", () => {
  it("executable regular files, in byte order of their names (not locale order)", () => {
    const p = plan("qemu web prepare begin -", { "20-b": file(), "10-a": file(), B: file(), a: file(), "9": file() });
    expect(names(p.scripts)).toEqual(["10-a", "20-b", "9", "B", "a"]);
    expect(p.refused).toEqual([]);
  });

  it("skips what is not meant to run: dotfiles, editor and package leftovers, subdirectories; names non-executable files", () => {
    const p = plan("qemu web prepare begin -", {
      ".hidden": file(),
      "10-gpu~": file(),
      "10-gpu.dpkg-old": file(),
      "10-gpu.rpmsave": file(),
      "10-gpu": file(),
      sub: dir(),
      README: file(0o644),
    });
    expect(names(p.scripts)).toEqual(["10-gpu"]);
    expect(p.skipped).toEqual([`${H}/qemu.d/web/prepare/begin/README: skipped: not executable (chmod +x to run it)`]);
  });

  it("refuses a script that is not root's alone, with the fix; the others still planned", () => {
    const p = plan("qemu web stopped end -", { "10-ok": file(), "20-theirs": file(0o755, 1000), "30-open": file(0o777) });
    expect(names(p.scripts)).toEqual(["10-ok"]);
    expect(p.refused).toHaveLength(2);
    expect(p.refused[0]).toMatch(/20-theirs: refused: owned by uid 1000, not root.*Fix: chown root: /);
    expect(p.refused[1]).toMatch(/30-open: refused: writable by group and others \(mode 0777\).*Fix: chmod go-w /);
  });

  it("refuses everything below a directory that is not root's alone", () => {
    const p = plan("qemu web prepare begin -", { "10-a": file() }, {});
    const l = listing("qemu web prepare begin -", { "10-a": file() });
    const open = { ...l, dirs: l.dirs.map((d, i) => (i === 1 ? { ...d, stat: dir(0o777) } : d)) };
    expect(p.scripts).toHaveLength(1);
    const q = planScripts(event("qemu web prepare begin -"), open, ROOT_ONLY);
    expect(q.scripts).toEqual([]);
    expect(q.refused[0]).toMatch(new RegExp(`^${H}/qemu.d/web: refused: writable by group and others`));
    const leafOpen = planScripts(event("qemu web prepare begin -"), { ...l, leaf: { ...l.leaf, stat: dir(0o775) } }, ROOT_ONLY);
    expect(leafOpen.refused[0]).toMatch(/begin: refused: writable by its group/);
  });

  it("a symbolic link runs when its target and the target's directory are root's alone", () => {
    const l = listing("qemu web prepare begin -", {});
    const link = (targetDir: StatLike): ScriptEntry => ({ name: "10-shared", path: `${l.leaf.path}/10-shared`, stat: file(), targetDir: { path: "/srv/hooks", stat: targetDir } });
    expect(planScripts(event("qemu web prepare begin -"), { ...l, entries: [link(dir())] }, ROOT_ONLY).scripts).toHaveLength(1);
    const bad = planScripts(event("qemu web prepare begin -"), { ...l, entries: [link(dir(0o1777, 1000))] }, ROOT_ONLY);
    expect(bad.scripts).toEqual([]);
    expect(bad.refused[0]).toMatch(/10-shared links into \/srv\/hooks: refused: owned by uid 1000/);
  });

  it("the hook helper's other form: <subop> itself is the one script", () => {
    const l = listing("qemu web prepare begin -", {});
    const p = planScripts(event("qemu web prepare begin -"), { dirs: l.dirs, leaf: { path: l.leaf.path, stat: file() } }, ROOT_ONLY);
    expect(p.scripts).toEqual([l.leaf.path]);
  });

  it("nothing at all when a directory is missing", () => {
    const l = listing("qemu web prepare begin -", { "10-a": file() });
    expect(planScripts(event("qemu web prepare begin -"), { dirs: l.dirs.slice(0, 2).concat([{ path: l.dirs[2]!.path }]), leaf: { path: l.leaf.path } }, ROOT_ONLY)).toMatchObject({ scripts: [], refused: [], skipped: [] });
  });

  it("a name with a control character is refused (it would forge log lines)", () => {
    const p = plan("qemu web prepare begin -", { "10-a\nvirt-hooks: fake": file() });
    expect(p.scripts).toEqual([]);
    expect(p.refused[0]).toMatch(/control character/);
  });
});

const ok = (stdout = "", over: Partial<ScriptResult> = {}): ScriptResult => ({ exitCode: 0, signal: null, timedOut: false, stdout, stderr: "", ms: 5, heldOpen: false, ...over });
const failed = (exitCode: number, stderr = ""): ScriptResult => ok("", { exitCode, stderr });

describe("per-guest scripts: migrate/restore output chains as libvirt's own filter does", () => {
  it("each script gets the last non-empty output of a successful script, else libvirt's XML", () => {
    let c = startChain("<domain>orig</domain>");
    expect(inputFor(c)).toBe("<domain>orig</domain>");
    c = afterScript(c, ok("  \n"), true); // white space is no output
    expect(inputFor(c)).toBe("<domain>orig</domain>");
    c = afterScript(c, ok("<domain>one</domain>\n"), true);
    expect(inputFor(c)).toBe("<domain>one</domain>\n");
    c = afterScript(c, ok(""), true);
    expect(c.replacement).toBe("<domain>one</domain>\n");
    c = afterScript(c, ok("<domain>x</domain>", { exitCode: 1 }), true); // a failure's output never counts
    expect(c.replacement).toBe("<domain>one</domain>\n");
  });

  it("other events never chain: every script reads libvirt's XML", () => {
    expect(afterScript(startChain("<domain/>"), ok("debug output\n"), false).replacement).toBeUndefined();
  });
});

describe("per-guest scripts: the log line", () => {
  it("names the path, how it ended, the duration, and trims output to one line", () => {
    const line = scriptLine("qemu web prepare begin", "/x/10-gpu", ok("line 1\nline\t2\n", { stderr: "warn\x1b[31m\n" }), { filter: false, timeoutMs: 30_000 });
    expect(line).toBe("qemu web prepare begin: script /x/10-gpu: exit 0; 5 ms; stdout: line 1 | line 2; stderr: warn\\u001b[31m");
    expect(scriptLine("l", "/x/s", ok("", { timedOut: true, exitCode: null, signal: "SIGTERM" }), { filter: false, timeoutMs: 2500 })).toBe(
      "l: script /x/s: timed out after 2.5 s, killed (its process group); 5 ms",
    );
    expect(scriptLine("l", "/x/s", ok("<domain/>"), { filter: true, timeoutMs: 1000 })).toBe("l: script /x/s: exit 0; 5 ms; stdout: replacement domain XML, 9 bytes");
    expect(trimOutput("x".repeat(500))).toMatch(/^x{400}… \(100 more characters\)$/);
  });
});

function fakeRun(results: Record<string, ScriptResult>) {
  const calls: { path: string; argv: readonly string[]; input: string }[] = [];
  const exec: ExecScript = async (path, argv, input) => {
    calls.push({ path, argv, input });
    return results[path] ?? ok();
  };
  const logged: [Level, string][] = [];
  const log: LogSink = { kind: "stderr", write: async (level, lines) => void lines.forEach((l) => logged.push([level, l])) };
  const out: string[] = [];
  const err: string[] = [];
  return { calls, logged, out, err, deps: { exec, now: () => 0, log, io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t) }, timeoutMs: 30_000 } };
}

describe("per-guest scripts: the runner (fake exec)", () => {
  const L = "qemu web";
  it("migrate: the chained XML reaches stdout once; nothing printed when no script replaced it", async () => {
    const p = plan("qemu web migrate begin -", { "10-a": file(), "20-b": file(), "30-c": file() });
    const [a, b, c] = p.scripts as [string, string, string];
    const f = fakeRun({ [a]: ok("<domain>A</domain>"), [b]: ok(""), [c]: ok("<domain>C</domain>") });
    expect(await runScripts(L, p, "<domain>orig</domain>", f.deps)).toBe(0);
    expect(f.calls.map((x) => x.input)).toEqual(["<domain>orig</domain>", "<domain>A</domain>", "<domain>A</domain>"]);
    expect(f.out).toEqual(["<domain>C</domain>"]);

    const g = fakeRun({});
    expect(await runScripts(L, p, "<domain>orig</domain>", g.deps)).toBe(0);
    expect(g.out).toEqual([]);
  });

  it("a failure where libvirt lets us refuse: exit 1, the reason on stderr, later scripts not run, no XML printed", async () => {
    const p = plan("qemu web migrate begin -", { "10-a": file(), "20-b": file(), "30-c": file() });
    const [a, b] = p.scripts as [string, string, string];
    const f = fakeRun({ [a]: ok("<domain>A</domain>"), [b]: failed(3, "no GPU\n") });
    expect(await runScripts(L, p, "<domain/>", f.deps)).toBe(1);
    expect(f.calls).toHaveLength(2);
    expect(f.out).toEqual([]);
    expect(f.err.join("")).toBe(`virt-hooks: refusing ${L}: script ${b}: exit 3: no GPU\n`);
    expect(f.logged.at(-1)).toEqual(["error", `${L}: script ${b}: exit 3; 5 ms; stderr: no GPU; ${L} refused, 1 later script(s) not run`]);
  });

  it("a failure where libvirt does not let us refuse: logged, the next script runs, exit 0", async () => {
    const p = plan("qemu web reconnect begin -", { "10-a": file(), "20-b": file() });
    const [a] = p.scripts as [string, string];
    const f = fakeRun({ [a]: failed(1, "oops") });
    expect(await runScripts(L, p, "<domain/>", f.deps)).toBe(0);
    expect(f.calls).toHaveLength(2);
    expect(f.err).toEqual([]);
    expect(f.logged[0]?.[0]).toBe("warning");
    expect(f.calls.map((c) => c.argv)).toEqual([["web", "reconnect", "begin", "-"], ["web", "reconnect", "begin", "-"]]);
  });

  it("an untrusted script refuses a refusable event before any script runs; elsewhere it is only left out", async () => {
    const start = plan("qemu web prepare begin -", { "10-a": file(), "20-b": file(0o757) });
    const f = fakeRun({});
    expect(await runScripts(L, start, "<domain/>", f.deps)).toBe(1);
    expect(f.calls).toEqual([]);
    expect(f.err.join("")).toMatch(/refusing qemu web:\n.*20-b: refused: writable by others/);
    const stop = plan("qemu web release end -", { "10-a": file(), "20-b": file(0o757) });
    const g = fakeRun({});
    expect(await runScripts(L, stop, "<domain/>", g.deps)).toBe(0);
    expect(g.calls).toHaveLength(1);
    expect(g.logged[0]).toEqual(["warning", expect.stringMatching(/20-b: refused: .* \(not run\)$/)]);
  });
});
