// Hostile tier, case 4 of issue 25 (the log sink): a syslog daemon that stops
// reading (its queue full) made logger(1) block forever, and libvirt waits for
// its hook with no time limit: every guest start hung. Now the sink gives up
// after 2 s and the line goes to stderr (nothing lost). A real datagram
// socket stands in /dev/log, its queue really full, inside private mount and
// network namespaces; the compiled executable under a hard time limit.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { isRoot, logLines, requireBinary, type HostTree } from "../helpers/binary.js";
import { unshared } from "../helpers/netns.js";
import { Background, bounded, liveCount, PYTHON, START, startXml, vm1Tree } from "./helpers.js";

/** Binds a datagram socket, never reads it, and fills its queue until a send would block. */
const STALLED_SYSLOG = `
import os, socket, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.setblocking(False)
n = 0
try:
    while True:
        c.sendto(b"<14>filler", path)
        n += 1
except BlockingIOError:
    pass
print("ready %d" % n, flush=True)
time.sleep(600)
`;

/** The mount namespace every logger sees: /dev as it was, but /dev/log the stalled socket (constant text; values are arguments). */
const WITH_DEV_LOG = `set -e
root=$1; shift
mkdir -p "$root/devsave"
mount --rbind /dev "$root/devsave"
mount -t tmpfs -o mode=0755 tmpfs /dev
for n in null zero random urandom full; do touch "/dev/$n"; mount --bind "$root/devsave/$n" "/dev/$n"; done
touch /dev/log
mount --bind "$root/dev/log" /dev/log
exec "$@"`;

describe.skipIf(!isRoot)("hostile: a syslog daemon that stops reading", () => {
  const trees: HostTree[] = [];
  const daemons: Background[] = [];
  afterEach(() => daemons.splice(0).forEach((d) => d.stop()));
  afterAll(() => trees.forEach((t) => t.dispose()));

  it("a hook logging to it still returns within seconds, with its line on stderr and every forward", async () => {
    requireBinary();
    const t = vm1Tree();
    trees.push(t);
    mkdirSync(join(t.root, "dev"));
    const daemon = await Background.start([PYTHON, "-c", STALLED_SYSLOG, join(t.root, "dev/log")], "ready");
    daemons.push(daemon);
    const r = await bounded(unshared(["unshare", "-m", "--propagation", "private", "sh", "-c", WITH_DEV_LOG, "sh", t.root, ...t.hookArgv(START)]), 30, { env: t.env(), input: startXml() });
    console.log(`hostile-tier: start hook with a stalled syslog took ${Math.round(r.ms)} ms (${daemon.output.trim()} datagrams queued)`);
    // Earlier releases: logger blocked in send(), the hook with it, until killed here after 30 s.
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.ms).toBeLessThan(10_000);
    // Its one line reached stderr instead: nothing is lost.
    expect(liveCount(r)).toBe(2);
    expect(logLines(r.stderr)).toHaveLength(1);
  });
});
