// rules.d as an event source of the watcher (issue 27): an admin's new or
// edited rule file takes effect within a second of the last write, without an
// `apply` or the timer. inotify through Node's own fs.watch: no child, no
// polling. Only names ending in .rules count (editors' swap and backup files
// do not). What it starts is only a poke: the watcher's converge then reads
// rules.d strictly and applies only when the whole directory checks clean
// (run-watch.ts); a half-written file's error is logged once, and the last
// good rules stay in force until it is fixed.
//
// The directory may be missing, replaced or removed (an admin's rm -r, a
// package's unpacking): then the watch is re-established after a back-off
// (1 s doubling to 60 s, reset once it holds), never in a tight loop.
import { statSync, watch, type FSWatcher } from "node:fs";
import { createBackoff } from "../effects/backoff.js";

export interface RulesDirSource {
  stop(): void;
}

export interface RulesDirEvents {
  /** A rule file was created, written, renamed or removed. */
  readonly onChange: (why: string) => void;
  readonly onUp: () => void;
  readonly onDown: (why: string) => void;
}

export function watchRulesDir(dir: string, ev: RulesDirEvents): RulesDirSource {
  const retry = createBackoff(1000, 60_000);
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const down = (why: string) => {
    watcher?.close();
    watcher = undefined;
    if (stopped) return;
    ev.onDown(why);
    timer = setTimeout(start, retry.next());
  };

  const inode = () => {
    try {
      return statSync(dir).ino;
    } catch {
      return undefined;
    }
  };

  function start(): void {
    timer = undefined;
    if (stopped) return;
    const ino = inode();
    if (ino === undefined) return down(`${dir} does not exist`);
    try {
      watcher = watch(dir, { persistent: true }, (kind, name) => {
        // rules.d itself removed or replaced: the watch follows the old inode; start again on the new one.
        if (inode() !== ino) return down(`${dir} was removed or replaced`);
        const file = typeof name === "string" ? name : name ? String(name) : undefined;
        // No name: the kernel's queue overflowed; anything may have changed.
        if (file !== undefined && (!file.endsWith(".rules") || file.startsWith("."))) return;
        ev.onChange(`rules.d: ${file ?? "?"} ${kind === "rename" ? "added, removed or renamed" : "written"}`);
      });
    } catch (e) {
      return down(`${dir}: ${(e as Error).message}`);
    }
    // The directory itself deleted or moved away: inotify says so as an error or a close.
    watcher.on("error", (e) => down(`${dir}: ${e.message}`));
    retry.reset();
    ev.onUp();
    // What changed while we were not watching.
    ev.onChange("rules.d (re)watched");
  }

  start();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      watcher?.close();
    },
  };
}
