// The watcher gives its word (effects/quiet-record.ts) only when it can keep
// it: a clean reconcile, nothing heard meanwhile, a backend whose changes nft
// monitor prints. Each refusal here is a case where a hook trusting the
// record could skip a repair nobody else would make.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defaultPaths } from "../../src/config/paths.js";
import type { Context } from "../../src/converge/context.js";
import type { Converged } from "../../src/converge/converge.js";
import { QUIET_FILE, readQuiet } from "../../src/effects/quiet-record.js";
import { compileRules } from "../../src/rules/compile.js";
import { createQuietKeeper } from "../../src/watch/quiet-keeper.js";

const roots: string[] = [];
afterEach(() => roots.splice(0).forEach((r) => rmSync(r, { recursive: true, force: true })));

function setup(rulesText = "forward tcp 2222 to 192.168.122.10:22\n") {
  const root = mkdtempSync(join(tmpdir(), "vh-quiet-"));
  roots.push(root);
  const paths = defaultPaths(root);
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const files = [{ path: join(paths.rulesDir, "50.rules"), text: rulesText }];
  const compiled = compileRules(files);
  const ctx = { files, compiled, view: { networks: new Map(), domains: new Map() }, backend: { backend: "nftables", why: "" }, diagnostics: [], problems: [], ruleErrors: false } as unknown as Context;
  return { paths, ctx };
}

const up = { monitorUp: true, changed: false };

const result = (backend: "iptables" | "nftables", o: { error?: string; failed?: boolean } = {}) =>
  ({
    plan: { forwards: [], masquerades: [], accepts: [], egress: [], states: o.failed ? [{ state: "failed" }] : [{ state: "live" }] },
    backend: { backend, why: "" },
    families: [{ family: 4, backend, added: 0, removed: 0, rules: [], ...(o.error ? { error: o.error } : {}) }],
    removedFrom: [],
    hosts: { states: [], done: [], problems: [], changed: false },
    reattached: [],
    notes: [],
    problems: [],
  }) as unknown as Converged;

describe("the watcher's quiet record", () => {
  it("given after a clean reconcile on nftables, or on iptables-nft; read back while this process runs", () => {
    for (const [backend, iptablesNft] of [["nftables", false], ["iptables", true]] as const) {
      const { paths, ctx } = setup();
      const keeper = createQuietKeeper(paths, iptablesNft);
      keeper.end(keeper.begin(ctx), result(backend), up);
      expect(readQuiet(paths.stateDir), backend).toMatchObject({ watcher: { pid: process.pid }, counts: { live: 1, failed: 0 } });
      keeper.heard();
      expect(existsSync(join(paths.stateDir, QUIET_FILE))).toBe(false);
    }
  });

  it("never given where it could not be kept", () => {
    const cases: [string, (k: ReturnType<typeof createQuietKeeper>, ctx: Context) => void, string?][] = [
      ["iptables-legacy (nft monitor cannot hear it)", (k, ctx) => k.end(k.begin(ctx), result("iptables"), up)],
      ["nft monitor down", (k, ctx) => k.end(k.begin(ctx), result("nftables"), { monitorUp: false, changed: false })],
      ["a change heard during the reconcile", (k, ctx) => { const p = k.begin(ctx); k.heard(); k.end(p, result("nftables"), up); }],
      ["a family's transaction failed", (k, ctx) => k.end(k.begin(ctx), result("nftables", { error: "nft: refused" }), up)],
      ["a rule failed", (k, ctx) => k.end(k.begin(ctx), result("nftables", { failed: true }), up)],
      ["a reconcile that changed something (its own transaction's echo, still to come, would withdraw the word a hook may be reading)", (k, ctx) => k.end(k.begin(ctx), result("nftables"), { monitorUp: true, changed: true })],
      ["egress statements (they follow the host's addresses, which nothing hears)", (k, ctx) => k.end(k.begin(ctx), result("nftables"), up), "egress from 203.0.113.7 for 192.168.122.10\n"],
    ];
    for (const [what, act, rules] of cases) {
      const { paths, ctx } = setup(rules);
      act(createQuietKeeper(paths, false), ctx);
      expect(existsSync(join(paths.stateDir, QUIET_FILE)), what).toBe(false);
    }
  });
});
