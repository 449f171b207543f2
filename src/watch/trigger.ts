// When the watcher reconciles: pure scheduling, timers passed in. A burst of
// events (a `nft flush ruleset` prints one line per object it deletes) is one
// reconcile, `quietMs` after the last event or `maxWaitMs` after the first;
// never two reconciles at once (an event during one schedules one more after
// it); follow-ups (libvirt re-adds its own rules on its own time after a
// firewalld reload) are extra wake-ups asked for by the caller.
//
// A flood costs bounded CPU whatever sends it: after each reconcile the next
// waits `restMs(duration)` (at least a floor, and a multiple of what the last
// one took, so reconciling never takes more than a fixed share of the time),
// and follow-ups of the same delay and reason are one timer, moved to the last event
// (libvirt re-adds its rules after the last reload of a burst), so a
// thousand signals leave one pending wake-up per delay, not two thousand.
export interface Timers {
  readonly set: (fn: () => void, ms: number) => unknown;
  readonly clear: (handle: unknown) => void;
}

export interface Trigger {
  /** Something changed; `why` names it in the log line of the repair. */
  poke(why: string, inMs?: number): void;
  /** Stops every pending wake-up (shutdown). */
  stop(): void;
}

export interface TriggerOptions {
  readonly quietMs: number;
  readonly maxWaitMs: number;
  readonly timers: Timers;
  readonly now: () => number;
  /**
   * Runs the reconcile with the reasons gathered since the last one, and when
   * the first of them arrived (how long our rules may have been out, at most).
   */
  readonly fire: (why: readonly string[], firstAt: number) => Promise<void>;
  /** How long to wait after a reconcile that took `ms` before the next may start; absent: 0. */
  readonly restMs?: (ms: number) => number;
}

export function createTrigger(o: TriggerOptions): Trigger {
  let reasons: string[] = [];
  let firstAt: number | undefined;
  let timer: unknown;
  let dueAt = Infinity;
  let running = false;
  let again = false;
  let stopped = false;
  /** No reconcile starts before this (the rest after the last one). */
  let notBefore = -Infinity;
  /** One pending follow-up per delay and reason. */
  const later = new Map<string, unknown>();

  const arm = (wanted: number) => {
    const at = Math.max(wanted, notBefore);
    if (timer !== undefined && at >= dueAt) return;
    if (timer !== undefined) o.timers.clear(timer);
    dueAt = at;
    timer = o.timers.set(run, Math.max(0, at - o.now()));
  };
  const run = () => {
    timer = undefined;
    dueAt = Infinity;
    if (stopped) return;
    if (running) { again = true; return; }
    const why = reasons;
    const since = firstAt ?? o.now();
    reasons = [];
    firstAt = undefined;
    running = true;
    const began = o.now();
    void o.fire(why, since).finally(() => {
      running = false;
      const end = o.now();
      notBefore = end + (o.restMs?.(end - began) ?? 0);
      if (again && !stopped) { again = false; arm(o.now() + o.quietMs); }
    });
  };
  const note = (why: string) => {
    if (!reasons.includes(why)) reasons.push(why);
    const t = o.now();
    firstAt ??= t;
    if (running) { again = true; return; }
    // Quiet period, but never later than maxWaitMs after the first event.
    const at = Math.min(t + o.quietMs, firstAt + o.maxWaitMs);
    if (timer !== undefined) o.timers.clear(timer);
    timer = undefined;
    dueAt = Infinity;
    arm(at);
  };
  return {
    poke(why, inMs) {
      if (stopped) return;
      if (inMs === undefined || inMs <= 0) return note(why);
      const key = `${inMs} ${why}`;
      const pending = later.get(key);
      if (pending !== undefined) o.timers.clear(pending);
      const h = o.timers.set(() => { later.delete(key); if (!stopped) note(why); }, inMs);
      later.set(key, h);
    },
    stop() {
      stopped = true;
      if (timer !== undefined) o.timers.clear(timer);
      for (const h of later.values()) o.timers.clear(h);
      later.clear();
    },
  };
}
