// The reconcile loop in-process (apply/reconcile.ts): observe -> diff ->
// transaction -> rollback -> record -> coalesce, with a recording fake of the
// iptables tools (test/helpers/recording-tools.ts) and a real state directory.
// No root: the unit tier. The kernel and e2e tiers run the same loop against
// the real tools.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { reconcile } from "../../src/apply/reconcile.js";
import { parseNetworkStatusXml } from "../../src/libvirt/network.js";
import type { HostView } from "../../src/host/view.js";
import { fixture } from "../helpers/fixtures.js";
import { compileText } from "../helpers/rules.js";
import { RecordingIptables } from "../helpers/recording-tools.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const stateDir = () => {
  const d = mkdtempSync(join(tmpdir(), "vh-loop-"));
  dirs.push(d);
  return join(d, "state");
};

const network = parseNetworkStatusXml(fixture("status-network-default.xml"));
const view: HostView = { domains: new Map(), networks: new Map([[network.name, network]]) };
const rules = compileText("set backend iptables\nforward tcp 2222 to 192.168.122.10:22\nforward udp 5353 to 192.168.122.10:53\n").rules;

const once = (fake: RecordingIptables, dir: string, extra: { startedAt?: bigint; dryRun?: boolean } = {}) =>
  reconcile({ rules, view, stateDir: dir, run: fake.run, dryRun: extra.dryRun ?? false, everyFamily: false, networkConf: join(dir, "..", "network.conf"), ...(extra.startedAt !== undefined ? { startedAt: extra.startedAt } : {}) });

describe("the reconcile loop, in-process", () => {
  it("from nothing: one transaction; then in sync: a look and no transaction", async () => {
    const fake = new RecordingIptables();
    const dir = stateDir();
    const first = await once(fake, dir);
    expect(first.families.map((f) => [f.family, f.error, f.added])).toEqual([[4, undefined, first.families[0]?.added]]);
    expect(fake.transactions()).toHaveLength(1);
    expect(fake.rules("nat", "PREROUTING")[0]).toBe("-j VIRT_HOOKS_PRE");
    expect(fake.rules("nat", "VIRT_HOOKS_PRE").join("\n")).toContain("--dport 2222");
    fake.calls.length = 0;
    const again = await once(fake, dir);
    expect(again.families[0]?.transaction).toBeUndefined();
    expect(fake.calls.map((c) => c.tool)).toEqual(["iptables-save"]);
  });

  it("drift (our chain flushed by hand, libvirt's jump put above ours): exactly one transaction repairs both", async () => {
    const fake = new RecordingIptables();
    const dir = stateDir();
    await once(fake, dir);
    const want = [...fake.rules("nat", "VIRT_HOOKS_PRE")];
    fake.flush("nat", "VIRT_HOOKS_PRE");
    fake.insertFirst("filter", "FORWARD", "-j LIBVIRT_FWI");
    fake.calls.length = 0;
    const r = await once(fake, dir);
    expect(fake.transactions()).toHaveLength(1);
    expect(r.families[0]?.added).toBe(want.length);
    expect(fake.rules("nat", "VIRT_HOOKS_PRE")).toEqual(want);
    expect(fake.rules("filter", "FORWARD").slice(0, 2)).toEqual(["-j VIRT_HOOKS_FWD", "-j LIBVIRT_FWI"]);
    fake.calls.length = 0;
    await once(fake, dir);
    expect(fake.transactions()).toHaveLength(0);
  });

  it("a transaction refused in its second table is rolled back: the first table's chains are as they were, and it says why", async () => {
    const fake = new RecordingIptables();
    const dir = stateDir();
    fake.refuseTable = "nat";
    const r = await once(fake, dir);
    expect(r.families[0]?.error).toMatch(/iptables-restore rejected the transaction \(exit 1\)/);
    // filter committed first, then nat was refused: the rollback emptied our filter chain again.
    expect(fake.rules("filter", "VIRT_HOOKS_FWD")).toEqual([]);
    expect(fake.transactions().length).toBeGreaterThanOrEqual(2);
    expect(fake.rules("nat", "PREROUTING")).toEqual([]);
  });

  it("a dry run looks and says what it would do, and changes nothing", async () => {
    const fake = new RecordingIptables();
    const r = await once(fake, stateDir(), { dryRun: true });
    expect(r.families[0]?.transaction).toContain("-A VIRT_HOOKS_PRE");
    expect(fake.transactions()).toHaveLength(0);
  });

  it("a storm coalesces: a reconcile that started before another one's clean look is covered by it, touching no tool", async () => {
    const fake = new RecordingIptables();
    const dir = stateDir();
    const early = process.hrtime.bigint();
    await once(fake, dir, { startedAt: process.hrtime.bigint() });
    fake.calls.length = 0;
    const covered = await once(fake, dir, { startedAt: early });
    expect(covered.coalesced).toBe(true);
    expect(fake.calls).toEqual([]);
    // One that started after it looks for itself.
    const later = await once(fake, dir, { startedAt: process.hrtime.bigint() });
    expect(later.coalesced).toBeUndefined();
    expect(fake.calls.map((c) => c.tool)).toEqual(["iptables-save"]);
  });
});
