// A private system bus in private namespaces: a network namespace (for nft)
// and a mount namespace whose /run is a fresh tmpfs, where the real
// dbus-daemon listens at the system bus's own address
// (/run/dbus/system_bus_socket), so the watcher's `dbus-monitor --system`
// and a user's `dbus-send --system` find it as on a host, and the host's own
// bus and firewall are never touched. Nothing pretends to be D-Bus: the
// daemon is dbus-daemon, with a system-like policy (any user may connect and
// send signals; only root may own a name); "firewalld" is a real client that
// owns org.fedoraproject.FirewallD1 (python3-dbus).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { hostNetns, run, SYSTEM_PATH, type Run, type RunOptions } from "./binary.js";

/** The Python that has python3-dbus (Debian's own, not a version manager's shim). */
export const PYTHON = "/usr/bin/python3";
export const NOBODY = 65534;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Refuses to exec unless both namespaces are the lab's and neither is the host's. Constant text; values are arguments. */
const GUARD = `net=$(readlink /proc/self/ns/net); mnt=$(readlink /proc/self/ns/mnt)
if [ "$net" != "$1" ] || [ "$net" = "$2" ] || [ "$mnt" != "$3" ] || [ "$mnt" = "$4" ]; then echo "bus-lab guard: in $net $mnt: refusing to run $5" >&2; exit 125; fi
shift 4; exec "$@"`;

/** A system-like bus policy: as Debian's system.conf, plus one rule: only root may own a name. */
const POLICY = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <allow send_type="signal"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <policy user="root">
    <allow own="*"/>
    <allow send_destination="*"/>
  </policy>
</busconfig>
`;

/** "firewalld": owns the name, then on each stdin line `reload N` sends N Reloaded signals. */
const FIREWALLD = `import sys, dbus, dbus.lowlevel
bus = dbus.SystemBus()
r = bus.request_name("org.fedoraproject.FirewallD1", dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
print("owner", bus.get_unique_name(), r, flush=True)
for line in sys.stdin:
    n = int(line.split()[1])
    for _ in range(n):
        bus.send_message(dbus.lowlevel.SignalMessage("/org/fedoraproject/FirewallD1", "org.fedoraproject.FirewallD1", "Reloaded"))
    bus.flush()
    print("sent", n, flush=True)
`;

/** A user's forger: COUNT signals PATH IFACE MEMBER [string args] over SECONDS, evenly; tries to own the name first. */
const FORGER = `import sys, time, dbus, dbus.lowlevel
count, seconds, path, iface, member = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
args = sys.argv[6:]
bus = dbus.SystemBus()
try:
    bus.request_name("org.fedoraproject.FirewallD1", dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
    print("owned the name", flush=True)
except dbus.exceptions.DBusException as e:
    print("cannot own:", e.get_dbus_name(), flush=True)
t0 = time.monotonic()
for i in range(count):
    m = dbus.lowlevel.SignalMessage(path, iface, member)
    if args: m.append(*args, signature="s" * len(args))
    bus.send_message(m)
    bus.flush()
    wait = t0 + seconds * (i + 1) / count - time.monotonic()
    if wait > 0: time.sleep(wait)
print("sent", count, "as", bus.get_unique_name(), flush=True)
`;

export class BusLab {
  private readonly children: ChildProcess[] = [];
  private constructor(
    private readonly holder: ChildProcess,
    readonly pid: number,
    readonly net: string,
    readonly mnt: string,
    private readonly dir: string,
  ) {}

  /** Namespaces held by `sleep`, /run a tmpfs in them; `dir` is a scratch directory for the scripts. */
  static async create(dir: string): Promise<BusLab> {
    if (!existsSync(PYTHON) || (await run([PYTHON, "-c", "import dbus"])).code !== 0) throw new Error(`${PYTHON} with python3-dbus is needed (apt-get install python3-dbus)`);
    const hostNet = hostNetns();
    const hostMnt = readlinkSync("/proc/self/ns/mnt");
    const holder = spawn("unshare", ["-n", "-m", "--propagation", "private", "--", "sh", "-c", "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0755 /run/dbus && exec sleep 900"], { stdio: "ignore", env: { PATH: SYSTEM_PATH } });
    const pid = holder.pid;
    if (!pid) throw new Error("could not spawn unshare");
    let net = hostNet;
    let mnt = hostMnt;
    for (let i = 0; i < 1000 && (net === hostNet || mnt === hostMnt || !(await isSleeping(pid))); i++) {
      if (holder.exitCode !== null) throw new Error(`unshare exited with ${holder.exitCode}`);
      try {
        net = readlinkSync(`/proc/${pid}/ns/net`);
        mnt = readlinkSync(`/proc/${pid}/ns/mnt`);
      } catch {
        /* not there yet */
      }
      await sleep(5);
    }
    if (net === hostNet || mnt === hostMnt) {
      holder.kill("SIGKILL");
      throw new Error("the private namespaces never appeared");
    }
    const lab = new BusLab(holder, pid, net, mnt, dir);
    writeFileSync(join(dir, "bus.conf"), POLICY);
    await lab.must(["ip", "link", "set", "lo", "up"]);
    return lab;
  }

  /** argv that runs `argv` inside the lab (guarded), as root or as `uid`. */
  argv(argv: readonly string[], uid?: number): string[] {
    const as = uid === undefined ? [] : ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--"];
    return ["nsenter", `--net=/proc/${this.pid}/ns/net`, `--mount=/proc/${this.pid}/ns/mnt`, "--", "sh", "-c", GUARD, "guard", this.net, hostNetns(), this.mnt, readlinkSync("/proc/self/ns/mnt"), ...as, ...argv];
  }

  exec(argv: readonly string[], o: RunOptions & { uid?: number } = {}): Promise<Run> {
    return run(this.argv(argv, o.uid), o);
  }

  async must(argv: readonly string[], o: RunOptions & { uid?: number } = {}): Promise<Run> {
    const r = await this.exec(argv, o);
    if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r;
  }

  /** A long-lived child inside the lab, killed at dispose. */
  spawn(argv: readonly string[], env: NodeJS.ProcessEnv = { PATH: SYSTEM_PATH, LC_ALL: "C" }): ChildProcess {
    const [cmd, ...args] = this.argv(argv) as [string, ...string[]];
    const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    this.children.push(child);
    return child;
  }

  /** The real dbus-daemon, listening once this resolves. */
  async startBus(): Promise<void> {
    const d = this.spawn(["dbus-daemon", `--config-file=${join(this.dir, "bus.conf")}`, "--nofork", "--nopidfile", "--print-address"]);
    const address = await firstLine(d, 10_000);
    if (!address.includes("/run/dbus/system_bus_socket")) throw new Error(`dbus-daemon said ${address}`);
  }

  /** "firewalld", as root: resolves with it and its unique name once it owns the name. */
  async startFirewalld(): Promise<{ child: ChildProcess; uniqueName: string; reload: (n: number) => Promise<void> }> {
    const child = this.spawn([PYTHON, "-c", FIREWALLD]);
    const lines = createInterface({ input: child.stdout! });
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    lines.on("line", (l) => { queue.push(l); wake?.(); });
    const next = async (ms: number) => {
      const end = Date.now() + ms;
      while (queue.length === 0) {
        if (Date.now() > end) throw new Error("firewalld stand-in said nothing");
        await new Promise<void>((r) => { wake = r; setTimeout(r, 100); });
      }
      return queue.shift() as string;
    };
    const first = await next(10_000);
    const m = /^owner (\S+) 1$/.exec(first);
    if (!m) throw new Error(`firewalld stand-in: ${first}`);
    return {
      child,
      uniqueName: m[1] as string,
      reload: async (n) => {
        child.stdin!.write(`reload ${n}\n`);
        const l = await next(10_000);
        if (l !== `sent ${n}`) throw new Error(`firewalld stand-in: ${l}`);
      },
    };
  }

  /** As uid 65534: `count` signals over `seconds`, from its own connection. */
  forge(count: number, seconds: number, path: string, iface: string, member: string, args: readonly string[] = []): Promise<Run> {
    return this.must([PYTHON, "-c", FORGER, String(count), String(seconds), path, iface, member, ...args], { uid: NOBODY });
  }

  dispose(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    this.holder.kill("SIGKILL");
  }
}

async function isSleeping(pid: number): Promise<boolean> {
  try {
    return readlinkSync(`/proc/${pid}/exe`).endsWith("/sleep");
  } catch {
    return false;
  }
}

function firstLine(child: ChildProcess, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no output in ${ms} ms`)), ms);
    let err = "";
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    createInterface({ input: child.stdout! }).once("line", (l) => { clearTimeout(timer); resolve(l); });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${err}`)); });
  });
}

/** CPU time (user + system, its reaped children included) of a process, in ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14-17 of proc(5) (utime stime cutime cstime), here 11-14 after "pid (comm) ".
  const ticks = [11, 12, 13, 14].reduce((s, i) => s + Number(f[i]), 0);
  return ticks * 10;
}
