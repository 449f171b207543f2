// The bench changes firewalls, links and sysctls, so it runs ONLY inside
// private network namespaces (docs/lab.md section 6): run.mjs re-executes
// itself under `unshare -n` and the inner process proves, before it touches
// anything, that /proc/self/ns/net is not the host's (recorded before the
// unshare; PID 1's link is unreadable here and would prove nothing).
import { spawn } from "node:child_process";
import { readlinkSync } from "node:fs";
import { must, SYSTEM_PATH } from "./measure.mjs";

export const currentNetns = () => readlinkSync("/proc/self/ns/net");

/** Throws unless this process is in a network namespace other than `hostNetns`. */
export function assertPrivate(hostNetns) {
  const here = currentNetns();
  if (!hostNetns || here === hostNetns) throw new Error(`refusing to run: in ${here}, the host's namespace is ${hostNetns}`);
  return here;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A further namespace (stand-in guest, client) held open by `unshare -n sleep`, killed by PID. */
export class Peer {
  static async create(hostNetns) {
    const self = currentNetns();
    const holder = spawn("unshare", ["-n", "--", "sleep", "3600"], { stdio: "ignore", env: { PATH: SYSTEM_PATH } });
    let id = self;
    for (let i = 0; i < 500 && id === self; i++) {
      try {
        id = readlinkSync(`/proc/${holder.pid}/ns/net`);
      } catch {
        /* not there yet */
      }
      if (id === self) await sleep(2);
    }
    if (id === self || id === hostNetns) {
      holder.kill("SIGKILL");
      throw new Error("a peer namespace never appeared");
    }
    const peer = new Peer(holder, id);
    await peer.run(["ip", "link", "set", "lo", "up"]);
    return peer;
  }

  constructor(holder, id) {
    this.holder = holder;
    this.pid = holder.pid;
    this.id = id;
  }

  /** argv run inside this namespace. */
  argv(argv) {
    return ["nsenter", `--net=/proc/${this.pid}/ns/net`, "--", ...argv];
  }

  run(argv) {
    return must(this.argv(argv));
  }

  dispose() {
    this.holder.kill("SIGKILL");
  }
}
