// The compiled executable as libvirt and admins run it: a scratch VIRT_HOOKS_ROOT
// tree (rules.d, libvirt's status files), the hook symlinks, and a spawn that
// takes argv arrays only (never a shell string built from values).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fixture } from "./fixtures.js";

export const REPO = resolve(import.meta.dirname, "..", "..");
/** The single executable under test (override with VIRT_HOOKS_BINARY for experiments). */
export const BINARY = process.env.VIRT_HOOKS_BINARY ?? join(REPO, "dist", "virt-hooks");
export const isRoot = process.getuid?.() === 0;
/** The PATH libvirtd hands its hooks on Debian; the product adds sbin itself if missing. */
export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function requireBinary(): string {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run npm run build first`);
  return BINARY;
}

export interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs argv (argv[0] is looked up in env.PATH), feeds input, collects everything. */
export function run(argv: readonly string[], o: RunOptions = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { env: o.env ?? { PATH: SYSTEM_PATH, LC_ALL: "C" }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.once("error", fail);
    // A hook that exits before reading all of stdin closes the pipe under us: not our concern here.
    child.stdin.on("error", () => {});
    child.stdin.end(o.input ?? "");
    child.once("close", (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

export interface DhcpHost {
  readonly mac: string;
  readonly name: string;
  readonly ip: string;
}

/**
 * libvirt's `default` network as captured, with more DHCP hosts and optional extra <ip> blocks:
 * its status file, or (`hook`) the <hookData> that `network default started begin -` gets on stdin.
 */
export function networkStatusXml(hosts: readonly DhcpHost[] = [], extraIpXml = "", kind: "status" | "hook" = "status"): string {
  const base = fixture(kind === "status" ? "status-network-default.xml" : "02-network-started-begin.xml");
  const anchor = "<host mac='52:54:00:6c:3c:01' name='vm1' ip='192.168.122.10'/>";
  if (!base.includes(anchor)) throw new Error("status-network-default.xml changed: update test/helpers/binary.ts");
  const more = hosts.map((h) => `\n        <host mac='${h.mac}' name='${h.name}' ip='${h.ip}'/>`).join("");
  return base.replace(anchor, anchor + more).replace("    </ip>\n", `    </ip>\n${extraIpXml}`);
}

const VM1_MAC = "52:54:00:6c:3c:01";

/** The captured vm1 XML renamed: `status` is /run/libvirt/qemu/NAME.xml, otherwise what `qemu NAME start begin -` gets on stdin. */
export function domainXml(name: string, mac: string, kind: "status" | "start" = "status"): string {
  const base = kind === "status" ? fixture("status-qemu-vm1.xml") : fixture("05-qemu-start-begin.xml");
  return base.replaceAll(VM1_MAC, mac).replaceAll("<name>vm1</name>", `<name>${name}</name>`).replace(/<uuid>[^<]*<\/uuid>/, "");
}

/** The four arguments libvirt passes, from "qemu devstack start begin -". */
export const hookArgs = (line: string): [driver: "qemu" | "network", args: string[]] => {
  const [driver, ...args] = line.trim().split(/\s+/);
  if (driver !== "qemu" && driver !== "network") throw new Error(`bad hook line ${line}`);
  return [driver, args];
};

/**
 * A scratch VIRT_HOOKS_ROOT: etc/libvirt/hooks/{qemu,network} are symlinks to the
 * binary (so argv0 names the driver, as with libvirt), rules.d, run/libvirt.
 */
export class HostTree {
  readonly root: string;
  readonly rulesDir: string;
  readonly hooksDir: string;
  readonly binDir: string;

  constructor(prefix = "virt-hooks-test-") {
    this.root = mkdtempSync(join(tmpdir(), prefix));
    this.hooksDir = join(this.root, "etc/libvirt/hooks");
    this.rulesDir = join(this.hooksDir, "rules.d");
    this.binDir = join(this.root, "bin");
    for (const d of [this.rulesDir, this.binDir, join(this.root, "run/libvirt/qemu"), join(this.root, "run/libvirt/network")]) mkdirSync(d, { recursive: true });
    for (const driver of ["qemu", "network"]) symlinkSync(requireBinary(), join(this.hooksDir, driver));
    symlinkSync(requireBinary(), join(this.binDir, "virt-hooks"));
  }

  /** The default network active (captured status file) with these DHCP hosts added. */
  static withDefaultNetwork(hosts: readonly DhcpHost[] = [], extraIpXml = ""): HostTree {
    const t = new HostTree();
    t.setNetwork("default", networkStatusXml(hosts, extraIpXml));
    return t;
  }

  writeRules(name: string, text: string): this {
    writeFileSync(join(this.rulesDir, name), text);
    return this;
  }

  removeRules(name: string): void {
    unlinkSync(join(this.rulesDir, name));
  }

  setNetwork(name: string, statusXml: string): void {
    writeFileSync(join(this.root, "run/libvirt/network", `${name}.xml`), statusXml);
  }

  /** A running domain: its status file as libvirt keeps it. */
  startDomain(name: string, mac: string): void {
    writeFileSync(join(this.root, "run/libvirt/qemu", `${name}.xml`), domainXml(name, mac));
  }

  setDomainStatus(name: string, statusXml: string): void {
    writeFileSync(join(this.root, "run/libvirt/qemu", `${name}.xml`), statusXml);
  }

  stopDomain(name: string): void {
    rmSync(join(this.root, "run/libvirt/qemu", `${name}.xml`), { force: true });
  }

  /** The environment libvirt gives a hook, plus our root. `pathFirst` goes ahead of the system PATH. */
  env(pathFirst?: string): NodeJS.ProcessEnv {
    return { VIRT_HOOKS_ROOT: this.root, PATH: pathFirst ? `${pathFirst}:${SYSTEM_PATH}` : SYSTEM_PATH, LC_ALL: "C" };
  }

  /** argv for a hook call through the driver-named symlink. */
  hookArgv(line: string): string[] {
    const [driver, args] = hookArgs(line);
    return [join(this.hooksDir, driver), ...args];
  }

  /** argv for the CLI, through a symlink named virt-hooks. */
  cliArgv(...args: string[]): string[] {
    return [join(this.binDir, "virt-hooks"), ...args];
  }

  /** A directory to put ahead of PATH holding fake tools (name -> bash script body). */
  fakeTools(tools: Record<string, string>): string {
    const dir = mkdtempSync(join(this.root, "fake-bin-"));
    for (const [name, body] of Object.entries(tools)) writeFileSync(join(dir, name), `#!/bin/bash --norc\n${body}\n`, { mode: 0o755 });
    return dir;
  }

  dispose(): void {
    // Guard against a typo'd root ever pointing anywhere else.
    if (!this.root.startsWith(join(tmpdir(), "virt-hooks-"))) throw new Error(`refusing to remove ${this.root}`);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The log lines the stderr sink wrote (each starts with "virt-hooks: "). */
export const logLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("virt-hooks: "));

/** A summary line: "<label>: ...; N ms". */
export const SUMMARY = (label: string) => new RegExp(`^virt-hooks: (?:warning: |error: )?${label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: .*; \\d+ ms$`);

export const hostNetns = () => readlinkSync("/proc/self/ns/net");

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** ms until `ok` holds, polled every `everyMs`, up to `limit`; Infinity if it never does. */
export async function msUntil(ok: () => Promise<boolean>, limit = 5000, everyMs = 50): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < limit) {
    if (await ok()) return Date.now() - t0;
    await sleep(everyMs);
  }
  return Infinity;
}
