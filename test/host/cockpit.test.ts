// Browser tier (issue 30): Cockpit's "Port forwards" page in a real browser,
// against real cockpit-ws + cockpit-bridge and real libvirt on booted Debian hosts:
// Debian 12's Cockpit 287 (target stock) and Debian 13's 337 (target trixie),
// virt-hooks installed by the README's command (install.sh; with this machine's
// build, which install.test.ts proves from source on every target).
// Debian's Chromium runs headless on this machine inside the booted host's network
// namespace (nsenter --net), driven by puppeteer-core over a pipe (no port, nothing
// downloaded). cockpit-ws listens on the host's loopback only:
//   :9190 as root (administrative access)  :9191 as user "viewer" (none); Debian's
// cockpit.socket keeps 9090 (TLS and a login) for itself.
// Screenshots of each state go to dist/test-artifacts/cockpit/TARGET/ (VH_COCKPIT_SHOTS).
// Figures are printed with a "browser-tier TARGET:" prefix.
import { afterAll, beforeAll, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import type { Host } from "./lab/boot.js";
import { bootTarget, describeTargets, rootOf } from "./lab/targets.js";
import { addClient, addGuest, connectOnce, copyCheckout, diagnose, installFromCheckout, startDefaultNetwork, type Guest } from "./lab/scene.js";

const REPO = resolve(__dirname, "../..");
const CHROMIUM = process.env.VH_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS_ROOT = process.env.VH_COCKPIT_SHOTS ?? join(REPO, "dist/test-artifacts/cockpit");
const OWN = "/etc/libvirt/hooks/rules.d/60-cockpit.rules";
const ADMIN_FILE = "/etc/libvirt/hooks/rules.d/10-admin.rules";
const PAGE = "/cockpit/@localhost/virt-hooks/index.html";
const WEB: Guest = { name: "web", mac: "52:54:00:77:00:50", ip: "192.168.122.50", ports: [80, 22], ns: "guest", veth: "vg" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The README's install (./install.sh in the checkout) with this machine's build, binary
 * and page, when it is newer than their sources here (install.test.ts builds from source
 * on every target; this file's subject is the page, and the build costs ~1 min a target).
 * The copies are touched after the checkout is unpacked: the unpacked tree's directories
 * are new, and install.sh would take them for newer sources. A stale build: install.sh builds.
 */
function install(host: Host): { code: number; output: string; ms: number } {
  const fresh = spawnSync("sh", ["-c", `cd "$1" && [ -x dist/virt-hooks ] && [ -f dist/cockpit/index.js ] \
    && [ -z "$(find src package.json -newer dist/virt-hooks -print -quit)" ] && [ -z "$(find cockpit -newer dist/cockpit/index.js -print -quit)" ]`, "x", REPO]).status === 0;
  if (!fresh) return installFromCheckout(host, REPO);
  copyCheckout(host, REPO, "/root/virt-hooks");
  host.copyIn(REPO, ["dist/virt-hooks", "dist/cockpit"], "/root/virt-hooks");
  const r = host.execSync("cd /root/virt-hooks && touch dist/virt-hooks dist/cockpit/index.js && npm_config_offline=true ./install.sh 2>&1");
  return { code: r.code, output: r.stdout, ms: r.ms };
}

describeTargets("cockpit", "browser tier: Cockpit's Port forwards page", (t) => {
  const SHOTS = join(SHOTS_ROOT, t.name);
  const fig = (k: string, v: string | number) => console.log(`browser-tier ${t.name}: ${k}: ${v}`);
  let host: Host;
  let browser: Browser;
  let admin: Page;
  let profile: string;
  const wsPids: number[] = [];

  const sh = (cmd: string) => {
    const r = host.execSync(cmd);
    if (r.code !== 0) throw new Error(`${cmd}: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const shot = async (p: Page, name: string) => { await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true }); };
  const onDisk = (f: string) => host.execSync(`cat ${f} 2>/dev/null || echo '<absent>'`).stdout;
  const row = (suffix: string) => `tr.vh-rule[data-origin$="${suffix}"]`;
  const rowState = (p: Page, suffix: string) => p.$eval(row(suffix), (e) => e.getAttribute("data-state")).catch(() => null);
  const waitRowState = (p: Page, suffix: string, state: string, ms = 20_000) =>
    p.waitForFunction((sel, st) => document.querySelector(sel)?.getAttribute("data-state") === st, { timeout: ms, polling: 200 }, row(suffix), state);
  const typeInto = async (p: Page, sel: string, text: string) => {
    await p.click(sel, { count: 3 }); await p.keyboard.press("Backspace"); await p.type(sel, text);
  };
  /** Clicks `sel`, then ms until a TCP connection to `port` succeeds (open) or fails (closed); -1 if not within 20 s. */
  const clickUntilTcp = async (p: Page, sel: string, port: number, open: boolean): Promise<number> => {
    const t0 = Date.now();
    await p.click(sel);
    while (Date.now() - t0 < 20_000) { if (connectOnce(host, port) === open) return Date.now() - t0; await sleep(50); }
    return -1;
  };
  const text = (p: Page, sel: string) => p.$eval(sel, (e) => (e as HTMLElement).innerText);

  async function openPage(port: number): Promise<{ page: Page; ms: number }> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    page.on("console", (m) => { if (m.type() === "error") console.log(`browser-console(${port}): ${m.text()}`); });
    const t0 = Date.now();
    await page.goto(`http://127.0.0.1:${port}${PAGE}`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector("#vh-rules tr.vh-rule, #vh-error", { timeout: 60_000 });
    return { page, ms: Date.now() - t0 };
  }

  let started = 0;
  beforeAll(async () => {
    started = Date.now();
    // test/run-all.sh installs it; a missing browser fails the tier rather than skip it.
    if (!existsSync(CHROMIUM)) throw new Error(`no ${CHROMIUM}: apt-get install chromium (or set VH_CHROMIUM)`);
    host = await bootTarget(t, rootOf(t, REPO), `vh-ck-${t.name}-${process.pid}`);
    fig("Cockpit", host.execSync("dpkg-query -W -f '${Version}' cockpit-bridge").stdout);
    const inst = install(host);
    if (inst.code !== 0) throw new Error(`install.sh failed:\n${inst.output}`);
    fig("install.sh (s)", `${(inst.ms / 1000).toFixed(1)}${/building dist/.test(inst.output) ? " (built from source)" : " (this machine's build)"}`);
    startDefaultNetwork(host);
    addGuest(host, WEB);
    addClient(host);
    // The admin's own file: the page must show it and never write it.
    sh(`printf '%s\\n' 'host default ${WEB.mac} ${WEB.ip} web' 'forward tcp 8080 to web:80' > ${ADMIN_FILE} && virt-hooks apply >/dev/null`);
    // cockpit-ws on the booted host's loopback: one session as root, one as a user without sudo.
    sh("id viewer >/dev/null 2>&1 || useradd -m viewer");
    wsPids.push(Number(sh(`setsid /usr/lib/cockpit/cockpit-ws --no-tls --local-session=cockpit-bridge --address 127.0.0.1 --port 9190 </dev/null >/tmp/ws-root.log 2>&1 & echo $!`).trim()));
    wsPids.push(Number(sh(`env -C /home/viewer HOME=/home/viewer USER=viewer LOGNAME=viewer setsid setpriv --reuid=viewer --regid=viewer --init-groups /usr/lib/cockpit/cockpit-ws --no-tls --local-session=cockpit-bridge --address 127.0.0.1 --port 9191 </dev/null >/tmp/ws-viewer.log 2>&1 & echo $!`).trim()));
    // (A simple command put in the background: $! is cockpit-ws itself, and nothing keeps the command's output open.)
    sh("for i in $(seq 50); do ss -ltn | grep -q ':9191 ' && ss -ltn | grep -q ':9190 ' && exit 0; sleep 0.2; done; exit 1");
    // The browser: this machine's Chromium, in the booted host's network namespace.
    profile = mkdtempSync(join(tmpdir(), "vh-chromium-"));
    const wrapper = join(profile, "chromium-in-host");
    writeFileSync(wrapper, `#!/bin/sh\nexec nsenter --net=/proc/${host.pid}/ns/net ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    mkdirSync(SHOTS, { recursive: true });
    browser = await puppeteer.launch({
      executablePath: wrapper, pipe: true, headless: true, userDataDir: join(profile, "profile"),
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
    });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    if (host) {
      for (const pid of wsPids) if (pid) host.execSync(`kill ${pid} 2>/dev/null; true`);
      await host.stop();
    }
    if (started) fig("this target's pass, boot to halt (s)", ((Date.now() - started) / 1000).toFixed(0));
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("lists the live forwards of a running guest; the counters grow with real TCP", async () => {
    const { page, ms } = await openPage(9190);
    admin = page;
    fig("page load, navigation to rules shown (ms)", ms);
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
      return Math.round(n.loadEventEnd);
    });
    fig("page load event (ms)", nav);
    await waitRowState(page, "10-admin.rules:2", "live");
    expect(await text(page, row("10-admin.rules:2"))).toContain("192.168.122.50:80");
    expect(await text(page, "#vh-watcher")).toMatch(/running/);
    const before = Number(await text(page, `${row("10-admin.rules:2")} .vh-conn`)) || 0;
    for (let i = 0; i < 5; i++) expect(connectOnce(host, 8080)).toBe(true);
    await page.waitForFunction((sel, n) => Number((document.querySelector(sel) as HTMLElement)?.innerText) >= n,
      { timeout: 15_000, polling: 250 }, `${row("10-admin.rules:2")} .vh-conn`, before + 5);
    fig("connections counter (before → after 5 TCP connections)", `${before} → ${await text(page, `${row("10-admin.rules:2")} .vh-conn`)}`);
    // The admin's rule is not the page's to edit.
    expect(await page.$(`${row("10-admin.rules:2")} .vh-edit`)).toBeNull();
    await shot(page, "01-live-forwards");
  });

  it("per guest: its name links to its rules alone (#/?guest=NAME, a deep link to share)", async () => {
    const page = admin;
    await page.click(`${row("10-admin.rules:2")} .vh-guest`);
    await page.waitForSelector("#vh-filter");
    expect(await page.evaluate(() => location.hash)).toContain("guest=web");
    expect(await page.$$eval("tr.vh-rule", (r) => r.length)).toBe(1);
    await page.evaluate(() => { location.hash = "#/?guest=nosuchguest"; });
    await page.waitForFunction(() => document.querySelectorAll("tr.vh-rule").length === 0, { timeout: 10_000 });
    await page.click("#vh-show-all");
    await page.waitForFunction(() => !document.querySelector("#vh-filter") && document.querySelectorAll("tr.vh-rule").length === 1, { timeout: 10_000 });
  });

  it("adding a fixed address and a forward in the page makes real TCP from the client reach the guest", async () => {
    const page = admin;
    expect(onDisk(OWN)).toContain("<absent>");
    // A fixed address for a second NIC (not running: libvirt's network gets the entry).
    await page.click("#vh-add-host");
    await page.waitForSelector("#vh-form #vh-mac");
    await typeInto(page, "#vh-mac", "52:54:00:77:00:51");
    await typeInto(page, "#vh-ip", "192.168.122.51");
    await typeInto(page, "#vh-name", "spare");
    await page.click("#vh-check");
    await page.waitForSelector("#vh-plan", { timeout: 30_000 });
    expect(await text(page, "#vh-cmdline")).toContain("virt-hooks check --json --rules-dir");
    await page.click("#vh-save");
    await page.waitForSelector("#vh-result", { timeout: 30_000 });
    expect(await text(page, "#vh-result")).toMatch(/apply succeeded/);
    expect(onDisk(OWN)).toContain("host default 52:54:00:77:00:51 192.168.122.51 spare");
    expect(sh("virsh net-dumpxml default")).toContain("192.168.122.51");
    await page.waitForSelector(`tr.vh-host[data-origin$="60-cockpit.rules:3"][data-state="live"]`, { timeout: 15_000 });

    // The forward: 2022 → web:22.
    expect(connectOnce(host, 2022)).toBe(false);
    await page.click("#vh-add-forward");
    await page.waitForSelector("#vh-form #vh-host-port");
    await typeInto(page, "#vh-host-port", "2022");
    await typeInto(page, "#vh-guest", "web");
    await typeInto(page, "#vh-guest-port", "22");
    await page.click("#vh-check");
    await page.waitForSelector("#vh-plan", { timeout: 30_000 });
    expect(await text(page, "#vh-plan")).toMatch(/rule\(s\) added/);
    await shot(page, "03-add-forward-plan");
    const flowing = await clickUntilTcp(page, "#vh-save", 2022, true);
    if (flowing < 0) console.log(diagnose(host));
    expect(flowing).toBeGreaterThanOrEqual(0);
    fig("Apply click to first TCP connection through the new forward (ms)", flowing);
    await page.waitForSelector("#vh-result", { timeout: 30_000 });
    expect(await text(page, "#vh-cmdline")).toContain("sudo virt-hooks apply");
    await waitRowState(page, "60-cockpit.rules:4", "live");
    expect(onDisk(OWN)).toMatch(/^forward tcp 2022 to web:22$/m);
    expect(onDisk(ADMIN_FILE)).toBe(`host default ${WEB.mac} ${WEB.ip} web\nforward tcp 8080 to web:80\n`);
    await shot(page, "04-forward-added");

    // Edit: its host port 2022 → 2122, the line kept in place.
    await page.click(`${row("60-cockpit.rules:4")} .vh-edit`);
    await page.waitForSelector("#vh-form #vh-host-port");
    expect(await page.$eval("#vh-host-port", (e) => (e as HTMLInputElement).value)).toBe("2022");
    await typeInto(page, "#vh-host-port", "2122");
    await page.click("#vh-check");
    await page.waitForSelector("#vh-plan", { timeout: 30_000 });
    const moved = await clickUntilTcp(page, "#vh-save", 2122, true);
    expect(moved).toBeGreaterThanOrEqual(0);
    fig("Edit (port 2022 → 2122): Apply click to TCP through the new port (ms)", moved);
    await page.waitForSelector("#vh-result", { timeout: 30_000 });
    expect(connectOnce(host, 2022)).toBe(false);
    expect(onDisk(OWN).split("\n")[3]).toBe("forward tcp 2122 to web:22");
  });

  it("a user without administrative access sees the page read-only, with how to gain it", async () => {
    // "viewer" (no sudo rights): Cockpit's Limited access, its superuser method (sudo) configured, none on.
    const { page, ms } = await openPage(9191);
    fig("page load as viewer (ms)", ms);
    await page.waitForSelector("#vh-readonly", { timeout: 15_000 });
    const notice = await text(page, "#vh-readonly");
    fig("viewer's notice", notice.replace(/\s+/g, " ").slice(0, 400));
    expect(notice).toMatch(/Limited access/);
    expect(notice).toMatch(/Turn on administrative access/);
    // The rules as written, states unknown: an unprivileged status sees neither the firewall nor libvirt's guests
    // (it would say "waiting: domain not running" of a live forward).
    await page.waitForSelector(`${row("10-admin.rules:2")}[data-state="unknown"]`, { timeout: 15_000 });
    const states = await page.$$eval("tr.vh-rule, tr.vh-host", (rs) => [...new Set(rs.map((r) => r.getAttribute("data-state")))]);
    expect(states).toEqual(["unknown"]);
    expect(await text(page, "#vh-watcher")).toMatch(/needs administrative access/);
    fig("viewer sees", `${await page.$$eval("tr.vh-rule", (r) => r.length)} rules and ${await page.$$eval("tr.vh-host", (r) => r.length)} fixed addresses as written, state "unknown", watcher "${await text(page, "#vh-watcher")}"`);
    // No control that changes anything is enabled: add, edit, remove, apply, save.
    const enabled = () => page.$$eval("#vh-add-forward, #vh-add-host, .vh-edit, .vh-remove, #vh-drift-apply, #vh-save, #vh-check",
      (bs) => bs.filter((b) => !(b as HTMLButtonElement).disabled && b.getAttribute("aria-disabled") !== "true").map((b) => b.id || b.className));
    expect(await enabled()).toEqual([]);
    expect(await page.$$eval(".vh-edit, .vh-remove", (b) => b.length)).toBeGreaterThan(0); // the page's own rules: shown, disabled
    await shot(page, "02-read-only");
    // The way to gain access: its button (Cockpit's superuser API, as the top bar's Limited access button).
    // Not clicked: these hosts have no sudo (the method Debian's Cockpit configures), so nothing could grant it.
    expect(await page.$eval("#vh-unlock", (b) => (b as HTMLButtonElement).disabled)).toBe(false);
    await page.close();
  });

  it("a bad port or an unknown guest shows the inline error and changes nothing on disk", async () => {
    const page = admin;
    const before = onDisk(OWN);
    for (const [port, guest, want] of [["99999", "web", /error/], ["2023", "nosuchguest", /nosuchguest/]] as const) {
      await page.click("#vh-add-forward");
      await page.waitForSelector("#vh-form #vh-host-port");
      await typeInto(page, "#vh-host-port", port);
      await typeInto(page, "#vh-guest", guest);
      await typeInto(page, "#vh-guest-port", "22");
      await page.click("#vh-check");
      await page.waitForSelector("#vh-check-errors", { timeout: 30_000 });
      const msg = await text(page, "#vh-check-errors");
      fig(`inline error for port ${port} guest ${guest}`, msg.replace(/\s+/g, " ").slice(0, 300));
      expect(msg).toMatch(want);
      expect(msg).toContain("60-cockpit.rules:5"); // file:line(:col) of the statement it would add
      expect(await page.$eval("#vh-save", (b) => (b as HTMLButtonElement).disabled)).toBe(true);
      if (port === "99999") await shot(page, "05-bad-port");
      else await shot(page, "06-unknown-guest");
    }
    expect(onDisk(OWN)).toBe(before);
    expect(connectOnce(host, 2023)).toBe(false);
  });

  it("a concurrent edit of the same file is refused with a message", async () => {
    const page = admin;
    await page.click("#vh-add-forward"); // the form reads the file (and its tag) now
    await page.waitForSelector("#vh-form #vh-host-port");
    sh(`echo '# edited by hand meanwhile' >> ${OWN}`);
    const theirs = onDisk(OWN);
    await typeInto(page, "#vh-host-port", "2024");
    await typeInto(page, "#vh-guest", "web");
    await typeInto(page, "#vh-guest-port", "22");
    await page.click("#vh-check");
    await page.waitForSelector("#vh-plan", { timeout: 30_000 });
    await page.click("#vh-save");
    await page.waitForSelector("#vh-result", { timeout: 30_000 });
    const msg = await text(page, "#vh-result");
    fig("concurrent edit", msg.replace(/\s+/g, " ").slice(0, 200));
    expect(msg).toMatch(/changed by someone else/);
    expect(onDisk(OWN)).toBe(theirs);
    expect(connectOnce(host, 2024)).toBe(false);
    await shot(page, "07-concurrent-edit");
  });

  it("removing the forward closes the port", async () => {
    const page = admin;
    expect(connectOnce(host, 2122)).toBe(true);
    await page.click(`${row("60-cockpit.rules:4")} .vh-remove`);
    await page.waitForSelector("#vh-plan", { timeout: 30_000 });
    expect(await text(page, "#vh-plan")).toMatch(/removed/);
    const closed = await clickUntilTcp(page, "#vh-save", 2122, false);
    expect(closed).toBeGreaterThanOrEqual(0);
    fig("Apply click to the removed port refusing (ms)", closed);
    await page.waitForSelector("#vh-result", { timeout: 30_000 });
    expect(onDisk(OWN)).not.toMatch(/2122/);
    await page.waitForFunction((sel) => !document.querySelector(sel), { timeout: 15_000 }, `tr.vh-rule[data-origin$="60-cockpit.rules:4"]`);
    expect(connectOnce(host, 8080)).toBe(true);
  });

  it("the watcher's repair shows; with the watcher stopped a flushed chain shows as drift and its button repairs it", async () => {
    const page = admin;
    await page.$eval("#vh-result button", (b) => (b as HTMLButtonElement).click()).catch(() => {}); // the last save's message
    // Watcher running: it repairs the flush itself; the page shows its last repair.
    // (An earlier repair may show already: the page's own saves are rules.d events to the watcher.)
    const earlier = await text(page, "#vh-repair");
    sh("iptables -t nat -F VIRT_HOOKS_PRE");
    await page.waitForFunction((was) => {
      const now = (document.querySelector("#vh-repair") as HTMLElement)?.innerText ?? "";
      return now !== was && /netfilter|firewall/.test(now);
    }, { timeout: 20_000, polling: 250 }, earlier);
    fig("watcher's last repair as shown", await text(page, "#vh-repair"));
    expect(connectOnce(host, 8080)).toBe(true);
    // Watcher and timer stopped: the drift stays until the page's button.
    sh("systemctl stop virt-hooks-watch.service virt-hooks-apply.timer");
    sh("iptables -t nat -F VIRT_HOOKS_PRE");
    expect(connectOnce(host, 8080)).toBe(false);
    const t0 = Date.now();
    await page.waitForSelector("#vh-drift", { timeout: 20_000 });
    fig("flush to drift shown, by polling (ms)", Date.now() - t0);
    await waitRowState(page, "10-admin.rules:2", "drifted");
    expect(await text(page, "#vh-watcher")).toMatch(/not running/);
    await shot(page, "08-drift");
    const back = await clickUntilTcp(page, "#vh-drift-apply", 8080, true);
    expect(back).toBeGreaterThanOrEqual(0);
    fig("drift Apply click to traffic flowing again (ms)", back);
    await page.waitForFunction(() => !document.querySelector("#vh-drift"), { timeout: 20_000 });
    await waitRowState(page, "10-admin.rules:2", "live");
    await shot(page, "09-drift-repaired");
    sh("systemctl start virt-hooks-watch.service virt-hooks-apply.timer");
  });
});
