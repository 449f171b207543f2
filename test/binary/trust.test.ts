// Binary tier, trust boundary: the compiled hook refuses a rules.d, rule file
// or state directory that is not root's alone, says which path and the fix,
// keeps applying the last accepted rules, and still exits 0 (never fails a
// guest over it). Needs root (chown to nobody); skipped otherwise.
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixture } from "../helpers/fixtures.js";
import { HostTree, isRoot, logLines, run, type Run } from "../helpers/binary.js";
import { unshared } from "../helpers/netns.js";

const NOBODY = 65534;
const START = "qemu vm1 start begin -";
const trees: HostTree[] = [];
afterAll(() => trees.forEach((t) => t.dispose()));

function vm1Tree(): HostTree {
  const t = new HostTree();
  trees.push(t);
  t.setNetwork("default", fixture("status-network-default.xml"));
  t.setDomainStatus("vm1", fixture("status-qemu-vm1.xml"));
  t.writeRules("50-vm1.rules", "forward tcp 2222 to vm1:22\n");
  t.writeRules("60-more.rules", "forward tcp 2223 to vm1:23\n");
  return t;
}

const hook = (t: HostTree): Promise<Run> => run(unshared(t.hookArgv(START)), { env: t.env(), input: fixture("05-qemu-start-begin.xml") });
const stateDir = (t: HostTree) => join(t.root, "run/virt-hooks");

async function liveRules(t: HostTree): Promise<{ live: number; lines: string[]; code: number | null; stdout: string }> {
  const r = await hook(t);
  const lines = logLines(r.stderr);
  const m = /rules (\d+) live/.exec(r.stderr);
  return { live: Number(m?.[1] ?? -1), lines, code: r.code, stdout: r.stdout };
}

describe.skipIf(!isRoot)("binary: trust boundary", () => {
  it("accepts root's files and records them, root-only, as the last good rules", async () => {
    const t = vm1Tree();
    const r = await liveRules(t);
    expect(r).toMatchObject({ code: 0, stdout: "", live: 2 });
    expect(r.lines.join("\n")).not.toContain("refused");
    const snap = statSync(join(stateDir(t), "rules-last-good.json"));
    expect([snap.uid, snap.mode & 0o777, statSync(stateDir(t)).mode & 0o777]).toEqual([0, 0o600, 0o700]);
    expect(JSON.parse(readFileSync(join(stateDir(t), "rules-last-good.json"), "utf8")).files.map((f: { text: string }) => f.text)).toEqual(["forward tcp 2222 to vm1:22\n", "forward tcp 2223 to vm1:23\n"]);
  });

  it("a group-writable rule file is refused with the chmod fix; its last accepted text stays in force, the edit is not applied", async () => {
    const t = vm1Tree();
    expect((await liveRules(t)).live).toBe(2);
    const file = join(t.rulesDir, "60-more.rules");
    writeFileSync(file, "forward tcp 2223 to vm1:23\nforward tcp 9999 to vm1:22\n");
    chmodSync(file, 0o664);
    const r = await liveRules(t);
    expect(r).toMatchObject({ code: 0, stdout: "", live: 2 });
    const log = r.lines.join("\n");
    expect(log).toContain(`${file}: refused: writable by its group (mode 0664); the hook runs as root, so whoever can write this controls the host's firewall. Fix: chmod go-w ${file}`);
    expect(log).toContain(`${file}: using its last accepted version`);
    chmodSync(file, 0o644);
    expect((await liveRules(t)).live).toBe(3);
  });

  it("a rule file owned by someone else is refused with the chown fix; one never accepted applies nothing", async () => {
    const t = vm1Tree();
    const file = join(t.rulesDir, "70-nobody.rules");
    writeFileSync(file, "forward tcp 7000 to vm1:22\n");
    chownSync(file, NOBODY, NOBODY);
    const r = await liveRules(t);
    expect(r).toMatchObject({ code: 0, live: 2 });
    const log = r.lines.join("\n");
    expect(log).toContain(`${file}: refused: owned by uid ${NOBODY}, not root; the hook runs as root`);
    expect(log).toContain(`Fix: chown root: ${file}`);
    expect(log).toContain(`${file}: never accepted, so none of its rules apply until it is fixed`);
  });

  it("rules.d writable by others: every file in it is refused and the last good set is used", async () => {
    const t = vm1Tree();
    expect((await liveRules(t)).live).toBe(2);
    chmodSync(t.rulesDir, 0o777);
    writeFileSync(join(t.rulesDir, "80-planted.rules"), "forward tcp 1 to vm1:22\n");
    const r = await liveRules(t);
    expect(r).toMatchObject({ code: 0, live: 2 });
    const log = r.lines.join("\n");
    expect(log).toContain(`${t.rulesDir}: refused: writable by group and others (mode 0777)`);
    expect(log).toContain(`Fix: chmod go-w ${t.rulesDir}`);
    expect(log).toMatch(/using the rules last accepted at \S+ \(2 file\(s\)\)/);
  });

  it("a state directory others can write is refused: no last good rules are read from it", async () => {
    const t = vm1Tree();
    mkdirSync(stateDir(t), { recursive: true });
    chmodSync(stateDir(t), 0o777);
    writeFileSync(join(stateDir(t), "rules-last-good.json"), JSON.stringify({ at: "x", files: [{ path: join(t.rulesDir, "50-vm1.rules"), text: "forward tcp 1 to vm1:22\nforward tcp 3 to vm1:22\n" }] }));
    chmodSync(join(t.rulesDir, "50-vm1.rules"), 0o666);
    const r = await liveRules(t);
    expect(r).toMatchObject({ code: 0, live: 1 });
    expect(r.lines.join("\n")).toContain(`${stateDir(t)}: refused: writable by group and others (mode 0777)`);
  });

  it("virt-hooks check reports a refused file as an error (exit 1)", async () => {
    const t = vm1Tree();
    chmodSync(join(t.rulesDir, "50-vm1.rules"), 0o646);
    const r = await run(t.cliArgv("check"), { env: t.env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Fix: chmod go-w ${join(t.rulesDir, "50-vm1.rules")}`);
  });
});
