// What we last applied, per family, under /run/virt-hooks (tmpfs: gone with a
// reboot, exactly like the kernel rules it describes). Used to know which
// families we manage and to report what changed.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Family } from "../net/ip.js";

export interface AppliedState {
  readonly families: Partial<Record<`ipv${Family}`, AppliedFamily>>;
}

export interface AppliedFamily {
  readonly backend?: "iptables" | "nftables";
  readonly rules: readonly string[];
  /** nftables: hash of the table we applied (skips identical transactions). */
  readonly hash?: string;
  /** nftables: fingerprint of the kernel's listing of our table right after we applied it (is `hash` still true?). */
  readonly kernelHash?: string;
  readonly at: string;
}

export function readState(stateDir: string): AppliedState {
  try {
    const parsed = JSON.parse(readFileSync(join(stateDir, "applied.json"), "utf8")) as AppliedState;
    return parsed && typeof parsed === "object" && parsed.families ? parsed : { families: {} };
  } catch {
    return { families: {} };
  }
}

export function writeState(stateDir: string, state: AppliedState): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `.applied.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(state, null, 1) + "\n", { mode: 0o600 });
  renameSync(tmp, join(stateDir, "applied.json"));
}
