// Private network namespaces for tests that touch iptables or links. A netns is
// held open by `unshare -n -- sleep` (killed by its PID at the end); every
// command runs through nsenter AND a guard that re-checks, inside, that the
// namespace is the test's one and not the host's (docs/lab.md section 6).
import { spawn, type ChildProcess } from "node:child_process";
import { readlinkSync } from "node:fs";
import { hostNetns, run, SYSTEM_PATH, type Run, type RunOptions } from "./binary.js";

// sh, not bash: bash reads ~/.bashrc when its stdin is a socket (node's pipes are socketpairs).
/** Refuses to exec unless /proc/self/ns/net is $1 and is not $2. Constant text; values are arguments. */
const GUARD = `ns=$(readlink /proc/self/ns/net)
if [ "$ns" != "$1" ] || [ "$ns" = "$2" ]; then echo "netns guard: in $ns, expected $1 (host $2): refusing to run $3" >&2; exit 125; fi
shift 2; exec "$@"`;

/** Refuses to exec in the host's namespace (for one-shot `unshare -n`). */
const GUARD_NOT_HOST = `ns=$(readlink /proc/self/ns/net)
if [ "$ns" = "$1" ]; then echo "netns guard: still in the host's $ns: refusing to run $2" >&2; exit 125; fi
shift; exec "$@"`;

/** argv that runs `argv` in a fresh, throw-away netns (loopback only, empty firewall), refusing the host's. */
export function unshared(argv: readonly string[]): string[] {
  return ["unshare", "-n", "--", "sh", "-c", GUARD_NOT_HOST, "guard", hostNetns(), ...argv];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Netns {
  private constructor(
    private readonly holder: ChildProcess,
    readonly pid: number,
    /** "net:[inode]" of the private namespace. */
    readonly id: string,
    private readonly host: string,
  ) {}

  static async create(): Promise<Netns> {
    const host = hostNetns();
    const holder = spawn("unshare", ["-n", "--", "sleep", "600"], { stdio: "ignore", env: { PATH: SYSTEM_PATH } });
    const pid = holder.pid;
    if (!pid) throw new Error("could not spawn unshare");
    // unshare(2) happens just after the spawn, then it execs sleep in the same process.
    let id = host;
    for (let i = 0; i < 500 && id === host; i++) {
      if (holder.exitCode !== null) throw new Error(`unshare -n exited with ${holder.exitCode}`);
      try {
        id = readlinkSync(`/proc/${pid}/ns/net`);
      } catch {
        /* not there yet */
      }
      if (id === host) await sleep(2);
    }
    if (id === host) {
      holder.kill();
      throw new Error("the private network namespace never appeared");
    }
    const ns = new Netns(holder, pid, id, host);
    const links = await ns.exec(["ip", "-o", "link", "show"]);
    const names = links.stdout.split("\n").filter(Boolean).map((l) => l.split(":")[1]?.trim());
    if (links.code !== 0 || names.join(",") !== "lo") {
      ns.dispose();
      throw new Error(`a fresh netns should hold only lo, found: ${names.join(",")} ${links.stderr}`);
    }
    await ns.must(["ip", "link", "set", "lo", "up"]);
    return ns;
  }

  /** argv that runs `argv` inside this namespace (guarded). */
  argv(argv: readonly string[]): string[] {
    return ["nsenter", `--net=/proc/${this.pid}/ns/net`, "--", "sh", "-c", GUARD, "guard", this.id, this.host, ...argv];
  }

  exec(argv: readonly string[], o: RunOptions = {}): Promise<Run> {
    return run(this.argv(argv), o);
  }

  /** exec, and throw with stderr unless it exits 0. */
  async must(argv: readonly string[], o: RunOptions = {}): Promise<Run> {
    const r = await this.exec(argv, o);
    if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r;
  }

  /** iptables-save / ip6tables-save without its "# Generated/Completed" comments. */
  async save(family: 4 | 6 = 4, counters = false): Promise<string> {
    const r = await this.must([family === 4 ? "iptables-save" : "ip6tables-save", ...(counters ? ["-c"] : [])]);
    return r.stdout.split("\n").filter((l) => !l.startsWith("#")).join("\n");
  }

  async restore(family: 4 | 6, text: string, noflush = false): Promise<void> {
    await this.must([family === 4 ? "iptables-restore" : "ip6tables-restore", ...(noflush ? ["--noflush"] : [])], { input: text });
  }

  iptables(family: 4 | 6, ...args: string[]): Promise<Run> {
    return this.must([family === 4 ? "iptables" : "ip6tables", "-w", ...args]);
  }

  dispose(): void {
    this.holder.kill("SIGKILL");
  }
}

/** Creates namespaces and disposes of all of them in afterEach/afterAll. */
export class NetnsPool {
  private readonly all: Netns[] = [];
  async create(): Promise<Netns> {
    const ns = await Netns.create();
    this.all.push(ns);
    return ns;
  }
  disposeAll(): void {
    for (const ns of this.all.splice(0)) ns.dispose();
  }
}

/** Rules of one table/chain from iptables-save text (with or without -c counters), as "-A CHAIN spec" lines in order. */
export function chainRules(save: string, table: string, chain: string): string[] {
  return tableLines(save, table).filter((l) => l.replace(/^\[\d+:\d+\] /, "").startsWith(`-A ${chain} `));
}

export function tableLines(save: string, table: string): string[] {
  const out: string[] = [];
  let current = "";
  for (const line of save.split("\n")) {
    if (line.startsWith("*")) current = line.slice(1);
    else if (current === table && line !== "COMMIT") out.push(line);
  }
  return out;
}

/** iptables-save text with every trace of ours removed: what must equal libvirt's untouched state. */
export const withoutOurs = (save: string) =>
  save
    .split("\n")
    .filter((l) => !l.includes("VIRT_HOOKS_"))
    .join("\n");

/** Strips per-rule and per-chain counters from iptables-save -c output. */
export const noCounters = (save: string) => save.replace(/^\[\d+:\d+\] /gm, "").replace(/ \[\d+:\d+\]$/gm, " [0:0]");
