// Hook mode: libvirt called us as /etc/libvirt/hooks/{qemu,network}. Rules:
// nothing on stdout but a migrate/restore per-guest script's replacement XML;
// exit 0 unless `set on-error block` refuses a prepare/start or a per-guest
// script fails where libvirt lets a hook refuse; never call libvirt; one log
// line per invocation (and one per per-guest script).
//
// Speed: libvirt waits for every hook, and most events are ones we ignore.
// This module decides from argv and rules.d alone (interest-cache.ts: without
// even compiling rules.d when it has not changed) and imports nothing heavy;
// the rule compiler (when the cache is stale), the XML parser and the
// firewall code (handle-event.ts) are loaded by a dynamic import() only once
// they are needed. The build (.ci/build.mjs) puts every module reached
// only that way into a second bundle kept as text inside the executable and
// compiled on first use, so an ignored event neither compiles nor runs any of
// it, and starts no child process.
import { hookEventFromArgv, type Driver } from "../libvirt/event.js";
import { readRulesKeepingLastGood } from "../effects/last-good.js";
import { openLogSink } from "../effects/log.js";
import type { Paths } from "../config/paths.js";
import { decide } from "./policy.js";
import { interestOf } from "../plan/interest.js";
import { eventLabel, summaryLine } from "./outcome.js";
import { readCachedInterest, rulesKey, writeCachedInterest } from "../effects/interest-cache.js";
import { runEventScripts } from "./guest-scripts.js";
import { coveredEarly } from "./covered-early.js";
import { recordedPort } from "./recorded-port.js";
import { handedToWatcher } from "./handed-to-watcher.js";
import { coveredNote } from "./coalesce.js";
import type { Lock } from "../effects/lock.js";

export interface HookIo {
  readonly stdin: () => Promise<string>;
  /** Where the veto reason goes: libvirt shows the hook's stderr on failure. */
  readonly stderr: (text: string) => void;
  /** libvirt's pipe: written only with a migrate/restore script's replacement XML. */
  readonly stdout?: (text: string) => void;
  /**
   * Unused by hook mode: durations come from process.hrtime, because the first
   * call of performance.now() loads node:perf_hooks (user and node timing),
   * 7 M instructions of an ignored event whose floor is ~82 M (callgrind,
   * issue 15).
   */
  readonly now?: () => number;
}

export async function runHook(driver: Driver, args: readonly string[], paths: Paths, io: HookIo): Promise<number> {
  // Read once: our firewall work, then the per-guest scripts (guest-scripts/hook.ts:
  // one failed stat when there are none) share it.
  const xml = io.stdin().catch(() => "");
  const code = await runFirewall(driver, args, paths, { ...io, stdin: () => xml });
  return runEventScripts(driver, args, paths, io, code, xml);
}

async function runFirewall(driver: Driver, args: readonly string[], paths: Paths, io: HookIo): Promise<number> {
  const startedAt = process.hrtime.bigint();
  const elapsed = () => Number((process.hrtime.bigint() - startedAt) / 1_000_000n);
  const log = openLogSink(paths);
  const event = hookEventFromArgv(driver, args);
  // Always drain stdin: libvirt writes the whole XML before it waits for us.
  const xmlPromise = io.stdin().catch(() => "");
  if (!event) {
    await xmlPromise;
    await log.write("warning", [`${driver} called with ${args.length} arguments (libvirt passes 4); ignored`]);
    return 0;
  }
  const ignored = async (why: string) => {
    await log.write("info", [summaryLine(eventLabel(event), undefined, elapsed(), `ignored (${why})`)]);
    return 0;
  };
  let vetoable = false;
  let block = false;
  // Held from covered-early.ts into handle-event.ts, which releases it; released here on any other way out.
  let lock: Lock | undefined;
  try {
    const xml = await xmlPromise;
    // Untrusted rule files are refused and replaced by their last accepted text (trust/).
    const files = readRulesKeepingLastGood(paths.rulesDir, paths.stateDir);
    const key = rulesKey(files.files);
    const cached = readCachedInterest(paths.stateDir, key);
    const early = cached && decide(event, cached);
    if (early?.kind === "ignore") return await ignored(early.why);
    // A libvirtd restart's port-created burst, one after another, ends here (recorded-port.ts).
    const known = cached && early?.kind === "reconcile" ? recordedPort(event, xml, cached, paths.libvirtRunDir) : undefined;
    if (known) return await ignored(known);
    // A libvirtd restart's reconnect storm, while the watcher hears everything (handed-to-watcher.ts).
    const handed = cached && early?.kind === "reconcile" ? handedToWatcher(event, xml, cached, files, paths) : undefined;
    if (handed) {
      await log.write("info", [summaryLine(eventLabel(event), undefined, elapsed(), handed)]);
      return 0;
    }
    // A reconnect of a libvirtd restart that a later-started reconcile covered
    // ends here too, without the deferred code (covered-early.ts).
    const quick = cached && early?.kind === "reconcile" ? await coveredEarly({ event, decision: early, interest: cached, xml, files, paths, startedAt }) : {};
    if ("covered" in quick) {
      await log.write("info", [summaryLine(eventLabel(event), quick.covered, elapsed(), coveredNote(quick.covered))]);
      return 0;
    }
    const held = "held" in quick ? quick.held : undefined;
    lock = held?.lock;
    const { compileRules } = await import("../rules/compile.js");
    const compiled = compileRules(files.files);
    block = compiled.rules.settings.onError === "block";
    const interest = interestOf(compiled.rules);
    if (!cached) writeCachedInterest(paths.stateDir, key, { ...interest, clean: compiled.diagnostics.length === 0 });
    const decision = decide(event, interest);
    if (decision.kind === "ignore") return await ignored(decision.why);
    const recorded = recordedPort(event, xml, interest, paths.libvirtRunDir);
    if (recorded) return await ignored(recorded);
    vetoable = decision.vetoable;
    const { handleEvent } = await import("./handle-event.js");
    const refusal = await handleEvent({ event, decision, interest, xml, files, compiled, paths, log, elapsed, startedAt, ...(held ? { held } : {}) });
    if (vetoable && block && refusal.length > 0) {
      io.stderr(`virt-hooks: refusing to start ${event.object} (set on-error block):\n${refusal.join("\n")}\n`);
      return 1;
    }
    return 0;
  } catch (e) {
    // Our own bug must not stop a guest unless the admin asked for that.
    const message = `${eventLabel(event)}: internal error: ${(e as Error).stack ?? String(e)}`;
    await log.write("error", [message]);
    if (vetoable && block) {
      io.stderr(`virt-hooks: refusing to start ${event.object} (set on-error block): ${(e as Error).message}\n`);
      return 1;
    }
    return 0;
  } finally {
    await lock?.release();
  }
}
