// Network devices as the kernel reports them in sysfs (no process needed), and
// the one `ip -batch` call that changes them.
import { readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import type { LinkState, ReattachAction } from "../plan/reattach.js";
import { renderIpBatch } from "../plan/reattach.js";
import type { RunTool } from "./exec.js";
import { isDeviceName } from "../net/ip.js";

const SYS = "/sys/class/net";

// Kernel device names: nothing that could escape a path or an ip(8) command.
// libvirt/*.ts already drops other names; checked again where they are used.
const DEVICE = { test: isDeviceName };

export function readLinks(names: Iterable<string>): Map<string, LinkState> {
  const out = new Map<string, LinkState>();
  for (const name of names) {
    if (!DEVICE.test(name)) continue;
    let flags: number;
    try {
      flags = parseInt(readFileSync(`${SYS}/${name}/flags`, "utf8"), 16);
    } catch {
      continue; // gone
    }
    let master: string | undefined;
    try {
      master = basename(readlinkSync(`${SYS}/${name}/master`));
    } catch {
      master = undefined;
    }
    out.set(name, { ...(master ? { master } : {}), up: (flags & 1) === 1 });
  }
  return out;
}

export function readMtu(name: string): number | undefined {
  if (!DEVICE.test(name)) return undefined;
  try {
    const mtu = Number(readFileSync(`${SYS}/${name}/mtu`, "utf8"));
    return Number.isInteger(mtu) && mtu > 0 ? mtu : undefined;
  } catch {
    return undefined;
  }
}

export async function applyReattach(run: RunTool, actions: readonly ReattachAction[]): Promise<string | undefined> {
  const safe = actions.filter((a) => DEVICE.test(a.tap) && DEVICE.test(a.bridge));
  if (safe.length === 0) return undefined;
  // -force: one device that vanished meanwhile must not stop the others.
  const r = await run("ip", ["-force", "-batch", "-"], renderIpBatch(safe));
  return r.exitCode === 0 ? undefined : `ip -batch failed (exit ${r.exitCode}): ${r.stderr.trim()}`;
}
