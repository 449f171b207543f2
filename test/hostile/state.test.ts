// Hostile tier, cases 3 and 5 of issue 25: our records on disk. With the state
// directory writable by others (an admin's chmod 0777), earlier releases said
// "refused" and then read it anyway: a links.json planted by a user went,
// unchecked, into `ip -batch` as root on a network's stop. And with /run
// read-only or full, failing to record links threw, and the event's whole
// reconcile (firewall included) was skipped. Real `ip`, iptables, a private
// netns (and mount namespace), the compiled executable.
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { HostTree, isRoot, logLines, networkStatusXml, requireBinary, run } from "../helpers/binary.js";
import { fixture } from "../helpers/fixtures.js";
import { NetnsPool, type Netns } from "../helpers/netns.js";
import { uplinkLab } from "../helpers/uplink-lab.js";
import { asNobody, dnatRules, walkableTree } from "./helpers.js";

const RULES = "uplink default em1\nroute default default via 192.0.2.1\nforward tcp 8080 to 192.168.122.10:80\nforward udp 5353 to 192.168.122.10:53\n";

describe.skipIf(!isRoot)("hostile: our records on disk", () => {
  const pool = new NetnsPool();
  let ns: Netns;
  let t: HostTree;

  beforeEach(async () => {
    requireBinary();
    pool.disposeAll();
    ns = await pool.create();
    t = walkableTree(HostTree.withDefaultNetwork());
    t.writeRules("20-uplink.rules", RULES);
    await uplinkLab(ns);
  });
  afterEach(() => t.dispose());
  afterAll(() => pool.disposeAll());

  const hook = (line: string, input: string) => ns.exec(t.hookArgv(line), { env: t.env(), input });
  const stateDir = () => join(t.root, "run/virt-hooks");

  it("a state directory others may write is neither read nor written: a user's planted links.json never reaches ip -batch", async () => {
    const started = await hook("network default started begin -", networkStatusXml([], "", "hook"));
    expect(started.code, started.stderr).toBe(0);
    expect(existsSync(join(stateDir(), "links.json")), started.stderr).toBe(true);
    expect(readFileSync(join(stateDir(), "links.json"), "utf8")).toContain("192.0.2.5");
    // The admin's mistake; then the user's move: a record whose address ends the line and adds a command.
    chmodSync(stateDir(), 0o777);
    const evil = JSON.stringify({ em1: { network: "default", bridge: "virbr0", addresses: [{ family: 4, local: "192.0.2.5/24 dev em1\nlink add vhpwn type bridge\naddress add 192.0.2.6", prefixlen: 24, scope: "global" }], routes: [] } });
    const planted = await run(asNobody(["sh", "-c", 'rm -f "$1" && printf %s "$2" > "$1"', "sh", join(stateDir(), "links.json"), evil]));
    expect(planted.code, planted.stderr).toBe(0);

    await ns.must(["ip", "link", "del", "virbr0"]);
    rmSync(join(t.root, "run/libvirt/network/default.xml"));
    const stopped = await hook("network default stopped end -", fixture("09-network-stopped-end.xml"));
    expect(stopped.code, stopped.stderr).toBe(0);
    if (process.env.VH_DEBUG) console.log(stopped.stderr);
    // Earlier releases ran the user's line as root: a bridge named vhpwn appeared.
    expect((await ns.exec(["ip", "link", "show", "vhpwn"])).code).not.toBe(0);
    const log = logLines(stopped.stderr).join("\n");
    expect(log).toContain(`${stateDir()}: refused: writable by group and others (mode 0777)`);
    expect(log).toContain("chmod go-w");
    // Nothing of ours was written there either.
    expect(existsSync(join(stateDir(), "applied.json.tmp"))).toBe(false);
  });

  it("a user's forged interest record in a state directory others may write cannot make hooks ignore a guest", async () => {
    const vm = walkableTree(new HostTree("virt-hooks-hostile-"));
    try {
      vm.setNetwork("default", fixture("status-network-default.xml"));
      vm.setDomainStatus("vm1", fixture("status-qemu-vm1.xml"));
      vm.writeRules("50-vm1.rules", "forward tcp 2222 to vm1:22\n");
      const first = await ns.exec(vm.hookArgv("qemu vm1 start begin -"), { env: vm.env(), input: fixture("05-qemu-start-begin.xml") });
      expect(first.stderr).toContain("rules 1 live");
      const dir = join(vm.root, "run/virt-hooks");
      chmodSync(dir, 0o777);
      // The user reads rules.d (0644, as on a real host) and forges "no rule names anything" for exactly these rules.
      const file = join(vm.rulesDir, "50-vm1.rules");
      const text = readFileSync(file, "utf8");
      const forged = JSON.stringify({ rules: `${file}\0${text.length}\0${text}`, anyRules: false, domains: [], clean: true });
      const planted = await run(asNobody(["sh", "-c", 'rm -f "$1" && printf %s "$2" > "$1"', "sh", join(dir, "interest.json"), forged]));
      expect(planted.code, planted.stderr).toBe(0);
      await ns.exec(["iptables", "-t", "nat", "-F"]);
      const r = await ns.exec(vm.hookArgv("qemu vm1 start begin -"), { env: vm.env(), input: fixture("05-qemu-start-begin.xml") });
      expect(r.code).toBe(0);
      // Earlier releases believed it: the start was "ignored" and the guest's forward stayed gone.
      expect(r.stderr).toContain("rules 1 live");
      expect(await dnatRules(ns)).toHaveLength(2);
    } finally {
      vm.dispose();
    }
  });

  it("the watcher writes nothing into a state directory others may write: a planted symlink is no root write anywhere", async () => {
    const dir = stateDir();
    mkdirSync(dir, { recursive: true, mode: 0o777 });
    chmodSync(dir, 0o777);
    const victim = join(t.root, "victim");
    writeFileSync(victim, "precious\n", { mode: 0o600 });
    const planted = await run(asNobody(["ln", "-s", victim, join(dir, "watch.json.tmp")]));
    expect(planted.code, planted.stderr).toBe(0);
    const argv = ns.argv(t.cliArgv("watch"));
    const watcher = spawn(argv[0] as string, argv.slice(1), { env: t.env(), stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    watcher.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
    try {
      for (let i = 0; i < 100 && !/watch: started/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
      expect(err).toMatch(/watch: started/);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      watcher.kill("SIGTERM");
      await new Promise((r) => watcher.once("exit", r));
    }
    // Earlier releases wrote their state through the user's symlink: the victim held the watcher's JSON.
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(existsSync(join(dir, "watch.json"))).toBe(false);
  });

  it("a record in a trusted directory is still data: a value no version writes is dropped, never run", async () => {
    const started = await hook("network default started begin -", networkStatusXml([], "", "hook"));
    expect(started.code).toBe(0);
    const records = JSON.parse(readFileSync(join(stateDir(), "links.json"), "utf8"));
    records.em1.addresses[0].local = "192.0.2.5/24 dev em1\nlink add vhpwn type bridge\naddress add 192.0.2.6";
    writeFileSync(join(stateDir(), "links.json"), JSON.stringify(records), { mode: 0o600 });
    await ns.must(["ip", "link", "del", "virbr0"]);
    rmSync(join(t.root, "run/libvirt/network/default.xml"));
    const stopped = await hook("network default stopped end -", fixture("09-network-stopped-end.xml"));
    expect(stopped.code).toBe(0);
    expect((await ns.exec(["ip", "link", "show", "vhpwn"])).code).not.toBe(0);
    expect(logLines(stopped.stderr).join("\n")).toContain("links.json: 1 record(s) with values this version never writes; ignored");
  });

  it("/run read-only: links are left alone with the reason, and the firewall is still reconciled (every forward)", async () => {
    // A private mount namespace: a read-only tmpfs over the state directory, for this hook alone.
    const MOUNT = 'mkdir -p "$1" && mount -t tmpfs -o ro,mode=0700 tmpfs "$1" && shift && exec "$@"';
    const r = await ns.exec(["unshare", "-m", "--propagation", "private", "sh", "-c", MOUNT, "sh", stateDir(), ...t.hookArgv("network default started begin -")], { env: t.env(), input: networkStatusXml([], "", "hook") });
    expect(r.code, r.stderr).toBe(0);
    // Earlier releases: the links record threw, and 0 of the 4 DNAT rules were written.
    expect(await dnatRules(ns), r.stderr).toHaveLength(4);
    expect(logLines(r.stderr).join("\n")).toContain("not changed, since what they would move cannot be recorded");
    // em1 keeps its address: nothing moved that could not be put back.
    expect((await ns.must(["ip", "-o", "-4", "address", "show", "dev", "em1"])).stdout).toContain("192.0.2.5/24");
  });

  it("/run full: the same", async () => {
    const MOUNT = 'mkdir -p "$1" && mount -t tmpfs -o size=8k,mode=0700 tmpfs "$1" && (dd if=/dev/zero of="$1/fill" bs=4k count=8 2>/dev/null; true) && shift && exec "$@"';
    const r = await ns.exec(["unshare", "-m", "--propagation", "private", "sh", "-c", MOUNT, "sh", stateDir(), ...t.hookArgv("network default started begin -")], { env: t.env(), input: networkStatusXml([], "", "hook") });
    expect(r.code, r.stderr).toBe(0);
    expect(await dnatRules(ns)).toHaveLength(4);
    expect(logLines(r.stderr).join("\n")).toContain("not changed, since what they would move cannot be recorded");
  });
});
