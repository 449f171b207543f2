// Hostile tier, cases 2 and 4 of issue 25: what sits in the files and
// directories a hook reads or runs. A FIFO where a rule file should be (a
// mistake, or a user's bind mount) blocked every hook forever on open(); a
// per-guest script symlinked below a user's directory was checked only at its
// target's own directory, so the user could swap in their own file and have
// root run it. Each case runs the compiled executable, under a hard time limit.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isRoot, logLines, requireBinary, type HostTree } from "../helpers/binary.js";
import { unshared } from "../helpers/netns.js";
import { asNobody, bounded, liveCount, NOBODY, START, startXml, vm1Tree } from "./helpers.js";

const trees: HostTree[] = [];
afterAll(() => trees.forEach((t) => t.dispose()));
const tree = () => {
  const t = vm1Tree();
  trees.push(t);
  return t;
};

describe.skipIf(!isRoot)("hostile: stray files in rules.d", () => {
  it("a FIFO named like a rule file is refused at once; the other files' forwards apply", async () => {
    requireBinary();
    const t = tree();
    execFileSync("mkfifo", ["-m", "0644", join(t.rulesDir, "40-x.rules")]);
    const r = await bounded(unshared(t.hookArgv(START)), 20, { env: t.env(), input: startXml() });
    // Earlier releases: blocked in open() until killed (here: SIGKILL after 20 s).
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.ms).toBeLessThan(5_000);
    expect(liveCount(r)).toBe(2);
    expect(logLines(r.stderr).join("\n")).toContain(`${join(t.rulesDir, "40-x.rules")}: refused: not a regular file`);
    // And the admin's check says the same, without hanging.
    const c = await bounded(t.cliArgv("check"), 20, { env: t.env() });
    expect(c.signal).toBeNull();
    expect(c.stderr + c.stdout).toContain("40-x.rules: refused: not a regular file");
  });

  it("a rule file that is a symlink into a directory a user can write is refused (the whole path is checked), the rest applies", async () => {
    const t = tree();
    const home = join(t.root, "home/admin");
    mkdirSync(join(home, "rules"), { recursive: true });
    chownSync(home, NOBODY, NOBODY);
    writeFileSync(join(home, "rules/extra.rules"), "forward tcp 9999 to vm1:22\n", { mode: 0o644 });
    symlinkSync(join(home, "rules/extra.rules"), join(t.rulesDir, "60-extra.rules"));
    const r = await bounded(unshared(t.hookArgv(START)), 20, { env: t.env(), input: startXml() });
    expect(r.code, r.stderr).toBe(0);
    // Earlier releases checked only the file and its own directory (both root's): 3 live.
    expect(liveCount(r)).toBe(2);
    expect(logLines(r.stderr).join("\n")).toContain(`${home}: refused: owned by uid ${NOBODY}, not root`);
  });

  it("a huge rule file is refused with its size; the rest applies", async () => {
    const t = tree();
    writeFileSync(join(t.rulesDir, "70-huge.rules"), `# ${"x".repeat(2 * 1024 * 1024)}\n`);
    const r = await bounded(unshared(t.hookArgv(START)), 20, { env: t.env(), input: startXml() });
    expect(r.code, r.stderr).toBe(0);
    expect(liveCount(r)).toBe(2);
    expect(logLines(r.stderr).join("\n")).toMatch(/70-huge\.rules: refused: \d+ bytes is more than the 1048576 it may have/);
  });
});

describe.skipIf(!isRoot)("hostile: a per-guest script reached through a user's directory", () => {
  function sharedScript(t: HostTree): { home: string; marker: string } {
    // /home/admin is the user's; common/ and the script in it are root's, as in the report.
    const home = join(t.root, "home/admin");
    const common = join(home, "vm/common");
    mkdirSync(common, { recursive: true });
    chownSync(home, NOBODY, NOBODY);
    chmodSync(home, 0o755);
    const marker = join(t.root, "ran");
    writeFileSync(join(common, "script"), `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
    const dir = join(t.hooksDir, "qemu.d/vm1/prepare/begin");
    mkdirSync(dir, { recursive: true });
    symlinkSync(join(common, "script"), join(dir, "10-shared"));
    return { home, marker };
  }

  it("is refused, never run, and the refusal names the user's directory", async () => {
    const t = tree();
    const { home, marker } = sharedScript(t);
    const r = await bounded(unshared(t.hookArgv("qemu vm1 prepare begin -")), 20, { env: t.env(), input: startXml() });
    // prepare may be refused by a hook: a script that should run but must not refuses the start, with the reason.
    expect(r.code).toBe(1);
    expect(existsSync(marker)).toBe(false);
    expect(r.stderr).toContain(`${home}: refused: owned by uid ${NOBODY}, not root`);
  });

  it("the user's rename race has nothing to race: their own file is never run (50 runs while they swap)", async () => {
    const t = tree();
    const { home, marker } = sharedScript(t);
    // The user owns /home/admin, so may rename vm/ (root's, holding common/script) away and
    // put a vm/ of their own in its place, as fast as they can: the race of the report.
    const mine = join(home, "fake");
    mkdirSync(join(mine, "common"), { recursive: true });
    writeFileSync(join(mine, "common/script"), `#!/bin/sh\ntouch ${marker}.user\n`, { mode: 0o755 });
    for (const p of [mine, join(mine, "common"), join(mine, "common/script")]) chownSync(p, NOBODY, NOBODY);
    const swap = `import os, time\nend = time.time() + 60\nh = "${home}"\nwhile time.time() < end:\n    os.rename(h + "/vm", h + "/tmp"); os.rename(h + "/fake", h + "/vm")\n    os.rename(h + "/vm", h + "/fake"); os.rename(h + "/tmp", h + "/vm")\n`;
    const racer = (await import("node:child_process")).spawn(asNobody(["/usr/bin/python3", "-c", swap])[0] as string, asNobody(["/usr/bin/python3", "-c", swap]).slice(1), { stdio: "ignore" });
    try {
      for (let i = 0; i < 50; i++) await bounded(unshared(t.hookArgv("qemu vm1 prepare begin -")), 20, { env: t.env(), input: startXml() });
    } finally {
      racer.kill("SIGKILL");
    }
    expect(existsSync(`${marker}.user`)).toBe(false);
    expect(existsSync(marker)).toBe(false);
  });
});
