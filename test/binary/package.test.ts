// Binary tier, packages: `npm run package` builds the .deb and the release
// tarball from this tree, offline; what they hold is checked with dpkg-deb
// itself, the packaged executable is run (never stripped: a stripped one
// segfaults), and the tarball's install.sh installs with no Node at all.
// Installing, upgrading and purging the .deb on a booted host is the host tier's.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BINARY, REPO, requireBinary } from "../helpers/binary.js";

const version = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version as string;
const deb = join(REPO, "dist", `virt-hooks_${version}-1_amd64.deb`);
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

describe("npm run package", () => {
  let built: ReturnType<typeof run>;
  beforeAll(() => {
    requireBinary();
    built = run("bash", [join(REPO, ".ci", "package.sh")]);
  }, 300_000);
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("builds the .deb and the tarball, quietly", () => {
    expect(built.code, built.stderr).toBe(0);
    expect(built.stderr).toBe("");
    expect(existsSync(deb)).toBe(true);
    expect(existsSync(tarball)).toBe(true);
  });

  it("the .deb declares what the executable really needs and keeps the admin's files", () => {
    const field = (f: string) => run("dpkg-deb", ["--field", deb, f]).stdout.trim();
    expect(field("Package")).toBe("virt-hooks");
    expect(field("Version")).toBe(`${version}-1`);
    // GLIBC_2.28 is the executable's highest symbol version: installs on Debian 11, Ubuntu 20.04, RHEL 8.
    expect(field("Depends")).toContain("libc6 (>= 2.28)");
    const x = temp("vh-deb-");
    expect(run("dpkg-deb", ["--control", deb, join(x, "DEBIAN")]).code).toBe(0);
    expect(readFileSync(join(x, "DEBIAN", "conffiles"), "utf8").trim().split("\n").sort()).toEqual([
      "/etc/libvirt/hooks/network.d/README.virt-hooks",
      "/etc/libvirt/hooks/qemu.d/README.virt-hooks",
      "/etc/libvirt/hooks/rules.d/10-publish-guest-ports.rules.example",
      "/etc/libvirt/hooks/rules.d/20-routed-networks.rules.example",
    ]);
    for (const s of ["preinst", "postinst", "prerm", "postrm"]) {
      expect(run("sh", ["-n", join(x, "DEBIAN", s)]).code, s).toBe(0);
    }
  });

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

  it("the tarball's install.sh installs the executable it carries without running Node or npm", () => {
    const x = temp("vh-tar-");
    expect(run("tar", ["-xzf", tarball, "-C", x]).code).toBe(0);
    const top = join(x, `virt-hooks-${version}-linux-x64`);
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
