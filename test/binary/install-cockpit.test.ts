// Binary tier, installer: Cockpit's page staged by ./install.sh (DESTDIR, never
// this machine's /usr): under PREFIX/share/cockpit/virt-hooks with its manifest's
// condition naming the installed binary, and gone again after --uninstall.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO, requireBinary } from "../helpers/binary.js";

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe("install.sh: the Cockpit page", () => {
  it.each(["/usr", "/usr/local"])("stages it under %s/share/cockpit/virt-hooks, conditioned on that binary; --uninstall removes it", (prefix) => {
    requireBinary();
    expect(existsSync(join(REPO, "dist/cockpit/index.js")), "npm run build makes dist/cockpit").toBe(true);
    const dest = mkdtempSync(join(tmpdir(), "vh-cockpit-stage-")); dirs.push(dest);
    const run = (...a: string[]) => spawnSync(join(REPO, "install.sh"), ["--no-build", "--prefix", prefix, ...a],
      { encoding: "utf8", env: { ...process.env, DESTDIR: dest } });
    const r = run();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Cockpit page in ${prefix}/share/cockpit/virt-hooks`);
    const page = join(dest, prefix, "share/cockpit/virt-hooks");
    expect(readdirSync(page).sort()).toEqual(["index.css", "index.html", "index.js", "manifest.json"]);
    const manifest = JSON.parse(readFileSync(join(page, "manifest.json"), "utf8"));
    expect(manifest.conditions).toEqual([{ "path-exists": `${prefix}/sbin/virt-hooks` }]);
    expect(manifest.menu.index.label).toBe("Port forwards");
    expect(readFileSync(join(page, "index.html"), "utf8")).toContain('src="../base1/cockpit.js"');
    const u = run("--uninstall");
    expect(u.status, u.stderr).toBe(0);
    expect(existsSync(join(dest, prefix, "share/cockpit"))).toBe(false);
  });
});
