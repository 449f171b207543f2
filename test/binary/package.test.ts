// Binary tier, packages: `npm run package` builds the .deb, the .rpm and the
// release tarball from this tree, offline. What they hold is checked with
// Debian's own tools (dpkg-deb, lintian, rpm -qip/-qlp/--scripts), the packaged
// executable is run (never stripped: a stripped one segfaults), the .rpm is
// installed, upgraded and erased in a scratch root (rpm --root, in a private
// network namespace: its scriptlets never reach this machine's firewall), and
// the tarball's install.sh installs with no Node at all.
// Installing, upgrading and purging the .deb on a booted host is the host tier's.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BINARY, REPO, requireBinary } from "../helpers/binary.js";

const version = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version as string;
const deb = join(REPO, "dist", `virt-hooks_${version}-1_amd64.deb`);
const rpm = join(REPO, "dist", `virt-hooks-${version}-1.x86_64.rpm`);
const tarball = join(REPO, "dist", `virt-hooks-${version}-linux-x64.tar.gz`);
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const dirs: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
};
const sh = (script: string) => run("bash", ["-c", script]);
const lines = (s: string) => s.trim().split("\n").filter(Boolean);
const fig = (k: string, v: unknown) => console.log(`package: ${k} = ${v}`);

/** The commands the scriptlets use, with their libraries, so rpm --root can run them in the scratch root. */
function scratchRoot(): string {
  const root = temp("vh-rpmroot-");
  // install.sh's vh_kind reads what a hook is with id, stat, head, tr, grep and dirname.
  for (const b of ["sh", "mkdir", "mv", "readlink", "rmdir", "rm", "cat", "id", "stat", "head", "tr", "grep", "dirname"]) {
    const path = sh(`readlink -f "$(command -v ${b})"`).stdout.trim();
    const libs = lines(sh(`ldd ${path} | grep -o '/[^ ]*'`).stdout);
    for (const f of [path, ...libs]) {
      const to = join(root, f === path ? `bin/${b}` : f);
      mkdirSync(dirname(to), { recursive: true });
      if (!existsSync(to)) writeFileSync(to, readFileSync(f), { mode: 0o755 });
    }
  }
  mkdirSync(join(root, "dev"));
  expect(run("mknod", ["-m", "666", join(root, "dev", "null"), "c", "1", "3"]).code).toBe(0);
  return root;
}

describe("npm run package", () => {
  let built: ReturnType<typeof run>;
  beforeAll(() => {
    requireBinary();
    // Debian's rpm (rpmbuild) and lintian: installed here when missing, as the e2e tier installs its tools.
    if (run("sh", ["-c", "command -v rpmbuild && command -v lintian"]).code !== 0) {
      const r = sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rpm lintian >/dev/null");
      if (r.code !== 0) throw new Error(`apt-get install rpm lintian: ${r.stderr}`);
    }
    const t0 = Date.now();
    built = run("bash", [join(REPO, ".ci", "package.sh")]);
    fig("npm run package (s)", ((Date.now() - t0) / 1000).toFixed(1));
    for (const f of [deb, rpm, tarball]) if (existsSync(f)) fig(`size of ${f.split("/").pop()} (MB)`, (readFileSync(f).length / 1e6).toFixed(1));
  }, 300_000);
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("builds the .deb, the .rpm and the tarball, quietly", () => {
    expect(built.code, built.stderr).toBe(0);
    expect(built.stderr).toBe("");
    for (const f of [deb, rpm, tarball]) expect(existsSync(f), f).toBe(true);
  });

  it("the .deb declares what the executable really needs and keeps the admin's files", () => {
    const field = (f: string) => run("dpkg-deb", ["--field", deb, f]).stdout.trim();
    expect(field("Package")).toBe("virt-hooks");
    expect(field("Version")).toBe(`${version}-1`);
    // The executable's highest symbol versions (GLIBC_2.28, GLIBCXX_3.4.21, GCC_3.4):
    // installs on Debian 11, Ubuntu 20.04; not dpkg-shlibdeps' libc6 (>= 2.34).
    expect(field("Depends")).toBe("libc6 (>= 2.28), libgcc-s1 (>= 3.4), libstdc++6 (>= 5.2), iptables | nftables, iproute2");
    const glibc = lines(sh(`objdump -T ${BINARY} | grep -o 'GLIBC_[0-9.]*' | sort -uV`).stdout);
    expect(glibc.at(-1)).toBe("GLIBC_2.28");
    const x = temp("vh-deb-");
    expect(run("dpkg-deb", ["--control", deb, join(x, "DEBIAN")]).code).toBe(0);
    expect(lines(readFileSync(join(x, "DEBIAN", "conffiles"), "utf8")).sort()).toEqual([
      "/etc/libvirt/hooks/network.d/README.virt-hooks",
      "/etc/libvirt/hooks/qemu.d/README.virt-hooks",
      "/etc/libvirt/hooks/rules.d/10-publish-guest-ports.rules.example",
      "/etc/libvirt/hooks/rules.d/20-routed-networks.rules.example",
    ]);
    expect(readFileSync(join(x, "DEBIAN", "md5sums"), "utf8")).toMatch(/ usr\/sbin\/virt-hooks\n/);
    for (const s of ["preinst", "postinst", "prerm", "postrm"]) {
      expect(run("sh", ["-n", join(x, "DEBIAN", s)]).code, s).toBe(0);
    }
    // The distribution's helpers: units through deb-systemd-helper/-invoke, libvirt reloaded with try-reload-or-restart.
    const postinst = readFileSync(join(x, "DEBIAN", "postinst"), "utf8");
    expect(postinst).toMatch(/deb-systemd-helper enable[\s\S]*deb-systemd-invoke start[\s\S]*vh_reload_libvirt deb-systemd-invoke/);
    expect(postinst).toMatch(/\$1 try-reload-or-restart "\$d"/);
  });

  it("lintian: no tag at any level (errors to pedantic and experimental), each override justified", () => {
    const r = run("lintian", ["--fail-on", "error,warning,info,pedantic", "--display-info", "--pedantic", "--display-experimental", deb]);
    const tags = lines(r.stdout + r.stderr).filter((l) => /^[EWIPXO]: /.test(l));
    expect(tags).toEqual([]);
    expect(r.code).toBe(0);
    const x = temp("vh-debo-");
    run("dpkg-deb", ["-x", deb, x]);
    const overrides = readFileSync(join(x, "usr", "share", "lintian", "overrides", "virt-hooks"), "utf8").split("\n");
    // Every override line follows a comment (its justification), directly or within its group.
    overrides.forEach((l, i) => {
      if (l.startsWith("virt-hooks:")) expect(overrides.slice(0, i).reverse().find((p) => !p.startsWith("virt-hooks:")), l).toMatch(/^# /);
    });
    fig("lintian overrides", overrides.filter((l) => l.startsWith("virt-hooks:")).length);
    // lintian reads the 120 MB executable: ~40 s here, twice that while other work shares the cores.
  }, 180_000);

  it("the packaged executable is the built one, unstripped, and runs; hooks and units point at /usr/sbin", () => {
    const x = temp("vh-debx-");
    expect(run("dpkg-deb", ["-x", deb, x]).code).toBe(0);
    const exe = join(x, "usr", "sbin", "virt-hooks");
    expect(sha(readFileSync(exe))).toBe(sha(readFileSync(BINARY)));
    const v = run(exe, ["--version"]);
    expect(v).toMatchObject({ code: 0, stdout: `virt-hooks ${version}\n`, stderr: "" });
    for (const d of ["qemu", "network"]) expect(readlinkSync(join(x, "etc", "libvirt", "hooks", d))).toBe("/usr/sbin/virt-hooks");
    expect(readFileSync(join(x, "lib", "systemd", "system", "virt-hooks-apply.service"), "utf8")).toContain("ExecStart=/usr/sbin/virt-hooks apply");
  });

  it("rpm -qip / --requires / --provides: real needs declared, nothing provided, never a build-id link", () => {
    const info = run("rpm", ["-qip", rpm]).stdout;
    expect(info).toMatch(new RegExp(`^Name +: virt-hooks$[\\s\\S]*^Version +: ${version.replace(/\./g, "\\.")}$[\\s\\S]*^Release +: 1$[\\s\\S]*^Architecture: x86_64$[\\s\\S]*^License +: MIT$`, "m"));
    const req = lines(run("rpm", ["-qp", "--requires", rpm]).stdout).filter((l) => !l.startsWith("rpmlib(") && l !== "/bin/sh");
    expect(req.sort()).toEqual([
      "(iptables or nftables)",
      "iproute",
      "libc.so.6(GLIBC_2.28)(64bit)",
      "libgcc_s.so.1(GCC_3.4)(64bit)",
      "libstdc++.so.6(CXXABI_1.3.9)(64bit)",
      "libstdc++.so.6(GLIBCXX_3.4.21)(64bit)",
    ]);
    // What the executable needs at most, so the declared versions are the right ones.
    const needs = sh(`objdump -T ${BINARY} | grep -o '\\(GLIBCXX\\|CXXABI\\|GCC\\)_[0-9.]*' | sort -uV`).stdout;
    for (const v of ["GLIBCXX_3.4.21", "CXXABI_1.3.9", "GCC_3.4"]) expect(lines(needs).filter((l) => l.split("_")[0] === v.split("_")[0]).at(-1)).toBe(v);
    expect(lines(run("rpm", ["-qp", "--provides", rpm]).stdout)).toEqual([`virt-hooks = ${version}-1`, "virt-hooks(x86-64) = " + `${version}-1`]);
  });

  it("rpm -qlp: the tree install.sh stages under /usr, the examples as %config(noreplace), the preset", () => {
    const list = lines(run("rpm", ["-qlp", rpm]).stdout);
    expect(list.filter((p) => p.includes(".build-id"))).toEqual([]);
    expect(list).toEqual(expect.arrayContaining([
      "/usr/sbin/virt-hooks", "/etc/libvirt/hooks/qemu", "/etc/libvirt/hooks/network",
      "/usr/lib/systemd/system/virt-hooks-apply.service", "/usr/lib/systemd/system/virt-hooks-watch.service",
      "/usr/lib/systemd/system/virt-hooks-.service.d/sandbox.conf",
      "/usr/lib/systemd/system-preset/80-virt-hooks.preset",
      "/usr/share/man/man8/virt-hooks.8.gz", "/usr/share/bash-completion/completions/virt-hooks",
      // The Cockpit page (issue 30), in the main package: inert where Cockpit is absent.
      "/usr/share/cockpit/virt-hooks/manifest.json", "/usr/share/cockpit/virt-hooks/index.html",
    ]));
    // Not libvirt's own directory (its mode is libvirt's), nor the system's.
    expect(list).not.toContain("/etc/libvirt/hooks");
    expect(list).not.toContain("/usr/lib/systemd/system");
    // The same staged tree as the .deb's, but for the unit directory and the docs.
    const debList = lines(sh(`dpkg-deb -c ${deb} | awk '{print $6}' | sed 's|^\\.||; s|/$||'`).stdout)
      .map((p) => p.replace(/^\/lib\/systemd\//, "/usr/lib/systemd/"))
      .filter((p) => p.startsWith("/etc/libvirt/hooks/") || /^\/usr\/(sbin|lib\/systemd\/system|share\/cockpit)\//.test(p));
    expect(debList).toEqual(expect.arrayContaining(["/usr/share/cockpit/virt-hooks/manifest.json", "/usr/share/cockpit/virt-hooks/index.html"]));
    for (const p of debList) expect(list, p).toContain(p);
    expect(lines(run("rpm", ["-qp", "--configfiles", rpm]).stdout).sort()).toEqual([
      "/etc/libvirt/hooks/network.d/README.virt-hooks",
      "/etc/libvirt/hooks/qemu.d/README.virt-hooks",
      "/etc/libvirt/hooks/rules.d/10-publish-guest-ports.rules.example",
      "/etc/libvirt/hooks/rules.d/20-routed-networks.rules.example",
    ]);
    const noreplace = sh(`rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\\n]' ${rpm} | grep '^cn '`).stdout;
    expect(lines(noreplace).length).toBe(4);
    expect(sh(`rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\\n]' ${rpm} | grep ' /usr/sbin/virt-hooks$'`).stdout).toMatch(/^-rwxr-xr-x /);
  });

  it("rpm -qp --scripts: %pre moves an admin's hook aside, %post presets and starts, %preun stops and flushes, %postun restores", () => {
    const s = run("rpm", ["-qp", "--scripts", rpm]).stdout;
    const parts = s.split(/^(\w+) scriptlet \(using \/bin\/sh\):$/m);
    const byName = Object.fromEntries(parts.slice(1).reduce<[string, string][]>((a, v, i, arr) => (i % 2 === 0 ? [...a, [v, arr[i + 1]!]] : a), []));
    expect(Object.keys(byName).sort()).toEqual(["postinstall", "postuninstall", "preinstall", "preuninstall"]);
    for (const [name, body] of Object.entries(byName)) {
      const f = join(temp("vh-scr-"), name);
      writeFileSync(f, body);
      expect(run("sh", ["-n", f]).code, name).toBe(0);
    }
    expect(byName.preinstall).toMatch(/\nvh_hooks_aside\n/);
    expect(byName.postinstall).toMatch(/systemctl --no-reload preset \$VH_UNITS[\s\S]*vh_reload_libvirt systemctl/);
    expect(byName.preuninstall).toMatch(/if \[ "\$1" -eq 0 \][\s\S]*disable --now \$VH_UNITS[\s\S]*vh_flush/);
    expect(byName.postuninstall).toMatch(/if \[ "\$1" -eq 0 \][\s\S]*vh_hooks_restore/);
  });

  it("the .rpm installs, upgrades and erases in a scratch root; an admin's own qemu hook survives the round trip", () => {
    const root = scratchRoot();
    const hook = join(root, "etc", "libvirt", "hooks", "qemu");
    mkdirSync(dirname(hook), { recursive: true });
    const mine = "#!/bin/sh\necho the admin's own hook \"$@\"\n";
    writeFileSync(hook, mine, { mode: 0o755 });
    // A private network namespace: whatever a scriptlet did could never reach this machine's firewall.
    const rpmIn = (...args: string[]) => run("unshare", ["-n", "rpm", "--root", root, "--force-debian", ...args]);
    const i = rpmIn("-i", "--nodeps", rpm);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stdout).toContain("your existing /etc/libvirt/hooks/qemu now runs as /etc/libvirt/hooks/qemu.d/00-previous-hook");
    expect(readlinkSync(hook)).toBe("/usr/sbin/virt-hooks");
    expect(readFileSync(join(root, "etc/libvirt/hooks/qemu.d/00-previous-hook"), "utf8")).toBe(mine);
    expect(sha(readFileSync(join(root, "usr/sbin/virt-hooks")))).toBe(sha(readFileSync(BINARY)));
    expect(rpmIn("-q", "virt-hooks").stdout.trim()).toBe(`virt-hooks-${version}-1.x86_64`);
    expect(readFileSync(join(root, "usr/lib/systemd/system-preset/80-virt-hooks.preset"), "utf8"))
      .toMatch(/^enable virt-hooks-apply\.service$[\s\S]*^enable virt-hooks-watch\.service$/m);
    // An admin's edit of a %config(noreplace) file survives the upgrade to the next build.
    const example = join(root, "etc/libvirt/hooks/rules.d/10-publish-guest-ports.rules.example");
    writeFileSync(example, "# mine\n");
    const next = temp("vh-rpm2-");
    const b = run("bash", [join(REPO, ".ci", "package.sh"), "--no-build", "--revision", "2", "--out", next, "rpm"]);
    expect(b.code, b.stderr).toBe(0);
    const u = rpmIn("-U", "--nodeps", join(next, `virt-hooks-${version}-2.x86_64.rpm`));
    expect(u.code, u.stderr).toBe(0);
    expect(rpmIn("-q", "virt-hooks").stdout.trim()).toBe(`virt-hooks-${version}-2.x86_64`);
    expect(readlinkSync(hook)).toBe("/usr/sbin/virt-hooks");
    expect(readFileSync(join(root, "etc/libvirt/hooks/qemu.d/00-previous-hook"), "utf8")).toBe(mine);
    expect(readFileSync(example, "utf8")).toBe("# mine\n");
    const e = rpmIn("-e", "virt-hooks");
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain("restored your previous /etc/libvirt/hooks/qemu");
    expect(readFileSync(hook, "utf8")).toBe(mine);
    expect(rpmIn("-qa").stdout.trim()).toBe("");
    // Nothing of ours left but the admin's edited example, which rpm keeps as .rpmsave.
    const left = lines(sh(`cd ${root} && find . -path ./var -prune -o -path ./usr/lib/sysimage -prune -o \\( -name '*virt-hooks*' -o -name '00-previous-hook' -o -name 'qemu.d' -o -name '*.rules*' \\) -print`).stdout);
    expect(left).toEqual(["./etc/libvirt/hooks/rules.d/10-publish-guest-ports.rules.example.rpmsave"]);
    // It builds the next revision's .rpm (~50 s here, more on a busy machine).
  }, 240_000);

  it("a hook of an earlier install.sh install (another prefix) is replaced, not kept as the admin's", () => {
    const root = scratchRoot();
    const hooks = join(root, "etc", "libvirt", "hooks");
    mkdirSync(hooks, { recursive: true });
    for (const d of ["qemu", "network"]) symlinkSync("/usr/local/sbin/virt-hooks", join(hooks, d));
    const i = run("unshare", ["-n", "rpm", "--root", root, "--force-debian", "-i", "--nodeps", rpm]);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stderr).toContain("/etc/libvirt/hooks/qemu pointed at /usr/local/sbin/virt-hooks (an install.sh install)");
    expect(i.stderr).toContain("./install.sh --uninstall --prefix /usr/local");
    for (const d of ["qemu", "network"]) {
      expect(readlinkSync(join(hooks, d))).toBe("/usr/sbin/virt-hooks");
      expect(existsSync(join(hooks, `${d}.d`, "00-previous-hook")), d).toBe(false);
    }
  });

  it("the tarball's install.sh installs the executable it carries without running Node or npm", () => {
    const x = temp("vh-tar-");
    expect(run("tar", ["-xzf", tarball, "-C", x]).code).toBe(0);
    const top = join(x, `virt-hooks-${version}-linux-x64`);
    for (const f of ["install.sh", "dist/virt-hooks", "hooks/qemu", "hooks/qemu.d/README.virt-hooks", "docs/man/virt-hooks.8", "systemd/virt-hooks-watch.service", "completion/virt-hooks.bash", "rules.d", "LICENSE"]) {
      expect(existsSync(join(top, f)) || sh(`test -L ${join(top, f)}`).code === 0, f).toBe(true);
    }
    // node and npm that record being called: the installer must need neither.
    const fake = temp("vh-nonode-");
    const marker = join(fake, "called");
    for (const n of ["node", "npm", "npx"]) {
      writeFileSync(join(fake, n), `#!/bin/sh\necho "$0 $*" >> ${marker}\nexit 127\n`);
      chmodSync(join(fake, n), 0o755);
    }
    const dest = temp("vh-tardest-");
    const r = run("bash", [join(top, "install.sh")], { ...process.env, DESTDIR: dest, PATH: `${fake}:${process.env.PATH}` });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(marker) ? readFileSync(marker, "utf8") : "").toBe("");
    expect(sha(readFileSync(join(dest, "usr", "local", "sbin", "virt-hooks")))).toBe(sha(readFileSync(BINARY)));
    expect(readlinkSync(join(dest, "etc", "libvirt", "hooks", "qemu"))).toBe("/usr/local/sbin/virt-hooks");
  });
});
