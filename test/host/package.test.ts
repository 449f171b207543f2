// Host tier, packages: on a booted Debian host (lab/targets.ts: stock Debian 12
// with libvirt 9.0, Debian 13 with libvirt 11.3; systemd, firewalld, no
// network), the .deb is installed the way the README
// says (`apt install ./virt-hooks_*.deb`, every dependency already there),
// upgraded to the next build while a client probes the forward every ~100 ms,
// removed and purged; an admin's own qemu hook goes through the whole round
// trip; then the release tarball's install.sh runs on the same host with Node
// removed; then, on Debian 12, the .rpm's scriptlets run for real, with systemd
// and libvirt live: Debian's own rpm installs, upgrades and erases it there
// (rpm's database knows no Debian package, hence --nodeps; Debian 12 only:
// its rpm is fetched by this machine's apt, which serves Debian 12's, and the
// scriptlets are shell that does not change with the distribution). Figures
// are printed with a "host-tier:" prefix.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Host } from "./lab/boot.js";
import { bootTarget, describeTargets, rootOf, targetsFor } from "./lab/targets.js";
import { addClient, addGuest, connectOnce, diagnose, outageMs, Probe, startDefaultNetwork, waitConnect, type Guest } from "./lab/scene.js";

const REPO = resolve(__dirname, "../..");
const version = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version as string;
const OLD = `virt-hooks_${version}-1_amd64.deb`;
const NEW = `virt-hooks_${version}-2_amd64.deb`;
const TARBALL = `virt-hooks-${version}-linux-x64.tar.gz`;
const RPM1 = `virt-hooks-${version}-1.x86_64.rpm`;
const RPM2 = `virt-hooks-${version}-2.x86_64.rpm`;
// Debian's rpm and what it needs beyond the stock root, fetched with apt-get download (the host has no network).
const RPM_DEBS = ["rpm", "rpm-common", "librpm9", "librpmio9", "librpmbuild9", "librpmsign9", "rpm2cpio", "debugedit", "libfsverity0",
  "libgomp1", "liblua5.3-0", "libmagic1", "libmagic-mgc", "perl", "perl-base", "perl-modules-5.36", "libperl5.36", "libgdbm6", "libgdbm-compat4", "libarchive13"];
const WEB: Guest = { name: "web", mac: "52:54:00:77:00:50", ip: "192.168.122.50", ports: [80], ns: "guest", veth: "vg" };
const UNITS = ["virt-hooks-apply.service", "virt-hooks-apply.timer", "virt-hooks-reapply.service", "virt-hooks-watch.service"];
const STARTED = ["virt-hooks-apply.timer", "virt-hooks-reapply.service", "virt-hooks-watch.service"];
const ADMIN_HOOK = `#!/bin/sh
# the admin's own qemu hook, from before virt-hooks
echo "$1 $2 $3" >> /var/log/admin-qemu-hook.log
exit 0
`;
let target = "";
const fig = (k: string, v: unknown) => console.log(`host-tier: ${target ? `${target}: ` : ""}${k} = ${v}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let host: Host;
let pkgs: string;
const t0 = Date.now();

/** Runs in the host; fails the test with the output when the command fails. */
function must(cmd: string): string {
  const r = host.execSync(cmd);
  if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
const ours = () => ({
  ipt: host.execSync("iptables-save; ip6tables-save").stdout.split("\n").filter((l) => /VIRT_HOOKS/i.test(l)),
  nft: host.execSync("nft list tables").stdout.split("\n").filter((l) => /virt_hooks/.test(l)),
});
const state = (u: string) => host.execSync(`systemctl is-active ${u}`).stdout.trim();
// reapply.service is "reloading" for ~5 s after a libvirtd reload (ReloadPropagatedFrom=: apply, sleep 5, apply).
const UP = /^(active|reloading)$/;

// Built once for every target: both builds from this tree's executable.
beforeAll(() => {
  if (!targetsFor("package").length) return;
  // Both builds from this tree's executable: -1 is installed, -2 upgrades it.
  pkgs = mkdtempSync(join(tmpdir(), "vh-host-pkgs-"));
  const build = existsSync(join(REPO, "dist", "virt-hooks")) ? ["--no-build"] : [];
  const p0 = Date.now();
  for (const [rev, formats] of [["1", ["deb", "rpm", "tar"]], ["2", ["deb", "rpm"]]] as const) {
    const r = spawnSync("bash", [join(REPO, ".ci", "package.sh"), ...build, "--revision", rev, "--out", pkgs, ...formats], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`package.sh --revision ${rev}: ${r.stderr}`);
  }
  fig("package.sh for -1 (deb, rpm, tar) and -2 (deb, rpm) (s)", ((Date.now() - p0) / 1000).toFixed(1));
  if (targetsFor("package").some((t) => t.debian === 12)) {
    const dl = spawnSync("sh", ["-c", `mkdir -p rpm-debs && cd rpm-debs && apt-get download ${RPM_DEBS.join(" ")}`], { cwd: pkgs, encoding: "utf8" });
    if (dl.status !== 0) throw new Error(`apt-get download of Debian's rpm: ${dl.stderr}`);
  }
}, 900_000);
afterAll(() => {
  if (pkgs) rmSync(pkgs, { recursive: true, force: true });
  fig("package tier total (s)", ((Date.now() - t0) / 1000).toFixed(1));
});

describeTargets("package", "host: the packages", (t) => {
  beforeAll(async () => {
    target = t.name;
    const root = rootOf(t, REPO);
    host = await bootTarget(t, root, `vh-pkg-${t.name}-${process.pid}`);
    host.copyIn(pkgs, [OLD, NEW, TARBALL, ...(t.debian === 12 ? [RPM1, RPM2, "rpm-debs"] : [])], "/root/pkg");
    startDefaultNetwork(host);
    // The stand-in's listener is ours, not addGuest's: one that survives a probe resetting a
    // connection mid-reply (a probe timing out on a loaded machine), which kills an
    // unguarded net.createServer with an unhandled ECONNRESET.
    addGuest(host, { ...WEB, ports: [] });
    must(`ip netns exec ${WEB.ns} setsid node -e "require('net').createServer(s=>{s.on('error',()=>{});s.end('ok\\n')}).on('error',e=>{console.error(e);process.exit(1)}).listen(80)" </dev/null >/dev/null 2>&1 &
for i in $(seq 50); do ip netns exec ${WEB.ns} ss -ltn | grep -q ':80 ' && break; sleep 0.1; done`);
    addClient(host);
    must(`mkdir -p /etc/libvirt/hooks/rules.d
echo 'forward tcp 10.77.0.1:8080 to ${WEB.ip}:80' > /etc/libvirt/hooks/rules.d/50-package.rules
cat > /etc/libvirt/hooks/qemu <<'H'
${ADMIN_HOOK}H
chmod 0755 /etc/libvirt/hooks/qemu`);
  }, 900_000);
  afterAll(async () => {
    await host?.stop();
  });

  it("apt install ./virt-hooks_*.deb, offline: the admin's hook moved aside, units enabled and running, the forward carries TCP", async () => {
    expect(connectOnce(host, 8080)).toBe(false);
    const r = host.execSync(`cd /root/pkg && DEBIAN_FRONTEND=noninteractive apt install -y ./${OLD} 2>&1`);
    fig("apt install (s)", (r.ms / 1000).toFixed(1));
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain("your existing /etc/libvirt/hooks/qemu now runs as /etc/libvirt/hooks/qemu.d/00-previous-hook");
    expect(must("readlink /etc/libvirt/hooks/qemu /etc/libvirt/hooks/network")).toBe("/usr/sbin/virt-hooks\n/usr/sbin/virt-hooks\n");
    expect(must("cat /etc/libvirt/hooks/qemu.d/00-previous-hook")).toBe(ADMIN_HOOK);
    for (const u of UNITS) expect(host.execSync(`systemctl is-enabled ${u}`).stdout.trim(), u).toBe("enabled");
    for (const u of STARTED) expect(state(u), u).toMatch(UP);
    // postinst reloaded libvirtd (try-reload-or-restart: SIGHUP, so it re-reads its hooks) and applied.
    expect(must("journalctl -u libvirtd -o cat --no-pager | grep -c 'Reload' || true").trim()).not.toBe("0");
    const ms = await waitConnect(host, 8080, 5000);
    fig("forward carries TCP after apt install (ms after it returned)", ms);
    expect(ms, diagnose(host)).toBeGreaterThanOrEqual(0);
  });

  it("apt install of the next build (-2) over it: the forward never fails while a client probes it every ~100 ms", async () => {
    const watcher = must("systemctl show -p MainPID --value virt-hooks-watch.service").trim();
    const c = host.execSync("journalctl -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p'").stdout.trim();
    const probe = Probe.start(host, 8080, "upgrade", { giveUpMs: 900 });
    await sleep(1500);
    const u0 = Date.now();
    const r = await host.exec(`cd /root/pkg && DEBIAN_FRONTEND=noninteractive apt install -y ./${NEW} 2>&1`);
    const u1 = Date.now();
    await sleep(3000);
    const samples = probe.stop();
    expect(r.code, r.stdout).toBe(0);
    const during = samples.filter((s) => s.t >= u0 - 1000);
    const gaps = during.slice(1).map((s, i) => s.t - during[i]!.t);
    const outage = outageMs(samples, u0 - 1000);
    fig("apt install of -2 over -1 (s)", ((u1 - u0) / 1000).toFixed(1));
    fig("probe attempts from 1 s before the upgrade to 3 s after", during.length);
    fig("failed probe attempts", during.filter((s) => !s.ok).length);
    const p95 = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length * 0.95)]!;
    fig("interval between probe attempts, p95 / longest (ms)", `${p95} / ${Math.max(...gaps)}`);
    fig("outage during upgrade (ms)", outage);
    // What ran meanwhile, to tell a rule that went from a probe the loaded machine starved.
    console.log(host.execSync(`journalctl -o short-precise --after-cursor='${c}' -t virt-hooks -u virt-hooks-watch -u virt-hooks-reapply -u libvirtd -u firewalld`).stdout.split("\n").map((l) => `host-tier: ${target}:   ${l}`).join("\n"));
    console.log(`host-tier: ${target}:   failed probes at ${samples.filter((s) => !s.ok).map((s) => `${new Date(s.t).toISOString()} (exit ${s.rc})`).join(" ")}`);
    expect(during.length).toBeGreaterThan(20);
    // Every ~100 ms; a loaded 2-core machine (apt, dpkg and the upgrade run on it too) stretches a
    // few. The bound stays 500 ms although an attempt may now wait up to 900 ms: a rule gone after
    // a slow attempt's SYN was translated would not fail it, so a longer gap is a longer blind spot.
    expect(p95).toBeLessThanOrEqual(250);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(500);
    expect(during.filter((s) => !s.ok), diagnose(host)).toEqual([]);
    expect(must("dpkg-query -W -f '${Version} ${db:Status-Abbrev}' virt-hooks")).toBe(`${version}-2 ii `);
    // The watcher runs the new executable; the admin's hook stays where it is.
    expect(must("systemctl show -p MainPID --value virt-hooks-watch.service").trim()).not.toBe(watcher);
    for (const u of STARTED) expect(state(u), u).toMatch(UP);
    expect(must("cat /etc/libvirt/hooks/qemu.d/00-previous-hook")).toBe(ADMIN_HOOK);
    expect(connectOnce(host, 8080)).toBe(true);
  });

  it("libvirt still runs the admin's hook from qemu.d/ after ours", () => {
    must(`cat > /tmp/db.xml <<X
<domain type='qemu'><name>db</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>
<devices><interface type='network'><source network='default'/><mac address='52:54:00:77:00:51'/></interface>
<graphics type='vnc' listen='127.0.0.1'/></devices></domain>
X
virsh define /tmp/db.xml >/dev/null && virsh start db >/dev/null && virsh destroy db >/dev/null && virsh undefine db >/dev/null`);
    const log = must("cat /var/log/admin-qemu-hook.log");
    expect(log).toMatch(/^db prepare begin$/m);
    expect(log).toMatch(/^db release end$/m);
  });

  it("apt remove: units stopped, our firewall objects gone, the admin's hook back, the forward closed", () => {
    expect(ours().ipt.length + ours().nft.length).toBeGreaterThan(0);
    const r = host.execSync("DEBIAN_FRONTEND=noninteractive apt remove -y virt-hooks 2>&1");
    fig("apt remove (s)", (r.ms / 1000).toFixed(1));
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain("restored your previous /etc/libvirt/hooks/qemu");
    for (const u of UNITS) expect(state(u), u).not.toBe("active");
    expect(ours()).toEqual({ ipt: [], nft: [] });
    expect(must("cat /etc/libvirt/hooks/qemu")).toBe(ADMIN_HOOK);
    expect(host.execSync("test -e /etc/libvirt/hooks/network || test -L /etc/libvirt/hooks/network").code).not.toBe(0);
    expect(host.execSync("test -e /usr/sbin/virt-hooks").code).not.toBe(0);
    expect(must("dpkg-query -W -f '${db:Status-Abbrev}' virt-hooks")).toBe("rc ");
    expect(connectOnce(host, 8080)).toBe(false);
    expect(host.execSync("systemctl is-active libvirtd").stdout.trim()).toBe("active");
    expect(host.execSync("systemctl is-system-running").stdout.trim()).toMatch(/running|degraded/);
  });

  it("apt purge: nothing of ours left (files, state, units, enablement), the admin's files kept", () => {
    // The units' StateDirectory= made this; purge must take it.
    expect(host.execSync("test -d /var/lib/libvirt/virt-hooks").code).toBe(0);
    const r = host.execSync("DEBIAN_FRONTEND=noninteractive apt purge -y virt-hooks 2>&1");
    expect(r.code, r.stdout).toBe(0);
    expect(host.execSync("dpkg-query -W virt-hooks 2>/dev/null").stdout.trim()).toBe("");
    const left = host.execSync(`find / -xdev \\( -path /proc -o -path /sys -o -path /root/pkg -o -path /tmp -o -path /var/log/journal \\) -prune -o \\( -name '*virt-hooks*' -o -name '*virt_hooks*' -o -name '00-previous-hook' \\) -print`).stdout;
    expect(left.trim()).toBe("");
    expect(host.execSync("ls -d /run/virt-hooks /var/lib/libvirt/virt-hooks /etc/libvirt/hooks/qemu.d /etc/libvirt/hooks/network.d 2>/dev/null").stdout).toBe("");
    expect(host.execSync("systemctl list-unit-files 'virt-hooks*' --no-legend").stdout.trim()).toBe("");
    // No unit of ours loaded or active. (systemd in nspawn may keep a stopped unit's record
    // as "not-found inactive dead" when its cgroup kill failed: "Failed to kill control
    // group ... Input/output error" in the journal; it holds nothing and no file.)
    const units = host.execSync("systemctl list-units --all 'virt-hooks*' --no-legend --plain").stdout.trim().split("\n").filter(Boolean);
    expect(units.filter((l) => !/ not-found inactive dead /.test(l))).toEqual([]);
    expect(host.execSync("ls /etc/systemd/system/*/ /var/lib/systemd/deb-systemd-helper-enabled/ /var/lib/systemd/deb-systemd-helper-masked/ 2>/dev/null | grep virt-hooks").stdout).toBe("");
    // What the admin wrote stays: the hook and the rule file.
    expect(must("cat /etc/libvirt/hooks/qemu")).toBe(ADMIN_HOOK);
    expect(must("ls /etc/libvirt/hooks/rules.d")).toBe("50-package.rules\n");
  });

  it("the release tarball's install.sh installs on this host with no Node at all, and uninstalls", async () => {
    // apt removes nodejs and everything that depends on it (npm and its modules).
    const rm = host.execSync("DEBIAN_FRONTEND=noninteractive apt-get remove --purge -y nodejs 2>&1");
    expect(rm.code, rm.stdout).toBe(0);
    expect(host.execSync("command -v node nodejs npm npx; ls /usr/bin/node* /usr/lib/node_modules 2>/dev/null").stdout).toBe("");
    const i = host.execSync(`mkdir -p /root/tar && tar -C /root/tar -xzf /root/pkg/${TARBALL} && cd /root/tar/virt-hooks-${version}-linux-x64 && ./install.sh 2>&1`);
    fig("tarball install.sh without Node (s)", (i.ms / 1000).toFixed(1));
    expect(i.code, i.stdout).toBe(0);
    expect(i.stdout).not.toMatch(/building/);
    expect(must("/usr/local/sbin/virt-hooks --version")).toBe(`virt-hooks ${version}\n`);
    expect(must("cat /etc/libvirt/hooks/qemu.d/00-previous-hook")).toBe(ADMIN_HOOK);
    for (const u of STARTED) expect(state(u), u).toMatch(UP);
    const ms = await waitConnect(host, 8080, 5000);
    fig("forward carries TCP after the tarball's install.sh (ms)", ms);
    expect(ms, diagnose(host)).toBeGreaterThanOrEqual(0);
    const u = host.execSync(`cd /root/tar/virt-hooks-${version}-linux-x64 && ./install.sh --uninstall 2>&1`);
    expect(u.code, u.stdout).toBe(0);
    expect(must("cat /etc/libvirt/hooks/qemu")).toBe(ADMIN_HOOK);
    expect(ours()).toEqual({ ipt: [], nft: [] });
    expect(connectOnce(host, 8080)).toBe(false);
  });
  // Debian 12 only (see the top): Debian's rpm, as this machine's apt fetches it.
  if (t.debian !== 12) return;

  it("the .rpm with systemd live: rpm -i moves the admin's hook aside, presets and starts the units, reloads libvirtd; the forward carries TCP", async () => {
    // dpkg, not apt: apt would fetch the archive's copies of these same versions.
    const a = host.execSync("cd /root/pkg/rpm-debs && DEBIAN_FRONTEND=noninteractive dpkg -i ./*.deb 2>&1");
    expect(a.code, a.stdout).toBe(0);
    const reloads = () => Number(host.execSync("journalctl -u libvirtd -o cat --no-pager | grep -c Reload || true").stdout.trim());
    const before = reloads();
    const r = host.execSync(`rpm -i --nodeps --force-debian /root/pkg/${RPM1} 2>&1`);
    fig("rpm -i (s)", (r.ms / 1000).toFixed(1));
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain("your existing /etc/libvirt/hooks/qemu now runs as /etc/libvirt/hooks/qemu.d/00-previous-hook");
    expect(must("cat /etc/libvirt/hooks/qemu.d/00-previous-hook")).toBe(ADMIN_HOOK);
    // Enabled by the preset alone (%post runs `systemctl preset`), as on Fedora.
    for (const u of UNITS) expect(host.execSync(`systemctl is-enabled ${u}`).stdout.trim(), u).toBe("enabled");
    for (const u of STARTED) expect(state(u), u).toMatch(UP);
    expect(reloads()).toBeGreaterThan(before);
    const ms = await waitConnect(host, 8080, 5000);
    fig("forward carries TCP after rpm -i (ms)", ms);
    expect(ms, diagnose(host)).toBeGreaterThanOrEqual(0);
  });

  it("rpm -U to the next build: the forward never fails while probed every ~100 ms", async () => {
    const probe = Probe.start(host, 8080, "rpm-upgrade", { giveUpMs: 900 });
    await sleep(1500);
    const u0 = Date.now();
    const r = await host.exec(`rpm -U --nodeps --force-debian /root/pkg/${RPM2} 2>&1`);
    await sleep(3000);
    const samples = probe.stop();
    expect(r.code, r.stdout).toBe(0);
    const during = samples.filter((s) => s.t >= u0 - 1000);
    fig("rpm -U (s)", (r.ms / 1000).toFixed(1));
    fig("rpm -U: probe attempts / failed", `${during.length} / ${during.filter((s) => !s.ok).length}`);
    expect(during.length).toBeGreaterThan(20);
    expect(during.filter((s) => !s.ok), diagnose(host)).toEqual([]);
    expect(must("rpm -q virt-hooks").trim()).toBe(`virt-hooks-${version}-2.x86_64`);
    expect(must("cat /etc/libvirt/hooks/qemu.d/00-previous-hook")).toBe(ADMIN_HOOK);
    for (const u of STARTED) expect(state(u), u).toMatch(UP);
  });

  it("rpm -e: units stopped and disabled, our firewall objects gone, the admin's hook back, nothing of ours left but the record", () => {
    const r = host.execSync("rpm -e virt-hooks 2>&1");
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain("restored your previous /etc/libvirt/hooks/qemu");
    for (const u of UNITS) expect(state(u), u).not.toBe("active");
    expect(host.execSync("systemctl list-unit-files 'virt-hooks*' --no-legend").stdout.trim()).toBe("");
    expect(host.execSync("ls /etc/systemd/system/*/ | grep virt-hooks").stdout).toBe("");
    expect(ours()).toEqual({ ipt: [], nft: [] });
    expect(must("cat /etc/libvirt/hooks/qemu")).toBe(ADMIN_HOOK);
    expect(connectOnce(host, 8080)).toBe(false);
    const left = host.execSync(`find / -xdev \\( -path /proc -o -path /sys -o -path /root -o -path /tmp -o -path /var/log/journal -o -path /var/lib/rpm \\) -prune -o \\( -name '*virt-hooks*' -o -name '*virt_hooks*' -o -name '00-previous-hook' \\) -print`).stdout;
    // rpm has no purge: the record of the DHCP host entries stays, as they do.
    expect(left.trim().split("\n").filter((l) => l && l !== "/var/lib/libvirt/virt-hooks")).toEqual([]);
    expect(host.execSync("systemctl is-active libvirtd").stdout.trim()).toBe("active");
  });
});
