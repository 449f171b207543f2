// The attacker of the hostile tier: a real unprivileged uid (65534, "nobody")
// with no groups, run by setpriv, inside the test's own private namespaces.
// Everything it starts is stopped by PID at the end of the test.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync } from "node:fs";
import { dirname } from "node:path";
import { HostTree, run, SYSTEM_PATH, type Run } from "../helpers/binary.js";
import { fixture } from "../helpers/fixtures.js";
import type { Netns } from "../helpers/netns.js";

export const NOBODY = 65534;
/** Debian's own python3: the attacker has no access to root's toolchains. */
export const PYTHON = "/usr/bin/python3";

/** argv run as uid/gid 65534 with no supplementary groups. */
export const asNobody = (argv: readonly string[]): string[] => ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--", ...argv];

/** A long-running process (run as given, e.g. inside a netns), killed by its PID in `stop`. */
export class Background {
  private constructor(private readonly child: ChildProcess, private out: string) {}

  /** Starts `argv` and waits until it prints `ready` on stdout (bounded). */
  static async start(argv: readonly string[], ready: string, timeoutMs = 10_000): Promise<Background> {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { PATH: SYSTEM_PATH, LC_ALL: "C" } });
    const b = new Background(child, "");
    child.stderr!.setEncoding("utf8").on("data", (c: string) => (b.out += c));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${argv.join(" ")} not ready in ${timeoutMs} ms: ${b.out}`)), timeoutMs);
      child.once("exit", (code) => reject(new Error(`${argv.join(" ")} exited ${code}: ${b.out}`)));
      child.stdout!.setEncoding("utf8").on("data", (c: string) => {
        b.out += c;
        if (b.out.includes(ready)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    return b;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get output(): string {
    return this.out;
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

/** A tree the attacker can walk (0755 from its root down to rules.d and run/), as a real host's /etc and /run are. */
export function walkableTree(t: HostTree): HostTree {
  for (let d = t.rulesDir; d.startsWith(t.root); d = dirname(d)) chmodSync(d, 0o755);
  return t;
}

/** vm1 running on the default network, with two forwards: the guest the attacks aim at. */
export function vm1Tree(): HostTree {
  const t = walkableTree(new HostTree("virt-hooks-hostile-"));
  t.setNetwork("default", fixture("status-network-default.xml"));
  t.setDomainStatus("vm1", fixture("status-qemu-vm1.xml"));
  t.writeRules("50-vm1.rules", "forward tcp 2222 to vm1:22\nforward tcp 2223 to vm1:23\n");
  return t;
}

export const START = "qemu vm1 start begin -";
export const startXml = () => fixture("05-qemu-start-begin.xml");

/** `rules N live` of the hook's summary line, or -1. */
export const liveCount = (r: Run) => Number(/rules (\d+) live/.exec(r.stderr)?.[1] ?? -1);

/** Runs argv with a hard time limit (SIGKILL): a hook that would hang reports 124-ish instead of hanging the tier. */
export async function bounded(argv: readonly string[], limitS: number, o: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run & { ms: number }> {
  const t0 = performance.now();
  const r = await run(["timeout", "-s", "KILL", String(limitS), ...argv], o);
  return { ...r, ms: performance.now() - t0 };
}

/** The DNAT rules in a namespace's nat table. */
export async function dnatRules(ns: Netns): Promise<string[]> {
  return (await ns.save(4)).split("\n").filter((l) => l.includes("-j DNAT"));
}
