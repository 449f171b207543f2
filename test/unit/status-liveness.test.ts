// A status file whose qemu is gone (between `stopped` and `release`) is a
// stopping domain, not a running one: readHostView leaves it out where it can
// see the pids (the /proc beside libvirt's run dir), and only there.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readHostView } from "../../src/effects/libvirt-state.js";
import { statusPid } from "../../src/libvirt/domain.js";

const FIXTURE = readFileSync(resolve(__dirname, "../fixtures/libvirt-11.3/status-qemu-vm1.xml"), "utf8");
const withPid = (name: string, pid: number) => FIXTURE.replace(/ pid='\d+'/, ` pid='${pid}'`).replaceAll("<name>vm1</name>", `<name>${name}</name>`);
/** Above any pid_max Linux allows (2^22): never a live process. */
const DEAD = 4_194_399;

describe("status files whose qemu is gone", () => {
  let root = "";
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function tree(withProc: boolean): string {
    root = mkdtempSync(join(tmpdir(), "vh-liveness-"));
    mkdirSync(join(root, "run/libvirt/qemu"), { recursive: true });
    mkdirSync(join(root, "run/libvirt/network"), { recursive: true });
    writeFileSync(join(root, "run/libvirt/qemu/up.xml"), withPid("up", process.pid));
    writeFileSync(join(root, "run/libvirt/qemu/stopping.xml"), withPid("stopping", DEAD));
    if (withProc) symlinkSync("/proc", join(root, "proc"));
    return join(root, "run/libvirt");
  }

  it("reads the pid libvirt records", () => {
    expect(statusPid(FIXTURE)).toBe(Number(/ pid='(\d+)'/.exec(FIXTURE)?.[1]));
    expect(statusPid("<domstatus state='running'><domain/></domstatus>")).toBeUndefined();
  });

  it("leaves out a domain whose qemu is gone, keeps one whose qemu runs", () => {
    expect([...readHostView(tree(true)).view.domains.keys()]).toEqual(["up"]);
  });

  it("judges nothing where it cannot see those pids (a scratch root without /proc)", () => {
    expect([...readHostView(tree(false)).view.domains.keys()].sort()).toEqual(["stopping", "up"]);
  });
});
