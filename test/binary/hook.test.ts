// Binary tier, hook face: the compiled executable called the way libvirt 11.3
// called its hooks (test/fixtures/libvirt-11.3: argv and stdin), through a
// symlink named after the driver, with VIRT_HOOKS_ROOT at a scratch tree.
// As root every call runs in a throw-away netns (`unshare -n`), so the events
// that reconcile really apply; otherwise their iptables calls fail, are logged,
// and the exit code must still be 0.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { capturedEvents, fixture } from "../helpers/fixtures.js";
import { domainXml, HostTree, isRoot, logLines, run, SUMMARY, type Run } from "../helpers/binary.js";
import { unshared } from "../helpers/netns.js";

const VM1_RULES = "forward tcp 2222 to vm1:22\nforward tcp,udp 5000-5001 to vm1\n";

/** The tree libvirt would show while vm1 runs on default: the captured status files. */
function vm1Tree(rules = VM1_RULES): HostTree {
  const t = new HostTree();
  t.setNetwork("default", fixture("status-network-default.xml"));
  t.setDomainStatus("vm1", fixture("status-qemu-vm1.xml"));
  t.writeRules("50-vm1.rules", rules);
  return t;
}

/** argv isolated in its own netns when we can (root), as is otherwise. */
const isolated = (argv: string[]) => (isRoot ? unshared(argv) : argv);

async function hook(tree: HostTree, line: string, xml: string): Promise<Run> {
  return run(isolated(tree.hookArgv(line)), { env: tree.env(), input: xml });
}

/** What formatEvent prints: "driver object op subop[ extra]". */
const label = (driver: string, args: readonly string[]) => [driver, ...args.slice(0, 3), ...(args[3] && args[3] !== "-" ? [args[3]] : [])].join(" ");

/** stdout empty, exit 0, exactly one summary line naming the event and its duration. */
function expectQuietSuccess(r: Run, eventLabel: string): void {
  expect(r.stdout).toBe("");
  expect(r.code, r.stderr).toBe(0);
  const lines = logLines(r.stderr);
  expect(lines.filter((l) => SUMMARY(eventLabel).test(l)), r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(SUMMARY(eventLabel));
}

describe("binary: every event libvirt 11.3 sent", () => {
  const trees: HostTree[] = [];
  afterAll(() => trees.forEach((t) => t.dispose()));

  for (const e of capturedEvents()) {
    it(`${e.id}: ${e.driver} ${e.args.join(" ")}`, async () => {
      const tree = vm1Tree();
      trees.push(tree);
      const r = await hook(tree, [e.driver, ...e.args].join(" "), e.xml);
      expectQuietSuccess(r, label(e.driver, e.args));
      // Nothing but log lines (and their indented hints) on stderr.
      for (const l of r.stderr.split("\n").filter(Boolean)) expect(l).toMatch(/^(virt-hooks: |  )/);
      if (isRoot && r.stderr.includes("ipv4 +")) expect(r.stderr).not.toContain("FAILED");
    });
  }

  it.skipIf(!isRoot)("a reconciling event as root really applies (qemu vm1 start: +rules, no failure)", async () => {
    const tree = vm1Tree();
    trees.push(tree);
    const r = await hook(tree, "qemu vm1 start begin -", fixture("05-qemu-start-begin.xml"));
    expectQuietSuccess(r, "qemu vm1 start begin");
    expect(r.stderr).toMatch(/ipv4 \+\d+ -0; rules 2 live, 0 waiting, 0 failed/);
  });

  it.skipIf(isRoot)("without root, a reconciling event logs the failed iptables call and still exits 0", async () => {
    const tree = vm1Tree();
    trees.push(tree);
    const r = await hook(tree, "qemu vm1 start begin -", fixture("05-qemu-start-begin.xml"));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("FAILED");
  });
});

describe("binary: rule errors and on-error block", () => {
  let tree: HostTree;
  afterEach(() => tree.dispose());

  it("a rules file with errors: the hook exits 0 and logs file:line:col with the hint", async () => {
    tree = vm1Tree("forward tcp 2222 to vm1:22\nforward tcp 99999 to vm1:22\n");
    const r = await hook(tree, "qemu vm1 start begin -", fixture("05-qemu-start-begin.xml"));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`${join(tree.rulesDir, "50-vm1.rules")}:2:13: error: port 99999 is out of range [bad-port]`);
    expect(r.stderr).toMatch(/\n {2}hint: ports are 1 to 65535\n/);
    // The good rule is still applied.
    expect(r.stderr).toMatch(/rules 1 live/);
  });

  const blocking = "set on-error block\nforward tcp 2222 to vm1:22\nforward tcp 99999 to vm1:22\n";

  it("set on-error block: start is refused (exit 1) and stderr says why", async () => {
    tree = vm1Tree(blocking);
    const r = await hook(tree, "qemu vm1 start begin -", fixture("05-qemu-start-begin.xml"));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("refusing to start vm1 (set on-error block)");
    expect(r.stderr).toContain("50-vm1.rules:3:13: error: port 99999 is out of range");
  });

  for (const [line, xml] of [
    ["qemu vm1 reconnect begin -", "08-qemu-reconnect-begin.xml"],
    ["qemu vm1 stopped end -", "17-qemu-stopped-end.xml"],
    ["qemu vm1 release end destroyed", "20-qemu-release-end-destroyed.xml"],
    ["network default started begin -", "02-network-started-begin.xml"],
    ["network default port-created begin -", "04-network-port-created-begin.xml"],
  ] as const) {
    it(`set on-error block: ${line} still exits 0 (libvirt would kill or fail the guest)`, async () => {
      tree = vm1Tree(blocking);
      const r = await hook(tree, line, fixture(xml));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).not.toContain("refusing");
    });
  }

  it("set on-error block, a forward to a domain without a DHCP host entry: start refused with the net-update command", async () => {
    tree = vm1Tree("set on-error block\nforward tcp 2222 to vm2:22\n");
    tree.startDomain("vm2", "52:54:00:6c:3c:02");
    const r = await hook(tree, "qemu vm2 start begin -", domainXml("vm2", "52:54:00:6c:3c:02", "start"));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    const refusal = r.stderr.slice(r.stderr.indexOf("virt-hooks: refusing to start vm2"));
    expect(refusal).toContain('domain "vm2" has no fixed address on network "default" (no DHCP host entry for MAC 52:54:00:6c:3c:02)');
    const hint = /virsh net-update .* --live --config/.exec(refusal)?.[0] ?? "";
    // What the admin's shell makes of it: exactly virsh's arguments, with a free address
    // (not the gateway .1, not vm1's .10, outside the DHCP range .100-.254).
    expect(shellWords(hint)).toEqual(["virsh", "net-update", "default", "add", "ip-dhcp-host", "<host mac='52:54:00:6c:3c:02' name='vm2' ip='192.168.122.2'/>", "--live", "--config"]);
  });

  // The readable form virsh's documentation uses: the XML in double quotes.
  it("the net-update hint is the readable one: ip-dhcp-host \"<host mac='…' name='…' ip='…'/>\"", async () => {
    tree = vm1Tree("set on-error block\nforward tcp 2222 to vm2:22\n");
    tree.startDomain("vm2", "52:54:00:6c:3c:02");
    const r = await hook(tree, "qemu vm2 start begin -", domainXml("vm2", "52:54:00:6c:3c:02", "start"));
    expect(r.stderr).toContain(`virsh net-update default add ip-dhcp-host "<host mac='52:54:00:6c:3c:02' name='vm2' ip='192.168.122.2'/>" --live --config`);
  });
});

describe("binary: what libvirt may send that we do not expect", () => {
  let tree: HostTree;
  beforeAll(() => (tree = vm1Tree()));
  afterAll(() => tree.dispose());

  const cases: [name: string, line: string, xml: string][] = [
    ["garbage XML", "qemu vm1 start begin -", "this is <not xml"],
    ["XML of the wrong kind", "qemu vm1 start begin -", "<hookData><network><name>x</name></network></hookData>"],
    ["empty stdin", "qemu vm1 start begin -", ""],
    ["garbage on a network event", "network default started begin -", "\u0000\u0001garbage"],
    ["empty stdin on a port event", "network default port-created begin -", ""],
    ["migrate (a filter: stdout would replace the domain XML)", "qemu vm1 migrate begin -", fixture("05-qemu-start-begin.xml")],
    ["restore (a filter too)", "qemu vm1 restore begin -", fixture("05-qemu-start-begin.xml")],
    ["an op we never heard of", "qemu vm1 frobnicate begin -", fixture("05-qemu-start-begin.xml")],
    ["a driver event we do not manage with an unknown object", "network nosuchnet started begin -", fixture("02-network-started-begin.xml")],
  ];
  for (const [name, line, xml] of cases) {
    it(`${name}: exit 0, stdout empty`, async () => {
      const r = await hook(tree, line, xml);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("");
    });
  }

  for (const args of [[], ["vm1"], ["vm1", "start", "begin", "-", "extra", "more"]]) {
    it(`${args.length} arguments: exit 0, stdout empty, a warning`, async () => {
      const r = await run(isolated([join(tree.hooksDir, "qemu"), ...args]), { env: tree.env(), input: fixture("05-qemu-start-begin.xml") });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("");
      expect(logLines(r.stderr).length).toBeGreaterThanOrEqual(1);
    });
  }

  it("a large stdin (more than a pipe buffer) is drained: libvirt never blocks writing it", async () => {
    const r = await hook(tree, "qemu vm1 migrate begin -", fixture("05-qemu-start-begin.xml") + `<!-- ${"x".repeat(4 * 1024 * 1024)} -->`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
  });

  it("the CLI's hook command behaves as the symlink does", async () => {
    const r = await run(isolated(tree.cliArgv("hook", "qemu", "vm1", "stopped", "end", "-")), { env: tree.env(), input: fixture("17-qemu-stopped-end.xml") });
    expectQuietSuccess(r, "qemu vm1 stopped end");
  });
});

/** Spawns argv with piped stdio and resolves once the process exited AND both pipes reached EOF. */
function exitAndEof(argv: string[], env: NodeJS.ProcessEnv, input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let code: number | null | undefined;
    let open = 2;
    const finish = () => {
      if (code !== undefined && open === 0) {
        clearTimeout(guard);
        resolve({ code, stdout, stderr });
      }
    };
    // Not a timing assertion: a hang detector with a clear message, far above any normal run.
    const guard = setTimeout(() => reject(new Error(`pipes still open 20 s after start (exit code ${code}): a child holds libvirt's stdout/stderr`)), 20_000);
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c)).once("end", () => (open--, finish()));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c)).once("end", () => (open--, finish()));
    child.once("exit", (c) => ((code = c), finish()));
    child.once("error", reject);
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
}

describe("binary: libvirt's pipes", () => {
  let tree: HostTree;
  afterEach(() => tree.dispose());

  it("stdout and stderr reach EOF when a reconciling hook exits (no child keeps them)", async () => {
    tree = vm1Tree();
    const r = await exitAndEof(isolated(tree.hookArgv("qemu vm1 start begin -")), tree.env(), fixture("05-qemu-start-begin.xml"));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
  });

  it("the firewall tools never get the hook's stdout/stderr (a child of theirs could not hold libvirt's pipes)", async () => {
    tree = vm1Tree();
    // Records the hook's (its parent's) fds 1 and 2, then its own, next to itself.
    const fake = tree.fakeTools({
      "iptables-save": 'for f in /proc/$PPID/fd/1 /proc/$PPID/fd/2 /proc/self/fd/1 /proc/self/fd/2; do readlink "$f"; done >"$(dirname "$0")/fds"\nexec /usr/sbin/iptables-save "$@"',
    });
    const r = await exitAndEof(isolated(tree.hookArgv("qemu vm1 start begin -")), tree.env(fake), fixture("05-qemu-start-begin.xml"));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    const [hookOut, hookErr, toolOut, toolErr] = readFileSync(join(fake, "fds"), "utf8").trim().split("\n");
    expect(hookOut).toMatch(/^(pipe|socket):/);
    expect([toolOut, toolErr]).not.toContain(hookOut);
    expect([toolOut, toolErr]).not.toContain(hookErr);
  });

  /** A stand-in for journald's stream socket under the tree; what each connection sent. */
  async function journal(t: HostTree): Promise<{ received: string[]; server: Server }> {
    const received: string[] = [];
    const server: Server = await new Promise((resolve) => {
      const s = createServer((c) => {
        let text = "";
        c.setEncoding("utf8").on("data", (d: string) => (text += d)).on("end", () => received.push(text));
      });
      mkdirSync(join(t.root, "run/systemd/journal"), { recursive: true });
      s.listen(join(t.root, "run/systemd/journal/stdout"), () => resolve(s));
    });
    return { received, server };
  }

  it("with a journal socket, the log line goes there (systemd's stream protocol), not to stderr", async () => {
    tree = vm1Tree();
    const { received, server } = await journal(tree);
    try {
      const r = await exitAndEof(isolated(tree.hookArgv("qemu vm1 stopped end -")), tree.env(), fixture("17-qemu-stopped-end.xml"));
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe("");
      await new Promise((res) => setTimeout(res, 50));
      expect(received).toHaveLength(1);
      const [identifier, unit, priority, levelPrefix, , , , ...rest] = (received[0] as string).split("\n");
      expect([identifier, unit, levelPrefix]).toEqual(["virt-hooks", "", "1"]);
      expect(priority).toMatch(/^[3-6]$/);
      expect(rest.filter(Boolean)).toEqual([expect.stringMatching(/^<\d>qemu vm1 stopped end: .*; \d+ ms$/)]);
    } finally {
      await new Promise((res) => server.close(res));
    }
  });

  // The CLI's code runs from the deferred bundle (.ci/build.mjs), where the journal
  // sink's import("node:net") must resolve as in the main script.
  it("with a journal socket, virt-hooks apply logs there too", async () => {
    tree = vm1Tree();
    const { received, server } = await journal(tree);
    try {
      const r = await run(isolated([join(tree.binDir, "virt-hooks"), "apply"]), { env: tree.env() });
      expect(r.stderr).not.toMatch(/internal error/);
      // Node prints its warnings (ExperimentalWarning, ...) on stderr: none may reach an admin or the journal.
      expect(r.stderr).not.toMatch(/Warning|--trace-warnings/);
      expect(r.code, r.stderr).toBe(isRoot ? 0 : 3);
      await new Promise((res) => setTimeout(res, 50));
      expect(received.join("")).toMatch(/<\d>apply: /);
    } finally {
      await new Promise((res) => server.close(res));
    }
  });
});

/** POSIX shell word splitting for the hints admins paste: '…', "…" (with \" \\ \$ \`), backslash. */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === " " || c === "\t") {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in ${text}`);
      word = (word ?? "") + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word ??= "";
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\" && '"\\$`'.includes(text[i + 1] ?? "")) i++;
        word += text[i];
      }
      if (i >= text.length) throw new Error(`unterminated " in ${text}`);
    } else if (c === "\\") {
      word = (word ?? "") + (text[++i] ?? "");
    } else word = (word ?? "") + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}
