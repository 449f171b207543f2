// A `reconnect` left to the watcher, decided before the XML parser, the lock
// and the firewall code.
//
// libvirtd restarting runs one `reconnect` per running guest, all at once,
// right after rebuilding its own firewall rules; each domain's thread holds
// its domain until its hook returns, so `virsh list` (and every client) waits
// for the slowest. Their one job for us is to answer that rebuild. Each used
// to take our lock in turn, compile the rules and then find a later reconcile
// had covered it: on a loaded host 100 of them queued for up to the lock's
// 30 s limit (issue 28, bench/restart.mjs).
//
// When the watcher runs and hears every change (watch-record.ts: this very
// process, its nft monitor up, iptables-nft or nftables), libvirt's rebuild
// reached it too, and it answers with one reconcile for the whole burst,
// within its bound (README, Rebuilds no hook sees). A reconnect that would
// add nothing to libvirt's status files (the guest's status file says all its
// XML says, libvirt/domain-text.ts) then does nothing itself: no lock, no
// child. Otherwise (no watcher, iptables-legacy, refused or faulty rules, a
// domain not as recorded) it takes its path as before.
import { join } from "node:path";
import { readTextIfAny } from "../effects/read-text.js";
import { watcherHearingAll } from "../effects/watch-record.js";
import type { CachedInterest } from "../effects/interest-cache.js";
import type { RuleFiles } from "../effects/rules-files.js";
import type { Paths } from "../config/paths.js";
import type { HookEvent } from "../libvirt/event.js";
import { statusHoldsDomain } from "../libvirt/domain-text.js";

/** Why this reconnect is the watcher's to answer, or undefined: take the path as before. */
export function handedToWatcher(event: HookEvent, xml: string, interest: CachedInterest, files: RuleFiles, paths: Paths): string | undefined {
  if (event.driver !== "qemu" || event.op !== "reconnect") return undefined;
  // The watcher logs rule problems once; a hook would say them on every event.
  if (!interest.clean || files.problems.length > 0) return undefined;
  const watcher = watcherHearingAll(paths.stateDir);
  if (!watcher) return undefined;
  const status = readTextIfAny(join(paths.libvirtRunDir, "qemu", `${event.object}.xml`));
  if (status === undefined || !statusHoldsDomain(status, xml)) return undefined;
  return `left to the watcher (pid ${watcher.pid}), which hears libvirt's rebuild and answers the restart with one reconcile`;
}
