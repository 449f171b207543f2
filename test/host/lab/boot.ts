// A throwaway booted Debian host (docs/lab.md section 7): an overlay over a
// cached root (make-root.sh), mounted in a private mount namespace with a tmpfs
// /run, booted by systemd-nspawn with a private network. Commands run through
// nsenter into its PID; stop() kills nspawn by PID and removes the overlay.
// The host's firewall, network and /etc are never touched.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface Result { code: number; stdout: string; stderr: string; ms: number }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Builds (or reuses) the root for a target; returns its path. */
export function makeRoot(target: "stock" | "backports" | "trixie", repo: string): string {
  const r = spawnSync(join(repo, "test/host/make-root.sh"), [target], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (r.status !== 0) throw new Error(`make-root.sh ${target} failed (${r.status})`);
  return r.stdout.trim().split("\n").pop()!;
}

// Runs in the private mount namespace: overlay at $4 from lower $1, upper $2, work $3.
const BOOT = `set -e
mount --make-rprivate /
mount -t overlay overlay -o lowerdir="$1",upperdir="$2",workdir="$3" "$4"
mount -t tmpfs tmpfs /run
exec systemd-nspawn -b -D "$4" -M "$5" --register=no --keep-unit --private-network --console=passive --bind=/dev/net/tun`;

export class Host {
  private constructor(readonly name: string, readonly dir: string, private readonly nspawn: ChildProcess, public pid = 0) {}
  log = "";

  /** `files` (path -> contents) are laid over the root: written into the overlay's upper dir before it is mounted. */
  static async boot(root: string, name: string, files: Record<string, string> = {}): Promise<Host> {
    const dir = mkdtempSync(join(tmpdir(), `vh-host-${name}-`));
    for (const d of ["upper", "work", "merged"]) spawnSync("mkdir", ["-p", join(dir, d)]);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, "upper", path)), { recursive: true, mode: 0o755 });
      writeFileSync(join(dir, "upper", path), text, { mode: 0o644 });
    }
    const child = spawn("unshare", ["-m", "--propagation", "private", "sh", "-c", BOOT, "boot",
      root, join(dir, "upper"), join(dir, "work"), join(dir, "merged"), name], { stdio: ["ignore", "pipe", "pipe"] });
    const h = new Host(name, dir, child);
    child.stdout!.on("data", (b) => (h.log += b)); child.stderr!.on("data", (b) => (h.log += b));
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`nspawn exited ${child.exitCode}: ${h.log.slice(-2000)}`);
      if (!h.pid) h.pid = findInit(child.pid!);
      if (h.pid) {
        const s = h.execSync("systemctl is-system-running").stdout.trim();
        if (s === "running" || s === "degraded") return h;
      }
      await sleep(500);
    }
    await h.stop();
    throw new Error(`host ${name} did not boot: ${h.log.slice(-2000)}`);
  }

  execSync(cmd: string, input?: string): Result {
    const t = Date.now();
    const r = spawnSync("nsenter", ["-a", "-t", String(this.pid), "/usr/bin/env", "-i",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
      "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt", "bash", "-c", cmd],
      { encoding: "utf8", input, maxBuffer: 64 << 20 });
    return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "", ms: Date.now() - t };
  }

  /** Async variant, so probes can run while another command waits. */
  exec(cmd: string): Promise<Result> {
    const t = Date.now();
    return new Promise((res) => {
      const c = spawn("nsenter", ["-a", "-t", String(this.pid), "/usr/bin/env", "-i",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
        "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt", "bash", "-c", cmd]);
      let stdout = "", stderr = "";
      c.stdout.on("data", (b) => (stdout += b)); c.stderr.on("data", (b) => (stderr += b));
      c.on("close", (code) => res({ code: code ?? -1, stdout, stderr, ms: Date.now() - t }));
    });
  }

  /** Copies a host directory's listed files into the container at dest (tar through nsenter). */
  copyIn(src: string, files: string[], dest: string): void {
    const tar = spawnSync("tar", ["-C", src, "-cf", "-", ...files], { maxBuffer: 1 << 30 });
    this.untar(tar.stdout, dest);
  }

  /** Unpacks a tar archive into the container at dest. */
  untar(archive: Buffer, dest: string): void {
    const r = spawnSync("nsenter", ["-a", "-t", String(this.pid), "sh", "-c", `mkdir -p "$1" && tar -C "$1" -xf -`, "x", dest], { input: archive });
    if (r.status !== 0) throw new Error(`untar into ${dest} failed: ${r.stderr}`);
  }

  async stop(): Promise<void> {
    if (this.nspawn.exitCode === null) {
      this.nspawn.kill("SIGTERM");
      for (let i = 0; i < 60 && this.nspawn.exitCode === null; i++) await sleep(250);
      if (this.nspawn.exitCode === null) this.nspawn.kill("SIGKILL");
    }
    // The overlay lived only in the dead mount namespace; the upper dir is ours.
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** nspawn's child (the container's init): the child of unshare's sh-exec'd nspawn. */
function findInit(nspawnPid: number): number {
  try {
    const kids = readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    for (const k of kids) {
      const inner = readFileSync(`/proc/${k}/task/${k}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
      if (readFileSync(`/proc/${k}/comm`, "utf8").trim() === "systemd-nspawn" && inner[0]) return Number(inner[0]);
      if (readFileSync(`/proc/${k}/comm`, "utf8").trim() === "systemd") return Number(k);
    }
    if (readFileSync(`/proc/${nspawnPid}/comm`, "utf8").trim() === "systemd-nspawn" && kids[0]) {
      const c = readFileSync(`/proc/${kids[0]}/comm`, "utf8").trim();
      if (c === "systemd") return Number(kids[0]);
      const inner = readFileSync(`/proc/${kids[0]}/task/${kids[0]}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
      if (inner[0]) return Number(inner[0]);
    }
  } catch { /* not yet */ }
  return 0;
}
