// Hostile tier, installers (issue 25, item 8): install.sh, the .deb and the .rpm
// meet every other virt-hooks a host can hold (the package, another prefix, a
// copy, symlinks absolute and relative, an old release's leftover) and the
// administrator's own hooks, with the real tools in scratch roots: DESTDIR for
// install.sh, `dpkg --root` and `rpm --root` (maintainer scripts chrooted
// there) inside `unshare -n`. Never this machine's /etc/libvirt.
//
// A virt-hooks moved to DRIVER.d/00-previous-hook ran as the CLI there and
// exited 2 on every event: libvirt refused every guest start, and killed
// running guests on its next restart (reconnect). So each test checks where
// every hook ends up, that a hook moved aside runs and exits 0 where libvirt
// runs it (chroot into the root, libvirt's four arguments, XML on stdin), and
// that each uninstall leaves exactly the tree that was there before.
//
// VH_INSTALL_TREE=DIR runs the same tests against another tree's install.sh,
// install.sh, .ci/ and dist/virt-hooks (e.g. `git archive main` with main's
// executable) to show which of them fail there.
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  copyFileSync,
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
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, SYSTEM_PATH } from "../helpers/binary.js";

const TREE = process.env.VH_INSTALL_TREE ?? REPO;
const EXE = join(TREE, "dist", "virt-hooks");
const NOBODY = 65534;
const version = JSON.parse(readFileSync(join(TREE, "package.json"), "utf8")).version as string;
const HOOKS = "etc/libvirt/hooks";
const XML = "<domain type='kvm'><name>vm1</name></domain>\n";

const scratch: string[] = [];
const temp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(d);
  return d;
};
afterAll(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}
function run(cmd: string, args: readonly string[], o: SpawnSyncOptions = {}): Result {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, env: { PATH: SYSTEM_PATH, LC_ALL: "C" }, ...o });
  return { code: r.status, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}
const ok = (r: Result) => {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
};
const lines = (s: string) => s.trim().split("\n").filter(Boolean);

/** TREE's install.sh (--no-build) into DESTDIR=root; a private network namespace. */
const installSh = (root: string, ...args: string[]) =>
  run("unshare", ["-n", "bash", join(TREE, "install.sh"), "--no-build", ...args], { env: { PATH: SYSTEM_PATH, LC_ALL: "C", DESTDIR: root }, timeout: 60_000 });
const dpkg = (root: string, ...args: string[]) => run("unshare", ["-n", "dpkg", `--root=${root}`, "--force-depends", ...args], { timeout: 120_000 });
const rpm = (root: string, ...args: string[]) => run("unshare", ["-n", "rpm", "--root", root, "--force-debian", "--nodeps", ...args], { timeout: 120_000 });

/** Every path below root: type, mode, owner, and content hash or link target. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      const head = `${(st.mode & 0o7777).toString(8)} ${st.uid}`;
      if (st.isSymbolicLink()) out[p.slice(root.length)] = `link ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[p.slice(root.length)] = `dir ${head}`;
        walk(p);
      } else out[p.slice(root.length)] = `file ${head} ${st.isFile() ? createHash("sha256").update(readFileSync(p)).digest("hex") : "special"}`;
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}
/** The part of a root an installer may touch: libvirt's hooks and where the executables live. */
// (Not the system's own directories: dpkg removes an empty /usr/sbin it shipped into, which a real system never has.)
const installed = (root: string) =>
  Object.fromEntries(Object.entries(snapshot(root)).filter(([p]) => /^\/(etc\/libvirt|usr\/(local\/)?sbin|opt|home)(\/|$)/.test(p) && !/^\/usr(\/local)?\/sbin$/.test(p)));

/**
 * A root the maintainer scripts can run in (dpkg and rpm chroot into it): a
 * shell and the tools they use, each with its libraries, the executable's
 * libraries (to run a hook there as libvirt would), dpkg's database, and a
 * deb-systemd-helper that does nothing (no systemd in there).
 */
function scratchRoot(): string {
  const root = temp("vh-root-");
  const copy = (from: string, to: string) => {
    mkdirSync(dirname(to), { recursive: true });
    if (!existsSync(to)) copyFileSync(from, to);
  };
  const libsOf = (f: string) => lines(run("sh", ["-c", 'ldd "$1" | grep -o "/[^ ]*"', "sh", f]).stdout);
  for (const b of ["sh", "bash", "mkdir", "mv", "readlink", "rmdir", "rm", "cat", "id", "stat", "head", "tr", "grep", "dirname", "env"]) {
    const path = run("sh", ["-c", 'readlink -f "$(command -v "$1")"', "sh", b]).stdout.trim();
    copy(path, join(root, "bin", b));
    for (const l of libsOf(path)) copy(l, join(root, l));
  }
  for (const l of libsOf(EXE)) copy(l, join(root, l));
  mkdirSync(join(root, "dev"));
  ok(run("mknod", ["-m", "666", join(root, "dev", "null"), "c", "1", "3"]));
  for (const d of ["var/lib/dpkg/info", "var/lib/dpkg/updates", "tmp", "usr/bin", "usr/sbin", HOOKS]) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, "var/lib/dpkg/status"), "");
  writeFileSync(join(root, "var/lib/dpkg/available"), "");
  writeFileSync(join(root, "usr/bin/deb-systemd-helper"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  return root;
}

/** Runs root/PATH as libvirt runs a hook, chrooted into root: four arguments, the XML on stdin. */
const asLibvirt = (root: string, path: string, args = ["vm1", "prepare", "begin", "-"]) =>
  run("chroot", [root, path, ...args], { input: XML, env: { PATH: SYSTEM_PATH, LC_ALL: "C" }, timeout: 30_000 });

/** The administrator's own hooks: a qemu script, and a network hook that is a symlink to their own script. */
function adminHooks(root: string): void {
  mkdirSync(join(root, HOOKS), { recursive: true });
  writeFileSync(join(root, HOOKS, "qemu"), '#!/bin/sh\necho "admin qemu $*" >>/tmp/admin.log\nexit 0\n', { mode: 0o750 });
  chmodSync(join(root, HOOKS, "qemu"), 0o750);
  mkdirSync(join(root, "opt/site"), { recursive: true });
  writeFileSync(join(root, "opt/site/net-hook"), '#!/bin/sh\necho "admin network $*" >>/tmp/admin.log\nexit 0\n', { mode: 0o755 });
  symlinkSync("/opt/site/net-hook", join(root, HOOKS, "network"));
}

/** Both admin hooks, moved aside, run where libvirt runs DRIVER.d/* and do their work. */
function adminHooksWorkAside(root: string): void {
  expect(readFileSync(join(root, HOOKS, "qemu.d/00-previous-hook"), "utf8")).toContain("admin qemu");
  expect(readlinkSync(join(root, HOOKS, "network.d/00-previous-hook"))).toBe("/opt/site/net-hook");
  rmSync(join(root, "tmp/admin.log"), { force: true });
  ok(asLibvirt(root, `/${HOOKS}/qemu.d/00-previous-hook`));
  ok(asLibvirt(root, `/${HOOKS}/network.d/00-previous-hook`, ["default", "started", "begin", "-"]));
  expect(readFileSync(join(root, "tmp/admin.log"), "utf8")).toBe("admin qemu vm1 prepare begin -\nadmin network default started begin -\n");
}

/** No virt-hooks anywhere as a previous hook, and each main hook is the expected link. */
function hooksAre(root: string, target: string): void {
  for (const d of ["qemu", "network"]) {
    expect(readlinkSync(join(root, HOOKS, d)), d).toBe(target);
    expect(existsSync(join(root, HOOKS, `${d}.d/00-previous-hook`)) || lstatExists(join(root, HOOKS, `${d}.d/00-previous-hook`)), `${d}.d/00-previous-hook`).toBe(false);
  }
}
const lstatExists = (p: string) => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

let deb: string;
let rpmFile: string;
let tarTop: string;

beforeAll(() => {
  if (!existsSync(EXE)) throw new Error(`${EXE} is missing: run npm run build first`);
  // Debian's rpm (rpmbuild, rpm --root): installed here when missing, as package.test.ts does.
  if (run("sh", ["-c", "command -v rpmbuild"]).code !== 0) {
    const r = run("sh", ["-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rpm >/dev/null"], { env: process.env });
    if (r.code !== 0) throw new Error(`apt-get install rpm: ${r.stderr}`);
  }
  for (const t of ["dpkg", "rpm", "rpmbuild", "chroot", "unshare"]) {
    if (run("sh", ["-c", 'command -v "$1"', "sh", t]).code !== 0) throw new Error(`${t} is missing (apt-get install dpkg rpm coreutils util-linux)`);
  }
  // The packages and the tarball, built from TREE as `npm run package` does.
  const out = temp("vh-pkgs-");
  const b = run("bash", [join(TREE, ".ci", "package.sh"), "--no-build", "--out", out, "deb", "rpm", "tar"], { env: process.env, timeout: 400_000 });
  expect(b.code, b.stderr).toBe(0);
  deb = join(out, `virt-hooks_${version}-1_amd64.deb`);
  rpmFile = join(out, `virt-hooks-${version}-1.x86_64.rpm`);
  const x = temp("vh-tar-");
  ok(run("tar", ["-xzf", join(out, `virt-hooks-${version}-linux-x64.tar.gz`), "-C", x]));
  tarTop = join(x, `virt-hooks-${version}-linux-x64`);
}, 420_000);

describe("the executable moved aside to DRIVER.d/ is still a working hook", () => {
  it("carries the fingerprint the installers read (install.sh's VH_MARK), in its JavaScript", () => {
    const mark = /^VH_MARK='([^']+)'$/m.exec(readFileSync(join(TREE, "install.sh"), "utf8"))?.[1];
    expect(mark).toBe("virt-hooks: internal error: ");
    const exe = readFileSync(EXE);
    expect(exe.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(exe.indexOf(mark!)).toBeGreaterThan(0);
  });

  it("run from qemu.d/ or network.d/ with libvirt's four arguments: exit 0 and one warning line, never the CLI's exit 2", () => {
    const d = temp("vh-aside-");
    for (const driver of ["qemu", "network"]) {
      mkdirSync(join(d, `${driver}.d`));
      symlinkSync(EXE, join(d, `${driver}.d`, "00-previous-hook"));
      copyFileSync(EXE, join(d, `${driver}.d`, "10-copy"));
      chmodSync(join(d, `${driver}.d`, "10-copy"), 0o755);
      for (const name of ["00-previous-hook", "10-copy"]) {
        const args = driver === "qemu" ? ["vm1", "start", "begin", "-"] : ["default", "port-created", "begin", "-"];
        const r = run(join(d, `${driver}.d`, name), args, { input: XML, timeout: 30_000 });
        expect(r.code, `${driver}.d/${name}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toBe("");
        expect(lines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^virt-hooks: warning: ${driver} hook run as ${driver}\\.d/${name}, a leftover copy of this hook: did nothing`))]);
      }
    }
    // Anything but a hook's four arguments is still the CLI.
    const v = run(join(d, "qemu.d", "00-previous-hook"), ["--version"]);
    expect(v).toMatchObject({ code: 0, stdout: `virt-hooks ${version}\n` });
  });
});

describe("install.sh never demotes another virt-hooks", () => {
  it("over the .deb (dpkg --root): refused before anything is written, with either prefix; the packaged hooks stay", () => {
    const root = scratchRoot();
    ok(dpkg(root, "-i", deb));
    hooksAre(root, "/usr/sbin/virt-hooks");
    const before = installed(root);
    for (const args of [[], ["--prefix", "/usr"]]) {
      const r = installSh(root, ...args);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toContain("virt-hooks is installed by the package virt-hooks (dpkg");
      expect(installed(root)).toEqual(before);
    }
    // The packaged hook, run as libvirt runs it: an event no rule concerns.
    ok(asLibvirt(root, `/${HOOKS}/qemu`));
    ok(dpkg(root, "-P", "virt-hooks"));
    // (dpkg removes the then empty hooks directory too: on a real host libvirt's package owns it.)
    expect(existsSync(join(root, HOOKS)) ? readdirSync(join(root, HOOKS)) : []).toEqual([]);
  });

  it("over the .rpm (rpm --root): refused before anything is written; the packaged hooks stay", () => {
    const root = scratchRoot();
    ok(rpm(root, "-i", rpmFile));
    const before = installed(root);
    const r = installSh(root);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toContain("virt-hooks is installed by the package virt-hooks (rpm");
    expect(installed(root)).toEqual(before);
    hooksAre(root, "/usr/sbin/virt-hooks");
  });

  it("--prefix /opt/b over --prefix /usr/local: refused, nothing written; uninstalling /opt/b leaves /usr/local's hooks, then /usr/local's uninstall leaves nothing", () => {
    const root = temp("vh-prefix-");
    ok(installSh(root));
    const first = snapshot(root);
    const r = installSh(root, "--prefix", "/opt/b");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is already virt-hooks, installed with --prefix /usr/local");
    expect(r.stderr).toContain("./install.sh --uninstall --prefix /usr/local");
    expect(snapshot(root)).toEqual(first);
    // Uninstalling a prefix that is not the hook's leaves the hook's install whole.
    ok(installSh(root, "--prefix", "/opt/b", "--uninstall"));
    expect(snapshot(root)).toEqual(first);
    ok(installSh(root, "--uninstall"));
    expect(snapshot(root)).toEqual({});
  });

  it("--uninstall while another virt-hooks is the hook (live, private mount namespace): its units are not disabled or stopped, they are restarted onto it", () => {
    // The live system as install.sh sees it (systemd running), inside a private
    // mount namespace: tmpfs over libvirt's config, /usr/local, /opt and
    // /run/systemd; a systemctl that records its calls.
    const fake = temp("vh-systemctl-");
    writeFileSync(join(fake, "systemctl"), `#!/bin/sh\necho "$*" >>${fake}/calls\n`, { mode: 0o755 });
    const script = [
      "set -eu",
      "for d in /etc/libvirt /usr/local /opt /run/systemd; do mkdir -p \"$d\"; mount -t tmpfs -o mode=0755 tmpfs \"$d\"; done",
      "mkdir -p /run/systemd/system /opt/b/sbin",
      'bash "$1/install.sh" --no-build --no-reload >/dev/null',
      // The other install takes the hooks over, as the .deb does over install.sh.
      'cp "$2" /opt/b/sbin/virt-hooks',
      "for d in qemu network; do ln -sfn /opt/b/sbin/virt-hooks /etc/libvirt/hooks/$d; done",
      ': >"$3/calls"',
      'bash "$1/install.sh" --no-build --no-reload --uninstall',
      "readlink /etc/libvirt/hooks/qemu /etc/libvirt/hooks/network",
    ].join("\n");
    const r = ok(run("unshare", ["-m", "--propagation", "private", "-n", "bash", "-c", script, "bash", TREE, EXE, fake], { env: { PATH: `${fake}:${SYSTEM_PATH}`, LC_ALL: "C" }, timeout: 60_000 }));
    expect(lines(r.stdout).slice(-2)).toEqual(["/opt/b/sbin/virt-hooks", "/opt/b/sbin/virt-hooks"]);
    const calls = readFileSync(join(fake, "calls"), "utf8");
    expect(calls).not.toMatch(/disable/);
    expect(calls).toMatch(/^try-restart virt-hooks-apply\.service virt-hooks-apply\.timer virt-hooks-reapply\.service virt-hooks-watch\.service$/m);
  });

  it("a relative symlink to this install's executable is this install (idempotent), one to another prefix is not", () => {
    const root = temp("vh-rel-");
    ok(installSh(root));
    rmSync(join(root, HOOKS, "qemu"));
    symlinkSync("../../../usr/local/sbin/virt-hooks", join(root, HOOKS, "qemu"));
    ok(installSh(root));
    hooksAre(root, "/usr/local/sbin/virt-hooks");
    const r = installSh(root, "--prefix", "/usr");
    expect(r.code).toBe(1);
    hooksAre(root, "/usr/local/sbin/virt-hooks");
  });

  it("over a copy of the executable as the hook: refused, the copy stays the hook", () => {
    const root = temp("vh-copy-");
    mkdirSync(join(root, HOOKS), { recursive: true });
    copyFileSync(EXE, join(root, HOOKS, "qemu"));
    chmodSync(join(root, HOOKS, "qemu"), 0o755);
    const before = snapshot(root);
    const r = installSh(root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("/etc/libvirt/hooks/qemu is a copy of the virt-hooks executable");
    expect(snapshot(root)).toEqual(before);
  });

  it("an old release's mistake (virt-hooks in DRIVER.d/00-previous-hook) is removed on install; --uninstall puts a live one back as the hook", () => {
    const root = temp("vh-left-");
    ok(installSh(root));
    const clean = snapshot(root);
    // What install.sh before this fix left over a package: the package's hook moved aside.
    mkdirSync(join(root, "usr/sbin"), { recursive: true });
    copyFileSync(EXE, join(root, "usr/sbin/virt-hooks"));
    chmodSync(join(root, "usr/sbin/virt-hooks"), 0o755);
    for (const d of ["qemu", "network"]) symlinkSync("/usr/sbin/virt-hooks", join(root, HOOKS, `${d}.d/00-previous-hook`));
    const r = ok(installSh(root));
    expect(r.stdout).toContain("removed /etc/libvirt/hooks/qemu.d/00-previous-hook: it was virt-hooks itself");
    hooksAre(root, "/usr/local/sbin/virt-hooks");
    rmSync(join(root, "usr/sbin"), { recursive: true });
    expect(snapshot(root)).toEqual(clean);

    // The same leftover, then --uninstall: the hook it was goes back in place.
    mkdirSync(join(root, "usr/sbin"), { recursive: true });
    copyFileSync(EXE, join(root, "usr/sbin/virt-hooks"));
    chmodSync(join(root, "usr/sbin/virt-hooks"), 0o755);
    for (const d of ["qemu", "network"]) symlinkSync("/usr/sbin/virt-hooks", join(root, HOOKS, `${d}.d/00-previous-hook`));
    const u = ok(installSh(root, "--uninstall"));
    expect(u.stdout).toContain("put back /etc/libvirt/hooks/qemu");
    for (const d of ["qemu", "network"]) {
      expect(readlinkSync(join(root, HOOKS, d))).toBe("/usr/sbin/virt-hooks");
      expect(lstatExists(join(root, HOOKS, `${d}.d`, "00-previous-hook"))).toBe(false);
    }
  });
});

describe("the packages never keep a virt-hooks as a previous hook", () => {
  it("the .deb over install.sh (a symlink and a relative symlink) and over its leftover: replaced and removed; dpkg -r leaves no hook", () => {
    const root = scratchRoot();
    ok(installSh(root));
    rmSync(join(root, HOOKS, "network"));
    symlinkSync("../../../usr/local/sbin/virt-hooks", join(root, HOOKS, "network"));
    symlinkSync("/usr/local/sbin/virt-hooks", join(root, HOOKS, "qemu.d/00-previous-hook")); // an old release's mistake
    // Debian's optional staff group (/etc/staff-group-for-usr-local): /usr/local/sbin 2775 root:staff.
    chownSync(join(root, "usr/local/sbin"), 0, 50);
    chmodSync(join(root, "usr/local/sbin"), 0o2775);
    const i = dpkg(root, "-i", deb);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stderr).toContain("/etc/libvirt/hooks/qemu pointed at /usr/local/sbin/virt-hooks (an install.sh install)");
    hooksAre(root, "/usr/sbin/virt-hooks");
    ok(asLibvirt(root, `/${HOOKS}/qemu`));
    ok(dpkg(root, "-r", "virt-hooks"));
    for (const d of ["qemu", "network"]) expect(lstatExists(join(root, HOOKS, d)), d).toBe(false);
  });

  it("the .deb over a copy of the executable as the hook: replaced, not kept as a previous hook", () => {
    const root = scratchRoot();
    copyFileSync(EXE, join(root, HOOKS, "qemu"));
    chmodSync(join(root, HOOKS, "qemu"), 0o755);
    const i = dpkg(root, "-i", deb);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stderr).toContain("/etc/libvirt/hooks/qemu was a copy of the virt-hooks executable; the package's hook replaces it");
    hooksAre(root, "/usr/sbin/virt-hooks");
  });

  it("the .rpm over the tarball's install.sh (symlinks absolute and relative): replaced; rpm -e leaves no hook", () => {
    const root = scratchRoot();
    ok(run("unshare", ["-n", "bash", join(tarTop, "install.sh")], { env: { PATH: SYSTEM_PATH, LC_ALL: "C", DESTDIR: root } }));
    rmSync(join(root, HOOKS, "network"));
    symlinkSync("../../../usr/local/sbin/virt-hooks", join(root, HOOKS, "network"));
    const i = rpm(root, "-i", rpmFile);
    expect(i.code, i.stderr).toBe(0);
    hooksAre(root, "/usr/sbin/virt-hooks");
    ok(asLibvirt(root, `/${HOOKS}/network`, ["default", "started", "begin", "-"]));
    ok(rpm(root, "-e", "virt-hooks"));
    for (const d of ["qemu", "network"]) expect(lstatExists(join(root, HOOKS, d)), d).toBe(false);
  });

  it("the .rpm upgrade removes a leftover an old install.sh made over it (the package's hook in qemu.d/)", () => {
    const root = scratchRoot();
    ok(rpm(root, "-i", rpmFile));
    // install.sh before this fix, over the package: its hook in place, the package's moved aside.
    for (const d of ["qemu", "network"]) {
      rmSync(join(root, HOOKS, d));
      symlinkSync("/usr/local/sbin/virt-hooks", join(root, HOOKS, d));
      symlinkSync("/usr/sbin/virt-hooks", join(root, HOOKS, `${d}.d/00-previous-hook`));
    }
    const u = rpm(root, "-U", "--replacepkgs", rpmFile);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toContain("removed /etc/libvirt/hooks/qemu.d/00-previous-hook");
    hooksAre(root, "/usr/sbin/virt-hooks");
  });
});

describe("an administrator's own hooks are moved aside, keep working, and come back exactly", () => {
  const cases: [string, (root: string) => Result, (root: string) => Result, string][] = [
    ["install.sh", (r) => installSh(r), (r) => installSh(r, "--uninstall"), "/usr/local/sbin/virt-hooks"],
    ["the .deb (install, purge)", (r) => dpkg(r, "-i", deb), (r) => dpkg(r, "-P", "virt-hooks"), "/usr/sbin/virt-hooks"],
    ["the .rpm (install, erase)", (r) => rpm(r, "-i", rpmFile), (r) => rpm(r, "-e", "virt-hooks"), "/usr/sbin/virt-hooks"],
  ];
  for (const [name, install, uninstall, target] of cases) {
    it(`${name}: a script and a symlink to their own script`, () => {
      const root = scratchRoot();
      adminHooks(root);
      const before = installed(root);
      ok(install(root));
      for (const d of ["qemu", "network"]) expect(readlinkSync(join(root, HOOKS, d))).toBe(target);
      adminHooksWorkAside(root);
      ok(uninstall(root));
      expect(installed(root)).toEqual(before);
    });
  }
});

describe("a file someone else controls is never read as root, and never taken for virt-hooks", () => {
  it("a user's file carrying the fingerprint is the administrator's hook (moved aside, kept); a FIFO named virt-hooks does not stall the installer", () => {
    const root = temp("vh-user-");
    const home = join(root, "home/u");
    mkdirSync(join(home, "fifo"), { recursive: true });
    // The user's own copy of the executable (it carries the fingerprint) and a FIFO, in the user's directory.
    copyFileSync(EXE, join(home, "virt-hooks"));
    chmodSync(join(home, "virt-hooks"), 0o755);
    ok(run("mkfifo", [join(home, "fifo", "virt-hooks")]));
    for (const p of [home, join(home, "fifo"), join(home, "virt-hooks"), join(home, "fifo", "virt-hooks")]) chownSync(p, NOBODY, NOBODY);
    mkdirSync(join(root, HOOKS), { recursive: true });
    symlinkSync("/home/u/virt-hooks", join(root, HOOKS, "qemu"));
    symlinkSync("/home/u/fifo/virt-hooks", join(root, HOOKS, "network"));
    const before = snapshot(root);
    const t0 = Date.now();
    const r = ok(installSh(root));
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(r.stdout).toMatch(/your existing \S*\/etc\/libvirt\/hooks\/qemu now runs as \/etc\/libvirt\/hooks\/qemu\.d\/00-previous-hook/);
    expect(readlinkSync(join(root, HOOKS, "qemu.d/00-previous-hook"))).toBe("/home/u/virt-hooks");
    expect(readlinkSync(join(root, HOOKS, "network.d/00-previous-hook"))).toBe("/home/u/fifo/virt-hooks");
    ok(installSh(root, "--uninstall"));
    expect(snapshot(root)).toEqual(before);
  });
});
