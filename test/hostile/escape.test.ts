// Hostile tier, guests' text (issue 25, item 7): a guest chooses its DHCP
// hostname, and libvirt's lease helper writes it into dnsmasq's lease status
// file as it came. One holding a terminal's escapes (OSC title, CSI, C1's
// one-byte CSI), a bidi override and isolates, a line separator and a fake
// log line must reach no face raw: `status`, `explain`, `check` and `apply`
// (stdout and stderr), and the log record (a journal stand-in under the
// tree); `--json` keeps the exact string. The compiled executable, in a
// private network namespace (status and apply read and write the firewall).
import { createServer, type Server } from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { domainXml, HostTree, isRoot, type Run } from "../helpers/binary.js";
import { fixture } from "../helpers/fixtures.js";
import { escapeText } from "../../src/text/escape.js";
import { NetnsPool, type Netns } from "../helpers/netns.js";

/** What a guest may call itself. */
const EVIL = "web\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x9b1m\u202etxt.exe\u2066iso\u2069\u200e\u2028virt-hooks: forged line\r\x7fend\u061c\u2029";
/** Every character that must never be printed raw (text/escape.ts), newline and tab apart. */
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/;
/** The part of EVIL that shows the hostname was printed at all (escaped). */
const SHOWN = "\\u202etxt.exe";
const VM1_MAC = "52:54:00:6c:3c:01";
const until = async (ok: () => boolean, limit = 3000) => {
  for (const t0 = Date.now(); Date.now() - t0 < limit && !ok(); ) await new Promise((r) => setTimeout(r, 20));
};
const OTHER_MAC = "52:54:00:6c:3c:77";

describe.skipIf(!isRoot)("hostile: a guest's hostname reaches no face raw", () => {
  const pool = new NetnsPool();
  let t: HostTree;
  let ns: Netns;
  let journal: Server;
  const records: string[] = [];
  const cli = (...args: string[]): Promise<Run> => ns.exec(t.cliArgv(...args), { env: t.env() });
  const clean = (what: string, text: string) => {
    const i = text.search(RAW);
    expect(i, `${what} holds ${JSON.stringify(text.slice(Math.max(0, i - 20), i + 20))}`).toBe(-1);
  };

  beforeAll(async () => {
    t = HostTree.withDefaultNetwork();
    t.startDomain("vm1", VM1_MAC);
    // vm1's forward (explain shows its lease), and a fixed address dnsmasq has leased to another guest (check, status, apply say to whom).
    t.writeRules("50-vm.rules", "forward tcp 2222 to vm1:22\nhost default 52:54:00:6c:3c:55 192.168.122.150 web2\n");
    for (const d of ["etc/libvirt/qemu/networks", "var/lib/libvirt/dnsmasq"]) mkdirSync(join(t.root, d), { recursive: true });
    writeFileSync(join(t.root, "etc/libvirt/qemu/vm1.xml"), domainXml("vm1", VM1_MAC, "start"));
    // As libvirt's leaseshelper writes it: JSON, the hostname as the guest sent it.
    writeFileSync(
      join(t.root, "var/lib/libvirt/dnsmasq/virbr0.status"),
      JSON.stringify([
        { "ip-address": "192.168.122.10", "mac-address": VM1_MAC, hostname: EVIL, "expiry-time": 1900000000 },
        { "ip-address": "192.168.122.150", "mac-address": OTHER_MAC, hostname: EVIL, "expiry-time": 1900000000 },
      ], null, 2),
    );
    // journald's stream socket, stood in for under the tree: the log records as they arrive.
    mkdirSync(join(t.root, "run/systemd/journal"), { recursive: true });
    journal = await new Promise((resolve) => {
      const s = createServer((c) => {
        let text = "";
        c.setEncoding("utf8").on("data", (d: string) => (text += d)).on("end", () => records.push(text));
      });
      s.listen(join(t.root, "run/systemd/journal/stdout"), () => resolve(s));
    });
    ns = await pool.create();
  });
  afterAll(async () => {
    await new Promise((r) => journal?.close(r));
    pool.disposeAll();
    t?.dispose();
  });

  it("explain: the lease's hostname, escaped", async () => {
    const r = await cli("explain", "vm1");
    expect(r.code, r.stderr).toBe(0);
    clean("explain stdout", r.stdout);
    clean("explain stderr", r.stderr);
    expect(r.stdout).toContain(`lease 192.168.122.10 hostname web\\u001b]0;pwned\\u0007`);
    // On its own line: the guest's U+2028 and CR do not start another.
    expect(r.stdout.split("\n").filter((l) => l.includes("virt-hooks: forged line"))).toEqual([expect.stringMatching(/^ {4}lease 192\.168\.122\.10 hostname /)]);
  });

  for (const args of [["check"], ["apply"], ["status"]]) {
    it(`${args.join(" ")}: the diagnostic naming who holds the address, escaped`, async () => {
      const r = await cli(...args);
      clean(`${args[0]} stdout`, r.stdout);
      clean(`${args[0]} stderr`, r.stderr);
      expect(r.stdout + r.stderr).toContain(SHOWN);
    });
  }

  it("the log records (journal): a name libvirt passes a hook (it refuses only a newline in one), escaped, and no record forged", async () => {
    const before = records.length;
    const r = await ns.exec([join(t.hooksDir, "qemu"), EVIL, "stopped", "end", "-"], { env: t.env(), input: fixture("17-qemu-stopped-end.xml") });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    clean("hook stderr", r.stderr);
    await until(() => records.length > before);
    const mine = records.slice(before);
    for (const rec of mine) {
      const [, , , , , , , ...lines] = rec.split("\n");
      // One record per line we logged, each with its own priority: the guest's U+2028, CR and fake "virt-hooks:" are inside it.
      expect(lines.filter(Boolean)).toHaveLength(1);
      for (const l of lines.filter(Boolean)) {
        expect(l).toMatch(/^<\d>qemu /);
        clean("journal record", l);
      }
    }
    expect(mine.join("")).toContain(SHOWN);
  });

  it("a hook's stderr (libvirt shows it in errors; the log's sink without a journal): the domain's name, escaped", async () => {
    const bare = HostTree.withDefaultNetwork();
    try {
      bare.writeRules("50-vm.rules", "forward tcp 2222 to vm1:22\n");
      const r = await ns.exec([join(bare.hooksDir, "qemu"), EVIL, "start", "begin", "-"], { env: bare.env(), input: fixture("05-qemu-start-begin.xml") });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("");
      clean("hook stderr", r.stderr);
      expect(r.stderr).toContain(`virt-hooks: qemu ${escapeText(EVIL)} start begin: `);
    } finally {
      bare.dispose();
    }
  });

  it("--json: the exact hostname, in a document with no raw control character", async () => {
    const r = await cli("status", "--json");
    clean("status --json", r.stdout);
    const doc = JSON.parse(r.stdout);
    const leased = doc.rules.find((x: { text: string }) => x.text === "forward tcp 2222 to vm1:22");
    expect(leased.lease.hostname).toBe(EVIL);
    const c = await cli("check", "--json");
    clean("check --json", c.stdout);
    expect(JSON.parse(c.stdout).diagnostics.some((d: { message: string }) => d.message.includes(SHOWN))).toBe(true);
  });
});
