// Binary tier, per-guest scripts: the compiled hook, called through its
// driver-named symlink in a scratch VIRT_HOOKS_ROOT, runs real executables
// under qemu.d/DOMAIN/OP/SUBOP/ and network.d/NET/OP/SUBOP/: order, arguments,
// stdin, log lines, time limit (process group killed), background jobs that
// hold the output (the hook still returns and its stdout reaches EOF), veto
// only where libvirt allows it, migrate/restore chaining, trust.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixture } from "../helpers/fixtures.js";
import { domainXml, HostTree, isRoot, logLines, run, type Run } from "../helpers/binary.js";
import { unshared } from "../helpers/netns.js";

const trees: HostTree[] = [];
/** Background processes our scripts left on purpose: killed by their PID at the end. */
const leftovers: number[] = [];
afterAll(() => {
  for (const pid of leftovers) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  trees.forEach((t) => t.dispose());
});

function tree(): HostTree {
  const t = new HostTree();
  trees.push(t);
  return t;
}

/** Writes an executable script (sh: never reads rc files) into DRIVER.d/OBJECT/OP/SUBOP/NAME. */
function script(t: HostTree, where: string, name: string, body: string, mode = 0o755): string {
  const dir = join(t.hooksDir, where);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode });
  chmodSync(path, mode);
  return path;
}

const XML = domainXml("web", "52:54:00:6c:3c:21", "start");

async function hook(t: HostTree, line: string, input = XML, env: NodeJS.ProcessEnv = {}): Promise<Run & { ms: number }> {
  const t0 = performance.now();
  const r = await run(t.hookArgv(line), { env: { ...t.env(), ...env }, input });
  return { ...r, ms: performance.now() - t0 };
}

const scriptLines = (r: Run) => logLines(r.stderr).filter((l) => l.includes(": script "));

describe("binary: per-guest scripts", () => {
  it("run in byte order of their names with libvirt's four arguments and the XML on stdin, one log line each", async () => {
    const t = tree();
    const out = join(t.root, "out");
    mkdirSync(out);
    for (const name of ["20-b", "10-a", "B", "a"]) {
      script(t, "qemu.d/web/prepare/begin", name, `echo "${name} $VIRT_HOOKS_SCRIPT $#: $*" >> ${out}/order\necho "$0" >> ${out}/argv0\ncat > ${out}/${name}.stdin\necho "hello from ${name}"\necho "to stderr" >&2`);
    }
    script(t, "qemu.d/web/prepare/begin", "README", "exit 1", 0o644); // not executable: named, not run
    script(t, "qemu.d/web/prepare/begin", "10-a~", "exit 1"); // an editor's backup: not run
    const r = await hook(t, "qemu web prepare begin -");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    const dir = join(t.hooksDir, "qemu.d/web/prepare/begin");
    expect(readFileSync(join(out, "order"), "utf8")).toBe(["10-a", "20-b", "B", "a"].map((n) => `${n} ${dir}/${n} 4: web prepare begin -\n`).join(""));
    for (const n of ["10-a", "20-b", "B", "a"]) expect(readFileSync(join(out, `${n}.stdin`), "utf8")).toBe(XML);
    // Run through the descriptor that was checked (as fexecve does), not a path looked up again.
    for (const argv0 of readFileSync(join(out, "argv0"), "utf8").trim().split("\n")) expect(argv0).toMatch(/^\/proc\/\d+\/fd\/\d+$/);
    const lines = scriptLines(r);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(new RegExp(`^virt-hooks: qemu web prepare begin: script ${dir}/10-a: exit 0; \\d+ ms; stdout: hello from 10-a; stderr: to stderr$`));
    expect(r.stderr).toContain(`${dir}/README: skipped: not executable`);
    // Our own line for the event comes first: the firewall part ran before the scripts.
    expect(logLines(r.stderr)[0]).toMatch(/qemu web prepare begin: ignored/);
  });

  it("a domain without a directory: nothing runs, nothing logged about scripts; another domain's scripts are not run", async () => {
    const t = tree();
    const marker = join(t.root, "ran");
    script(t, "qemu.d/web/prepare/begin", "10-a", `touch ${marker}`);
    const r = await hook(t, "qemu other prepare begin -");
    expect(r.code).toBe(0);
    expect(scriptLines(r)).toEqual([]);
    expect(existsSync(marker)).toBe(false);
  });

  it("a failing script refuses prepare (exit 1, the path and its stderr on ours) and later scripts do not run", async () => {
    const t = tree();
    const marker = join(t.root, "later-ran");
    const bad = script(t, "qemu.d/web/prepare/begin", "10-gpu", "echo 'vfio: device busy' >&2; exit 3");
    script(t, "qemu.d/web/prepare/begin", "20-later", `touch ${marker}`);
    const r = await hook(t, "qemu web prepare begin -");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`virt-hooks: refusing qemu web prepare begin: script ${bad}: exit 3: vfio: device busy\n`);
    expect(scriptLines(r)[0]).toMatch(/^virt-hooks: error: .*10-gpu: exit 3; .*stderr: vfio: device busy; qemu web prepare begin refused, 1 later script\(s\) not run$/);
    expect(existsSync(marker)).toBe(false);
  });

  for (const line of ["qemu web reconnect begin -", "qemu web stopped end -", "qemu web release end destroyed", "network default port-deleted begin -"]) {
    it(`a failing script never refuses ${line}: exit 0, logged, the next script runs`, async () => {
      const t = tree();
      const marker = join(t.root, "later-ran");
      const [driver, object, op, subop] = line.split(" ") as [string, string, string, string];
      script(t, `${driver}.d/${object}/${op}/${subop}`, "10-fail", "exit 1");
      script(t, `${driver}.d/${object}/${op}/${subop}`, "20-later", `touch ${marker}`);
      const r = await hook(t, line, driver === "network" ? fixture("02-network-started-begin.xml") : XML);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("");
      expect(scriptLines(r)[0]).toMatch(/^virt-hooks: warning: .*10-fail: exit 1; \d+ ms; not refusable/);
      expect(existsSync(marker)).toBe(true);
    });
  }

  it("network scripts get the <hookData> XML; a failure refuses port-created", async () => {
    const t = tree();
    const got = join(t.root, "stdin");
    script(t, "network.d/default/port-created/begin", "10-check", `cat > ${got}; echo 'port refused' >&2; exit 2`);
    const input = fixture("02-network-started-begin.xml");
    const r = await hook(t, "network default port-created begin -", input);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("port refused");
    expect(readFileSync(got, "utf8")).toBe(input);
  });

  it("a script over its time limit is killed with its whole process group; prepare is refused promptly", async () => {
    const t = tree();
    const pids = join(t.root, "pids");
    script(t, "qemu.d/web/prepare/begin", "10-hang", `sleep 300 >/dev/null 2>&1 &\necho $! > ${pids}\nsleep 300`);
    const r = await hook(t, "qemu web prepare begin -", XML, { VIRT_HOOKS_SCRIPT_TIMEOUT: "1" });
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(8_000);
    expect(r.stderr).toMatch(/10-hang: timed out after 1 s, killed \(its process group\)/);
    const sleeper = Number(readFileSync(pids, "utf8"));
    leftovers.push(sleeper);
    expect(existsSync(`/proc/${sleeper}`) && !readFileSync(`/proc/${sleeper}/stat`, "utf8").includes(") Z ")).toBe(false);
  });

  it("a background job that keeps the script's stdout and stderr open: the hook returns at once and its own stdout reaches EOF", async () => {
    const t = tree();
    const pids = join(t.root, "pids");
    // The classic mistake: `daemon &` without redirecting its output.
    script(t, "qemu.d/web/started/begin", "10-daemon", `sleep 300 &\necho $! > ${pids}\necho started`);
    const r = await hook(t, "qemu web started begin -"); // run() resolves on 'close': EOF on the hook's stdout and stderr
    const sleeper = Number(readFileSync(pids, "utf8"));
    leftovers.push(sleeper);
    expect(r.code, r.stderr).toBe(0);
    expect(r.ms).toBeLessThan(5_000);
    expect(r.stdout).toBe("");
    expect(scriptLines(r)[0]).toMatch(/10-daemon: exit 0; \d+ ms; stdout: started; a process it left running still held its output open: not waited for/);
    expect(existsSync(`/proc/${sleeper}`)).toBe(true); // not killed: only a timeout kills
  });

  it("migrate: stdout chains from script to script and the last replacement is the hook's stdout", async () => {
    const t = tree();
    const seen = join(t.root, "seen");
    mkdirSync(seen);
    script(t, "qemu.d/web/migrate/begin", "10-rename", `sed 's|<name>web</name>|<name>web2</name>|'`);
    script(t, "qemu.d/web/migrate/begin", "20-quiet", `cat > ${seen}/20`); // prints nothing: the XML passes on
    script(t, "qemu.d/web/migrate/begin", "30-tag", `cat > ${seen}/30\nsed 's|</domain>|<!-- tagged --></domain>|' ${seen}/30`);
    const r = await hook(t, "qemu web migrate begin -");
    expect(r.code, r.stderr).toBe(0);
    const renamed = XML.replace("<name>web</name>", "<name>web2</name>");
    expect(readFileSync(join(seen, "20"), "utf8")).toBe(renamed);
    expect(readFileSync(join(seen, "30"), "utf8")).toBe(renamed);
    expect(r.stdout).toBe(renamed.replace("</domain>", "<!-- tagged --></domain>"));
    expect(scriptLines(r)[0]).toMatch(/10-rename: exit 0; \d+ ms; stdout: replacement domain XML, \d+ bytes$/);
  });

  it("restore: scripts that print nothing leave stdout empty (libvirt keeps its XML); a failing one refuses with nothing printed", async () => {
    const t = tree();
    script(t, "qemu.d/web/restore/begin", "10-quiet", "cat >/dev/null");
    const r = await hook(t, "qemu web restore begin -");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    script(t, "qemu.d/web/restore/begin", "20-bad", "cat; exit 4");
    const f = await hook(t, "qemu web restore begin -");
    expect(f.code).toBe(1);
    expect(f.stdout).toBe("");
  });

  it("a symbolic link to a root-owned script elsewhere runs (one script shared by several guests)", async () => {
    const t = tree();
    const marker = join(t.root, "shared-ran");
    const shared = join(t.root, "shared");
    mkdirSync(shared, { mode: 0o755 });
    writeFileSync(join(shared, "gpu"), `#!/bin/sh\necho "$1" >> ${marker}\n`, { mode: 0o755 });
    mkdirSync(join(t.hooksDir, "qemu.d/web/prepare/begin"), { recursive: true });
    symlinkSync(join(shared, "gpu"), join(t.hooksDir, "qemu.d/web/prepare/begin/10-gpu"));
    const r = await hook(t, "qemu web prepare begin -");
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(marker, "utf8")).toBe("web\n");
  });
});

describe("binary: per-guest scripts, trust", () => {
  it("a group-writable script is refused with the fix: prepare is refused before any script runs", async () => {
    const t = tree();
    const marker = join(t.root, "ran");
    script(t, "qemu.d/web/prepare/begin", "10-ok", `touch ${marker}`);
    const open = script(t, "qemu.d/web/prepare/begin", "20-open", "exit 0", 0o775);
    const r = await hook(t, "qemu web prepare begin -");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${open}: refused: writable by its group (mode 0775)`);
    expect(r.stderr).toContain(`Fix: chmod go-w ${open}`);
    expect(existsSync(marker)).toBe(false);
    chmodSync(open, 0o755);
    expect((await hook(t, "qemu web prepare begin -")).code).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it("an others-writable directory: nothing below it runs; on stopped the event still passes", async () => {
    const t = tree();
    const marker = join(t.root, "ran");
    script(t, "qemu.d/web/stopped/end", "10-a", `touch ${marker}`);
    chmodSync(join(t.hooksDir, "qemu.d/web"), 0o757);
    const r = await hook(t, "qemu web stopped end -");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/qemu\.d\/web: refused: writable by others/);
    expect(existsSync(marker)).toBe(false);
  });

  it.skipIf(!isRoot)("a script owned by another user is refused (as root)", async () => {
    const t = tree();
    const theirs = script(t, "qemu.d/web/start/begin", "10-theirs", "exit 0");
    chownSync(theirs, 65534, 65534);
    const r = await hook(t, "qemu web start begin -");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${theirs}: refused: owned by uid 65534, not root`);
  });
});

const hasStrace = spawnSync("strace", ["-V"]).status === 0;

describe.skipIf(!hasStrace)("binary: per-guest scripts, the hot path", () => {
  it("no directory for this domain: one failed stat under qemu.d, no child process", async () => {
    const t = tree();
    script(t, "qemu.d/web/prepare/begin", "10-a", "exit 0"); // another guest's
    const trace = join(t.root, "trace");
    const r = await run(["strace", "-f", "-qq", "-e", "trace=%file,execve", "-o", trace, ...t.hookArgv("qemu other prepare begin -")], { env: t.env(), input: XML });
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(trace, "utf8").split("\n");
    const touched = lines.filter((l) => l.includes("/qemu.d"));
    expect(touched, touched.join("\n")).toHaveLength(1);
    expect(touched[0]).toMatch(/qemu\.d\/other".*= -1 ENOENT/);
    expect(lines.filter((l) => /execve\(.* = 0$/.test(l))).toHaveLength(1); // the hook itself
  });
});

describe.skipIf(!isRoot)("binary: per-guest scripts after our firewall work", () => {
  it("start with rules: the reconcile's line first, then the script's (scripts run outside our lock)", async () => {
    const t = HostTree.withDefaultNetwork([{ name: "web", mac: "52:54:00:6c:3c:21", ip: "192.168.122.21" }]);
    trees.push(t);
    t.writeRules("50-web.rules", "forward tcp 8080 to web:80\n");
    script(t, "qemu.d/web/start/begin", "10-a", "echo hi");
    const r = await run(unshared(t.hookArgv("qemu web start begin -")), { env: t.env(), input: XML });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    const lines = logLines(r.stderr);
    expect(lines[0]).toMatch(/qemu web start begin: ipv4 \+\d+/);
    expect(lines[1]).toMatch(/qemu web start begin: script .*10-a: exit 0; \d+ ms; stdout: hi$/);
  });
});
