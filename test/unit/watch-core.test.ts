// The watcher's pure parts: what an event line means, when a burst becomes one
// reconcile, and back-off that never makes a tight loop.
import { describe, expect, it } from "vitest";
import { createBackoff } from "../../src/effects/backoff.js";
import { describeCauses } from "../../src/watch/causes.js";
import { busLine, netfilterChange } from "../../src/watch/events.js";
import { believeReloaded, DBUS_MATCHES, parseOwnerReply } from "../../src/watch/firewalld-owner.js";
import { createTrigger } from "../../src/watch/trigger.js";
import { watcherLine } from "../../src/watch/watcher-status.js";

describe("event lines", () => {
  it.each([
    ["delete table ip virt_hooks", "delete table in ip virt_hooks"],
    ["flush ruleset", "flush ruleset"],
    ["delete rule ip filter FORWARD handle 12", "delete rule in ip filter"],
    ["add rule ip filter FORWARD counter jump LIBVIRT_FWX", "add rule in ip filter"],
    ["insert rule ip libvirt_network forward counter accept", "insert rule in ip libvirt_network"],
    ["delete rule ip6 nat PREROUTING handle 3", "delete rule in ip6 nat"],
    ["delete table inet firewalld", "delete table in inet firewalld"],
    ["add table ip libvirt_network", undefined],
    ["add element ip virt_hooks dnat_addr { 1.2.3.4 }", undefined],
    ["# new generation 12 by process 99 (nft)", undefined],
    ["", undefined],
    // Tables of no concern to our rules: someone else's churn is no cause to reconcile.
    ["delete rule inet junk c handle 2", undefined],
    ["delete table inet virt_hooks", undefined],
    ["delete element inet f2b-table addr-set-sshd { 1.2.3.4 }", undefined],
    ["insert rule ip mangle POSTROUTING counter", undefined],
    ["delete rule ip raw PREROUTING handle 4", undefined],
    ["add rule bridge filter forward counter", undefined],
  ])("nft monitor: %j -> %j", (line, want) => expect(netfilterChange(line)?.why).toBe(want));

  it("nft monitor: which role the table has", () => {
    expect(netfilterChange("delete table ip virt_hooks")?.role).toBe("ours");
    expect(netfilterChange("delete chain ip6 libvirt_network forward")?.role).toBe("libvirt");
    expect(netfilterChange("delete rule ip nat PREROUTING handle 1")?.role).toBe("iptables");
    expect(netfilterChange("delete chain inet firewalld filter_FORWARD")?.role).toBe("firewalld");
    expect(netfilterChange("flush ruleset")?.role).toBeUndefined();
  });

  it("dbus-monitor --profile: Reloaded with its sender, and only the bus's NameOwnerChanged and NameLost", () => {
    expect(busLine("sig\t1.0\t5\t:1.3\t<none>\t/org/fedoraproject/FirewallD1\torg.fedoraproject.FirewallD1\tReloaded")).toEqual({ kind: "reloaded", sender: ":1.3" });
    expect(busLine("sig\t1.0\t6\torg.freedesktop.DBus\t<none>\t/org/freedesktop/DBus\torg.freedesktop.DBus\tNameOwnerChanged")).toEqual({ kind: "owner-changed" });
    expect(busLine("sig\t1.0\t4\torg.freedesktop.DBus\t:1.0\t/org/freedesktop/DBus\torg.freedesktop.DBus\tNameLost")).toEqual({ kind: "connected" });
    // A user's connection sending the bus's own signals: not the bus.
    expect(busLine("sig\t1.0\t6\t:1.9\t<none>\t/org/freedesktop/DBus\torg.freedesktop.DBus\tNameOwnerChanged")).toBeUndefined();
    expect(busLine("sig\t1.0\t6\t:1.9\t:1.0\t/org/freedesktop/DBus\torg.freedesktop.DBus\tNameLost")).toBeUndefined();
    expect(busLine("mc\t1.0\t2\t:1.3\torg.freedesktop.DBus\t/org/freedesktop/DBus\torg.freedesktop.DBus\tAddMatch")).toBeUndefined();
    expect(busLine("sig\t1.0\t5\t:1.3\t<none>\t/x\tcom.example.Other\tReloaded")).toBeUndefined();
  });
});

describe("firewalld's owner", () => {
  it("both match rules are bound to a sender: the name's owner, and the bus itself", () => {
    for (const m of DBUS_MATCHES) expect(m).toMatch(/(^|,)sender='(org\.fedoraproject\.FirewallD1|org\.freedesktop\.DBus)'/);
    expect(DBUS_MATCHES.find((m) => m.includes("NameOwnerChanged"))).toContain("sender='org.freedesktop.DBus'");
    expect(DBUS_MATCHES.find((m) => m.includes("Reloaded"))).toContain("sender='org.fedoraproject.FirewallD1'");
  });

  it("reads GetNameOwner's answer: a unique name, no owner, or a failure", () => {
    expect(parseOwnerReply({ exitCode: 0, stdout: "   :1.42\n", stderr: "" })).toEqual({ kind: "owner", name: ":1.42" });
    expect(parseOwnerReply({ exitCode: 1, stdout: "", stderr: "Error org.freedesktop.DBus.Error.NameHasNoOwner: Could not get owner of name 'org.fedoraproject.FirewallD1': no such name\n" })).toEqual({ kind: "none" });
    expect(parseOwnerReply({ exitCode: 1, stdout: "", stderr: "Failed to open connection to \"system\" message bus\n" }).kind).toBe("unknown");
    // Not a unique name (as if some other tool answered): not believed as one.
    expect(parseOwnerReply({ exitCode: 0, stdout: "org.fedoraproject.FirewallD1\n", stderr: "" }).kind).toBe("unknown");
  });

  it("believes a Reloaded only from the owner's unique name", () => {
    expect(believeReloaded({ kind: "owner", name: ":1.42" }, ":1.42")).toBe(true);
    expect(believeReloaded({ kind: "owner", name: ":1.42" }, ":1.43")).toBe(false);
    expect(believeReloaded({ kind: "none" }, ":1.42")).toBe(false);
    expect(believeReloaded({ kind: "unknown", why: "x" }, ":1.42")).toBe(true);
  });
});

/** A fake clock and timer queue: the trigger is pure scheduling. */
function clock() {
  let t = 0;
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let next = 1;
  return {
    now: () => t,
    timers: {
      set: (fn: () => void, ms: number) => { const id = next++; timers.push({ at: t + ms, fn, id }); return id; },
      clear: (h: unknown) => { const i = timers.findIndex((x) => x.id === h); if (i >= 0) timers.splice(i, 1); },
    },
    async advance(ms: number) {
      const end = t + ms;
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const first = timers[0];
        if (!first || first.at > end) break;
        timers.shift();
        t = first.at;
        first.fn();
        await Promise.resolve();
        await Promise.resolve();
      }
      t = end;
    },
  };
}

describe("a repair's causes in its log line", () => {
  it("keeps D-Bus causes and folds a burst of netfilter lines into the tables touched", () => {
    const why = ["delete rule in ip mangle", "delete chain in ip mangle", "delete rule in ip nat", "firewalld reloaded",
      "delete table in inet firewalld", "insert rule in ip filter", "insert rule in ip6 nat"];
    expect(describeCauses(why)).toBe("firewalld reloaded; netfilter changes in ip mangle, ip nat, inet firewalld and 2 more");
  });
  it("names a flushed ruleset and plain causes as they are", () => {
    expect(describeCauses(["flush ruleset"])).toBe("netfilter changes in the whole ruleset");
    expect(describeCauses(["netfilter (nft monitor) (re)connected"])).toBe("netfilter (nft monitor) (re)connected");
  });
});

describe("trigger", () => {
  it("a burst is one reconcile with every reason, after the quiet period", async () => {
    const c = clock();
    const runs: string[][] = [];
    const firsts: number[] = [];
    const tr = createTrigger({ quietMs: 100, maxWaitMs: 400, timers: c.timers, now: c.now, fire: async (w, at) => { runs.push([...w]); firsts.push(at); } });
    const t0 = c.now();
    for (let i = 0; i < 50; i++) { tr.poke(i % 2 ? "delete rule in ip filter" : "flush ruleset"); await c.advance(5); }
    expect(runs).toEqual([]);
    await c.advance(150);
    expect(runs).toEqual([["flush ruleset", "delete rule in ip filter"]]);
    // When its first event came: how long our rules may have been out before the repair.
    expect(firsts).toEqual([t0]);
  });

  it("a burst that never goes quiet still reconciles after maxWaitMs", async () => {
    const c = clock();
    let n = 0;
    const tr = createTrigger({ quietMs: 100, maxWaitMs: 400, timers: c.timers, now: c.now, fire: async () => { n++; } });
    for (let i = 0; i < 100; i++) { tr.poke("x"); await c.advance(50); }
    expect(n).toBeGreaterThanOrEqual(10);
    expect(n).toBeLessThanOrEqual(13);
  });

  it("an event during a reconcile gives exactly one more after it, never two at once", async () => {
    const c = clock();
    let running = 0, max = 0, n = 0;
    let release: () => void = () => {};
    const tr = createTrigger({
      quietMs: 100, maxWaitMs: 400, timers: c.timers, now: c.now,
      fire: () => { n++; running++; max = Math.max(max, running); return new Promise<void>((r) => { release = () => { running--; r(); }; }); },
    });
    tr.poke("a");
    await c.advance(100);
    tr.poke("b"); tr.poke("c");
    await c.advance(500);
    expect(n).toBe(1);
    release();
    await new Promise((r) => setImmediate(r));
    await c.advance(200);
    expect(n).toBe(2);
    release();
    await new Promise((r) => setImmediate(r));
    await c.advance(1000);
    expect(n).toBe(2);
    expect(max).toBe(1);
  });

  it("follow-ups fire later; stop cancels everything", async () => {
    const c = clock();
    const runs: number[] = [];
    const tr = createTrigger({ quietMs: 100, maxWaitMs: 400, timers: c.timers, now: c.now, fire: async () => { runs.push(c.now()); } });
    tr.poke("firewalld reloaded"); tr.poke("firewalld reloaded", 1000); tr.poke("firewalld reloaded", 3000);
    await c.advance(1200);
    expect(runs).toEqual([100, 1100]);
    tr.stop();
    await c.advance(5000);
    expect(runs).toEqual([100, 1100]);
  });
});

describe("trigger under a flood", () => {
  it("rests after each reconcile: at least restMs, however many events come", async () => {
    const c = clock();
    const runs: number[] = [];
    const tr = createTrigger({ quietMs: 100, maxWaitMs: 400, timers: c.timers, now: c.now, restMs: (ms) => Math.max(500, 3 * ms), fire: async () => { runs.push(c.now()); } });
    // 1000 events in 10 s.
    for (let i = 0; i < 1000; i++) { tr.poke("x"); await c.advance(10); }
    await c.advance(2000);
    // Without the rest: ~25 (every 400 ms); with it: one per 500 ms at most.
    expect(runs.length).toBeLessThanOrEqual(21);
    for (let i = 1; i < runs.length; i++) expect(runs[i]! - runs[i - 1]!).toBeGreaterThanOrEqual(500);
  });

  it("the rest grows with what a reconcile took", async () => {
    const c = clock();
    const runs: number[] = [];
    const tr = createTrigger({
      quietMs: 100, maxWaitMs: 400, timers: c.timers, now: c.now, restMs: (ms) => Math.max(500, 3 * ms),
      fire: async () => { runs.push(c.now()); await c.advance(1000); },
    });
    for (let i = 0; i < 300; i++) { tr.poke("x"); await c.advance(50); }
    // Each takes 1 s, then 3 s of rest: at most one start per 4 s.
    for (let i = 1; i < runs.length; i++) expect(runs[i]! - runs[i - 1]!).toBeGreaterThanOrEqual(4000);
  });

  it("a thousand follow-up requests are one timer per delay, fired after the last", async () => {
    const c = clock();
    const runs: number[] = [];
    let armed = 0;
    const timers = { set: (fn: () => void, ms: number) => { armed++; return c.timers.set(fn, ms); }, clear: c.timers.clear };
    const tr = createTrigger({ quietMs: 100, maxWaitMs: 400, timers, now: c.now, fire: async () => { runs.push(c.now()); } });
    for (let i = 0; i < 1000; i++) tr.poke("firewalld reloaded", 3000);
    await c.advance(2999);
    expect(runs).toEqual([]);
    await c.advance(200);
    expect(runs).toEqual([3100]);
    expect(armed).toBe(1001);
  });
});

describe("back-off", () => {
  it("doubles from 1 s to a minute and starts again after a success", () => {
    const b = createBackoff(1000, 60_000);
    expect(Array.from({ length: 8 }, () => b.next())).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    b.reset();
    expect(b.next()).toBe(1000);
  });
});

describe("the watcher's line in status", () => {
  it("not running: says how to start it and what covers meanwhile", () => {
    expect(watcherLine({ running: false })).toBe("watcher: not running (systemctl enable --now virt-hooks-watch); until it runs, virt-hooks-apply.timer repairs within a minute");
  });
  it("running: its sources and last repair", () => {
    const state = { pid: 812, startedAt: "x", sources: { netfilter: "watching", firewalld: "not watching: dbus-monitor is not installed" }, lastRepair: { at: "2026-12-02T21:30:05.120Z", why: "netfilter changes in the whole ruleset", ms: 44, outMs: 151 } };
    expect(watcherLine({ running: true, state })).toBe("watcher: running (pid 812): netfilter watching, firewalld not watching: dbus-monitor is not installed; last repair 2026-12-02T21:30:05.120Z, 151 ms after the first event: netfilter changes in the whole ruleset (reconcile 44 ms)");
  });
  it("a state file from an older watcher (no outMs) still reads", () => {
    const state = { pid: 1, startedAt: "x", sources: { netfilter: "watching", firewalld: "watching" }, lastRepair: { at: "T", why: "firewalld reloaded", ms: 20 } };
    expect(watcherLine({ running: true, state })).toBe("watcher: running (pid 1): netfilter watching, firewalld watching; last repair T: firewalld reloaded (reconcile 20 ms)");
  });
});
