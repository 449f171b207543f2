// Binary tier, installer: ./install.sh staged with DESTDIR into a scratch
// directory, never onto this machine's /etc, /usr or systemd. A fake
// `systemctl` first on PATH records any call: staging must never make one.
// Checks what lands where with which mode, that an admin's own hooks are kept
// (and restored), that a second run changes nothing, that --uninstall leaves
// the tree as it was, and that what was installed works: manual pages render,
// the completion completes, the units pass `systemd-analyze verify`.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BINARY, REPO, requireBinary, SYSTEM_PATH } from "../helpers/binary.js";

const UNITS = ["virt-hooks-apply.service", "virt-hooks-apply.timer", "virt-hooks-reapply.service", "virt-hooks-watch.service"];
const DROPIN = "virt-hooks-.service.d/sandbox.conf";
const EXAMPLES = readdirSync(join(REPO, "rules.d")).filter((f) => f.endsWith(".rules"));
const MANPAGES = ["man8/virt-hooks.8", "man5/virt-hooks.rules.5"];
// Cockpit's page (test/binary/install-cockpit.test.ts checks its manifest).
const COCKPIT = ["index.css", "index.html", "index.js", "manifest.json"].map((f) => `share/cockpit/virt-hooks/${f}`);

const scratch: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(d);
  return d;
}

/** A directory whose `systemctl` only records its arguments, first on PATH. */
const fakeBin = (() => {
  let dir: string | undefined;
  return () => {
    if (dir) return dir;
    dir = tempDir("vh-fakebin-");
    writeFileSync(join(dir, "systemctl"), `#!/bin/sh\necho "$*" >>"${dir}/systemctl.calls"\n`, { mode: 0o755 });
    return dir;
  };
})();
const systemctlCalls = () => (existsSync(join(fakeBin(), "systemctl.calls")) ? readFileSync(join(fakeBin(), "systemctl.calls"), "utf8") : "");

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** ./install.sh --no-build ARGS with DESTDIR (argv only, no shell). */
function installSh(destdir: string, ...args: string[]): Result {
  const r = spawnSync("bash", [join(REPO, "install.sh"), "--no-build", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: `${fakeBin()}:${SYSTEM_PATH}`, LC_ALL: "C", DESTDIR: destdir },
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Result): Result {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

interface Entry {
  readonly type: "file" | "dir" | "link";
  readonly mode: string;
  readonly content?: string; // sha256 of a file, target of a link
}

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const modeOf = (p: string) => (lstatSync(p).mode & 0o7777).toString(8).padStart(4, "0");

/** Every path below root with its type, mode and content hash. */
function snapshot(root: string): Record<string, Entry> {
  const out: Record<string, Entry> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const rel = p.slice(root.length + 1);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[rel] = { type: "link", mode: "", content: readlinkSync(p) };
      else if (st.isDirectory()) {
        out[rel] = { type: "dir", mode: modeOf(p) };
        walk(p);
      } else out[rel] = { type: "file", mode: modeOf(p), content: sha(readFileSync(p)) };
    }
  };
  walk(root);
  return out;
}

const files = (s: Record<string, Entry>) => Object.keys(s).filter((k) => s[k]!.type !== "dir").sort();

function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1"', "sh", cmd]).status === 0;
}

beforeAll(() => {
  requireBinary();
});
afterAll(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("install.sh with DESTDIR", () => {
  let dest: string;
  let first: Record<string, Entry>;
  const binSha = () => sha(readFileSync(BINARY));

  beforeAll(() => {
    dest = tempDir("vh-dest-");
    const r = ok(installSh(dest));
    expect(r.stdout).not.toMatch(/reloaded|enabled/);
    first = snapshot(dest);
  });

  it("installs exactly the expected files, with their modes", () => {
    const expected = [
      "etc/libvirt/hooks/network",
      "etc/libvirt/hooks/network.d/README.virt-hooks",
      "etc/libvirt/hooks/qemu",
      "etc/libvirt/hooks/qemu.d/README.virt-hooks",
      ...EXAMPLES.map((e) => `etc/libvirt/hooks/rules.d/${e}.example`),
      ...UNITS.map((u) => `usr/local/lib/systemd/system/${u}`),
      `usr/local/lib/systemd/system/${DROPIN}`,
      "usr/local/sbin/virt-hooks",
      "usr/local/share/bash-completion/completions/virt-hooks",
      ...MANPAGES.map((m) => `usr/local/share/man/${m}.gz`),
      ...COCKPIT.map((f) => `usr/local/${f}`),
    ].sort();
    expect(files(first)).toEqual(expected);

    expect(first["usr/local/sbin/virt-hooks"]).toEqual({ type: "file", mode: "0755", content: binSha() });
    for (const d of ["qemu", "network"]) {
      expect(first[`etc/libvirt/hooks/${d}`]).toEqual({ type: "link", mode: "", content: "/usr/local/sbin/virt-hooks" });
      // The inert note from the repo's hooks/ tree: laid in as it is, never executable.
      expect(first[`etc/libvirt/hooks/${d}.d/README.virt-hooks`]).toEqual({ type: "file", mode: "0644", content: sha(readFileSync(join(REPO, "hooks", `${d}.d`, "README.virt-hooks"))) });
    }
    for (const e of EXAMPLES) {
      expect(first[`etc/libvirt/hooks/rules.d/${e}.example`]).toEqual({ type: "file", mode: "0644", content: sha(readFileSync(join(REPO, "rules.d", e))) });
    }
    for (const f of expected.filter((f) => f.includes("/systemd/") || f.includes("/share/"))) {
      expect(first[f]?.mode, f).toBe("0644");
    }
    for (const [path, e] of Object.entries(first)) if (e.type === "dir") expect(e.mode, path).toBe("0755");
    expect(readFileSync(join(dest, "usr/local/share/bash-completion/completions/virt-hooks"), "utf8")).toBe(
      readFileSync(join(REPO, "completion/virt-hooks.bash"), "utf8"),
    );
    for (const m of MANPAGES) {
      const page = gunzipSync(readFileSync(join(dest, "usr/local/share/man", `${m}.gz`))).toString("utf8");
      expect(page).toBe(readFileSync(join(REPO, "docs/man", m.split("/")[1]!), "utf8"));
    }
  });

  it("points the units at the installed binary, and never runs systemctl while staging", () => {
    const unitDir = join(dest, "usr/local/lib/systemd/system");
    const apply = readFileSync(join(unitDir, "virt-hooks-apply.service"), "utf8");
    expect(apply).toMatch(/^ExecStart=\/usr\/local\/sbin\/virt-hooks apply$/m);
    expect(apply).toMatch(/^Type=oneshot$/m);
    expect(apply).not.toMatch(/^(Wants|Requires|BindsTo)=/m);
    expect(apply).toMatch(/^After=.*firewalld\.service/m);
    const reapply = readFileSync(join(unitDir, "virt-hooks-reapply.service"), "utf8");
    expect(reapply).toMatch(/^ReloadPropagatedFrom=firewalld\.service libvirtd\.service/m);
    expect(reapply).toMatch(/^ExecReload=-\/usr\/local\/sbin\/virt-hooks apply$/m);
    expect(readFileSync(join(unitDir, "virt-hooks-apply.timer"), "utf8")).toMatch(/^OnUnitActiveSec=60s$/m);
    expect(readFileSync(join(unitDir, DROPIN), "utf8")).toMatch(/^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW$/m);
    expect(systemctlCalls()).toBe("");
  });

  it("is idempotent: a second run leaves the same tree", () => {
    ok(installSh(dest));
    expect(snapshot(dest)).toEqual(first);
  });

  it("--uninstall removes everything it added, and only that", () => {
    const d = tempDir("vh-uninst-");
    // Someone else's files in the same directories must survive.
    mkdirSync(join(d, "usr/local/sbin"), { recursive: true });
    writeFileSync(join(d, "usr/local/sbin/other-tool"), "#!/bin/sh\n", { mode: 0o755 });
    mkdirSync(join(d, "usr/local/share/man/man8"), { recursive: true });
    writeFileSync(join(d, "usr/local/share/man/man8/other.8"), ".TH OTHER 8\n");
    const before = snapshot(d);
    ok(installSh(d));
    ok(installSh(d, "--uninstall"));
    expect(snapshot(d)).toEqual(before);
    // And a second uninstall is a no-op, not an error.
    ok(installSh(d, "--uninstall"));
    expect(snapshot(d)).toEqual(before);
    expect(systemctlCalls()).toBe("");
  });

  it("--prefix and --unit-dir move the binary, units, pages and completion, and the units follow", () => {
    const d = tempDir("vh-prefix-");
    ok(installSh(d, "--prefix", "/usr"));
    const s = snapshot(d);
    expect(files(s).filter((f) => f.startsWith("usr/"))).toEqual(
      [
        ...UNITS.map((u) => `usr/lib/systemd/system/${u}`),
        `usr/lib/systemd/system/${DROPIN}`,
        "usr/sbin/virt-hooks",
        "usr/share/bash-completion/completions/virt-hooks",
        ...MANPAGES.map((m) => `usr/share/man/${m}.gz`),
        ...COCKPIT.map((f) => `usr/${f}`),
      ].sort(),
    );
    expect(readFileSync(join(d, "usr/lib/systemd/system/virt-hooks-apply.service"), "utf8")).toMatch(/^ExecStart=\/usr\/sbin\/virt-hooks apply$/m);
    expect(readlinkSync(join(d, "etc/libvirt/hooks/qemu"))).toBe("/usr/sbin/virt-hooks");
    ok(installSh(d, "--prefix", "/usr", "--uninstall"));
    expect(snapshot(d)).toEqual({});

    const e = tempDir("vh-unitdir-");
    ok(installSh(e, "--unit-dir", "/etc/systemd/system"));
    for (const u of UNITS) expect(existsSync(join(e, "etc/systemd/system", u)), u).toBe(true);
    ok(installSh(e, "--unit-dir", "/etc/systemd/system", "--uninstall"));
    expect(snapshot(e)).toEqual({});
  });
});

describe("install.sh keeps an administrator's own hooks and rules", () => {
  it("moves them to DRIVER.d/00-previous-hook, keeps rule files, and puts the hooks back on --uninstall", () => {
    const d = tempDir("vh-admin-");
    const hooks = join(d, "etc/libvirt/hooks");
    mkdirSync(join(hooks, "rules.d"), { recursive: true });
    const script = "#!/bin/sh\n# the admin's own qemu hook\nexit 0\n";
    writeFileSync(join(hooks, "qemu"), script);
    chmodSync(join(hooks, "qemu"), 0o750);
    symlinkSync("/opt/site/network-hook", join(hooks, "network")); // dangling is fine: still not ours
    const mine = "forward tcp 2222 to vm1:22\n";
    writeFileSync(join(hooks, "rules.d/50-mine.rules"), mine, { mode: 0o644 });

    const r = ok(installSh(d));
    expect(r.stdout).toContain("qemu.d/00-previous-hook");
    expect(readlinkSync(join(hooks, "qemu"))).toBe("/usr/local/sbin/virt-hooks");
    expect(readlinkSync(join(hooks, "network"))).toBe("/usr/local/sbin/virt-hooks");
    expect(readFileSync(join(hooks, "qemu.d/00-previous-hook"), "utf8")).toBe(script);
    expect(modeOf(join(hooks, "qemu.d/00-previous-hook"))).toBe("0750");
    expect(readlinkSync(join(hooks, "network.d/00-previous-hook"))).toBe("/opt/site/network-hook");
    expect(readFileSync(join(hooks, "rules.d/50-mine.rules"), "utf8")).toBe(mine);

    // Second run: ours is recognised, the admin's hook is not moved again.
    const installed = snapshot(d);
    ok(installSh(d));
    expect(snapshot(d)).toEqual(installed);

    const u = ok(installSh(d, "--uninstall"));
    expect(u.stdout).toContain("kept /etc/libvirt/hooks/rules.d");
    expect(readFileSync(join(hooks, "qemu"), "utf8")).toBe(script);
    expect(modeOf(join(hooks, "qemu"))).toBe("0750");
    expect(readlinkSync(join(hooks, "network"))).toBe("/opt/site/network-hook");
    expect(existsSync(join(hooks, "qemu.d"))).toBe(false);
    expect(existsSync(join(hooks, "network.d"))).toBe(false);
    expect(files(snapshot(d))).toEqual(["etc/libvirt/hooks/network", "etc/libvirt/hooks/qemu", "etc/libvirt/hooks/rules.d/50-mine.rules"]);
    expect(systemctlCalls()).toBe("");
  });

  it("refuses, changing nothing, when both the hook and DRIVER.d/00-previous-hook exist", () => {
    const d = tempDir("vh-clash-");
    const hooks = join(d, "etc/libvirt/hooks");
    mkdirSync(join(hooks, "qemu.d"), { recursive: true });
    writeFileSync(join(hooks, "qemu"), "#!/bin/sh\n", { mode: 0o755 });
    writeFileSync(join(hooks, "qemu.d/00-previous-hook"), "#!/bin/sh\n", { mode: 0o755 });
    const r = installSh(d);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("move one of them aside");
    expect(readFileSync(join(hooks, "qemu"), "utf8")).toBe("#!/bin/sh\n");
  });
});

describe("what install.sh ships works", () => {
  const pages = ["virt-hooks.8", "virt-hooks.rules.5"];

  it.runIf(have("groff"))("the manual pages format without a groff warning", () => {
    for (const p of pages) {
      const r = spawnSync("groff", ["-man", "-ww", "-z", join(REPO, "docs/man", p)], { encoding: "utf8" });
      expect(r.status, p).toBe(0);
      expect(r.stderr, p).toBe("");
    }
  });

  it.runIf(have("man"))("the installed, gzipped manual pages render with man --warnings", () => {
    const d = tempDir("vh-man-");
    ok(installSh(d));
    for (const m of MANPAGES) {
      const r = spawnSync("man", ["--warnings", "-l", join(d, "usr/local/share/man", `${m}.gz`)], {
        env: { PATH: SYSTEM_PATH, LC_ALL: "C.UTF-8", MANWIDTH: "80", MANPAGER: "cat", PAGER: "cat" },
        encoding: "utf8",
      });
      expect(r.status, `${m}: ${r.stderr}`).toBe(0);
      expect(r.stderr, m).toBe("");
      expect(r.stdout).toMatch(/^NAME$/m);
      expect(r.stdout).toMatch(/^SEE ALSO$/m);
    }
  });

  it("the rule examples of virt-hooks.rules(5) are valid rules", () => {
    const page = readFileSync(join(REPO, "docs/man/virt-hooks.rules.5"), "utf8");
    const examples = page.slice(page.indexOf(".SH EXAMPLES"));
    const block = examples.slice(examples.indexOf(".EX\n") + 4, examples.indexOf(".EE\n"));
    const rules = block.replaceAll("\\-", "-");
    expect(rules).toContain("forward tcp");
    const dir = tempDir("vh-rules-");
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "10-examples.rules"), rules, { mode: 0o644 });
    const r = spawnSync(BINARY, ["check", "--rules-dir", dir], { env: { PATH: SYSTEM_PATH, LC_ALL: "C" }, encoding: "utf8" });
    expect(r.status, `${r.stdout}${r.stderr}`).not.toBe(1);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/\berror:/);
  });

  it("the bash completion parses and completes commands, options, domains and networks", () => {
    const file = join(REPO, "completion/virt-hooks.bash");
    // stdin not a socket (Node's pipes are): bash would take itself for an
    // ssh session and read ~/.bashrc.
    expect(spawnSync("bash", ["-n", file], { stdio: ["ignore", "pipe", "pipe"] }).status).toBe(0);

    const qemu = tempDir("vh-qemu-");
    mkdirSync(join(qemu, "networks"));
    writeFileSync(join(qemu, "a.xml"), "<domain type='kvm'>\n  <name>my vm</name>\n</domain>\n");
    writeFileSync(join(qemu, "b.xml"), "<domain type='kvm'>\n  <name>web&amp;co</name>\n</domain>\n");
    writeFileSync(join(qemu, "networks/default.xml"), "<network>\n  <name>default</name>\n</network>\n");
    writeFileSync(join(qemu, "networks/route.xml"), "<network>\n  <name>route</name>\n</network>\n");

    // Each case: the words typed so far (the last is being completed) -> COMPREPLY.
    const complete = (...words: string[]) => {
      const script = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _virt_hooks; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = spawnSync("bash", ["-c", script, "bash", file, ...words], {
        env: { PATH: SYSTEM_PATH, VIRT_HOOKS_QEMU_DIR: qemu },
        stdio: ["ignore", "pipe", "pipe"],
        encoding: "utf8",
      });
      expect(r.stderr).toBe("");
      return r.stdout.split("\n").filter(Boolean);
    };
    expect(complete("virt-hooks", "")).toEqual(["check", "plan", "apply", "status", "explain", "host", "flush", "watch", "version", "help"]);
    expect(complete("virt-hooks", "st")).toEqual(["status"]);
    expect(complete("virt-hooks", "plan", "--")).toEqual(["--rules-dir", "--event", "--json", "--verbose", "--help"]);
    expect(complete("virt-hooks", "explain", "")).toEqual(["my\\ vm", "web\\&co"]);
    expect(complete("virt-hooks", "--rules-dir", "/tmp", "explain", "w")).toEqual(["web\\&co"]);
    expect(complete("virt-hooks", "host", "")).toEqual(["add", "del"]);
    expect(complete("virt-hooks", "host", "add", "")).toEqual(["default", "route"]);
    expect(complete("virt-hooks", "host", "del", "r")).toEqual(["route"]);
    expect(complete("virt-hooks", "--rules-dir", dirname(qemu) + "/vh-qemu")).toContain(qemu);
  });

  it.runIf(have("systemd-analyze"))("the installed units pass systemd-analyze verify", () => {
    const d = tempDir("vh-units-");
    ok(installSh(d));
    // verify checks that ExecStart= exists and that Documentation= man pages
    // open: point both at the staged copies.
    const unitDir = join(d, "usr/local/lib/systemd/system");
    for (const u of UNITS.filter((u) => u.endsWith(".service"))) {
      const p = join(unitDir, u);
      writeFileSync(p, readFileSync(p, "utf8").replaceAll("/usr/local/sbin/virt-hooks", join(d, "usr/local/sbin/virt-hooks")));
    }
    const r = spawnSync("systemd-analyze", ["verify", ...UNITS.map((u) => join(unitDir, u))], {
      env: { PATH: SYSTEM_PATH, LC_ALL: "C", MANPATH: join(d, "usr/local/share/man") },
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
  });
});
