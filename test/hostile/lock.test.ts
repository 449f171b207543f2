// Hostile tier, case 1 of issue 25: a local user takes whatever of our lock
// they can. Earlier releases locked with the abstract socket
// "\0virt-hooks:/run/virt-hooks": abstract names have no permissions, so a
// user who bound it first made every hook wait 30 s and then act on nothing.
// Now the lock is a file in the root-only state directory; the old name is
// still bound by us (to exclude an earlier release's hooks during an upgrade),
// but a holder that is not root is named and ignored.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { isRoot, logLines, requireBinary, type HostTree } from "../helpers/binary.js";
import { NetnsPool } from "../helpers/netns.js";
import { asNobody, Background, bounded, dnatRules, liveCount, NOBODY, PYTHON, START, startXml, vm1Tree } from "./helpers.js";

/** Binds the given abstract names (and tries to create the given files), then sleeps: everything a user can hold. */
const SQUATTER = `
import os, socket, sys, time
held = []
for name in sys.argv[1].split("\\n"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(b"\\0virt-hooks:" + name.encode())
    s.listen(1)
    held.append(s)
for path in sys.argv[2:]:
    try:
        held.append(open(path, "w"))
        print("created " + path, flush=True)
    except OSError as e:
        print("could not create %s: %s" % (path, e.strerror), flush=True)
print("ready", flush=True)
time.sleep(600)
`;

describe.skipIf(!isRoot)("hostile: a local user holds every lock name they can", () => {
  const pool = new NetnsPool();
  const trees: HostTree[] = [];
  const squatters: Background[] = [];
  afterEach(() => squatters.splice(0).forEach((s) => s.stop()));
  afterAll(() => {
    pool.disposeAll();
    trees.forEach((t) => t.dispose());
  });

  it("a guest's start hook neither waits for them nor loses a forward, and the log names their process and uid", async () => {
    requireBinary();
    const ns = await pool.create();
    const t = vm1Tree();
    trees.push(t);
    const stateDir = join(t.root, "run/virt-hooks");
    // A first event creates the state directory as a running host has it.
    expect((await ns.exec(t.hookArgv(START), { env: t.env(), input: startXml() })).code).toBe(0);
    const squatter = await Background.start(
      ns.argv(asNobody([PYTHON, "-c", SQUATTER, [stateDir, `${stateDir}:fixed-addresses`].join("\n"), join(stateDir, "reconcile.lock"), join(stateDir, "x")])),
      "ready",
    );
    squatters.push(squatter);
    // The state directory is root's alone: the user cannot even create a file there.
    expect(squatter.output).toContain(`could not create ${join(stateDir, "reconcile.lock")}: Permission denied`);

    await ns.exec(["iptables", "-t", "nat", "-F"]);
    const r = await bounded(ns.argv(t.hookArgv(START)), 60, { env: t.env(), input: startXml() });
    console.log(`hostile-tier: start hook with the lock names squatted took ${Math.round(r.ms)} ms`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    // Earlier releases: 30.1 s, then "another virt-hooks held the lock", no forward.
    expect(r.ms).toBeLessThan(5_000);
    expect(liveCount(r)).toBe(2);
    // Each forward is DNATed on the way in and for the host's own connections.
    const dnat = await dnatRules(ns);
    for (const port of [2222, 2223]) expect(dnat.filter((l) => l.includes(`--dport ${port} `))).toHaveLength(2);
    const lines = logLines(r.stderr);
    expect(lines.join("\n")).toMatch(new RegExp(`bound by pid ${squatter.pid} \\(uid ${NOBODY}, "python3"\\): not root, so not virt-hooks; ignored`));
    expect(lines.join("\n")).not.toContain("another virt-hooks");
    // The hook left no lock behind.
    expect(existsSync(join(stateDir, "reconcile.lock"))).toBe(false);

    // The admin's apply too.
    const a = await bounded(ns.argv(t.cliArgv("apply")), 60, { env: t.env() });
    expect(a.code, a.stderr).toBe(0);
    expect(a.ms).toBeLessThan(5_000);
  });
});
