// End-to-end, reliability (issue 7): many hook invocations at once, faults
// injected into the firewall tools and kill -9 mid-apply, Docker's and an
// admin's own firewall beside ours, and rebuilds that no hook sees repaired by
// what the shipped systemd units run. Real libvirtd 11.3, the installed
// hooks, real TCP connections, on each firewall backend (model:
// forwards.test.ts; lab.ts explains the stand-ins).
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRoot, SYSTEM_PATH, type Run } from "../helpers/binary.js";
import { Lab, type Backend } from "./lab/lab.js";

const HOST = "192.168.1.100";
const CLIENT = "192.168.1.2";
const guest = (n: number) => ({ name: `r${n}`, mac: `52:54:00:70:00:1${n}`, ip: `192.168.122.2${n}`, port: 2100 + n });
const R = [1, 2, 3, 4, 5, 6].map(guest) as [ReturnType<typeof guest>, ...ReturnType<typeof guest>[]];
const [R1, R2, R3, R4, R5, R6] = R as [typeof R[0], typeof R[0], typeof R[0], typeof R[0], typeof R[0], typeof R[0]];

const defaultNetwork = `<network><name>default</name><forward mode='nat'/><bridge name='virbr0' stp='off'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.100' end='192.168.122.254'/>
    ${R.map((g) => `<host mac='${g.mac}' name='${g.name}' ip='${g.ip}'/>`).join("\n    ")}</dhcp></ip></network>`;

const FORWARDS = R.map((g) => `forward tcp ${g.port} to ${g.name}:22\n`).join("");

/**
 * A stand-in for a firewall tool, first in PATH: passes everything through to
 * the real one, except input containing the marker (a port only the fault's
 * rule uses), which it treats as $DIR/mode says: fail (apply nothing), partial
 * (apply the first table up to its COMMIT, then fail), hang-before (never
 * apply; wait to be killed), hang-after (apply, then wait to be killed).
 */
const FAULTY_TOOL = `#!/bin/sh
d=$(dirname "$0")/..
real=/usr/sbin/$(basename "$0")
in=$(mktemp)
cat >"$in"
if [ -s "$d/marker" ] && grep -q -- "$(cat "$d/marker")" "$in"; then
  case $(cat "$d/mode") in
    fail) echo "injected: refusing the transaction" >&2; rm -f "$in"; exit 1 ;;
    partial) sed '/^COMMIT/q' "$in" | "$real" "$@"; echo "injected: refusing after the first table" >&2; rm -f "$in"; exit 1 ;;
    hang-before) echo "$$ $PPID" >"$d/pids.new"; mv "$d/pids.new" "$d/pids"; exec sleep 300 ;;
    hang-after) "$real" "$@" <"$in"; echo "$$ $PPID" >"$d/pids.new"; mv "$d/pids.new" "$d/pids"; exec sleep 300 ;;
  esac
fi
"$real" "$@" <"$in"
rc=$?
rm -f "$in"
exit $rc
`;

/** Docker's filter and nat chains as `dockerd` sets them up (iptables-save form, --noflush). */
const DOCKER = `*filter
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-I FORWARD 1 -j DOCKER-USER
-I FORWARD 2 -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -s 198.51.100.0/24 -j DROP
-A DOCKER-USER -j RETURN
COMMIT
*nat
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
COMMIT
`;

/** An admin's own nftables firewall: a forward chain whose policy is drop, letting through what it knows. */
const ADMIN_NFT = `table inet admin {
	set blocked {
		type ipv4_addr
		elements = { 198.51.100.7 }
	}
	chain input {
		type filter hook input priority filter; policy accept;
		ip saddr @blocked counter drop
	}
	chain forward {
		type filter hook forward priority filter + 10; policy drop;
		ct state established,related accept
		iifname "virbr*" accept
		ip saddr @blocked counter drop
	}
}
`;

const BACKENDS: Backend[] = ["iptables", "nftables"];
const HOOK_ENV = { PATH: SYSTEM_PATH, LC_ALL: "C" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot).each(BACKENDS)("e2e reliability (%s backend)", (backend) => {
  let lab: Lab;
  let faults: string;
  const cli = (args: string[], env?: NodeJS.ProcessEnv) => lab.exec(["/usr/local/sbin/virt-hooks", ...args], env ? { env } : {});
  const faultyEnv = () => ({ PATH: `${join(faults, "bin")}:${SYSTEM_PATH}`, LC_ALL: "C" });
  const status = async () => (await cli(["status"])).code;
  const expectApplied = async () => {
    const r = await cli(["apply"]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
  };
  /** The firewall matches the rules, as a reconcile from scratch sees it. */
  const expectConverged = async () => {
    const plan = await cli(["plan"]);
    expect(plan.stdout, plan.stdout + plan.stderr).toMatch(/ipv4: the firewall already matches the rules/);
  };

  /** Everything of ours in the kernel (both families), as text. */
  async function ours(): Promise<string> {
    if (backend === "iptables") {
      const all = (await lab.iptablesSave(4)) + "\n" + (await lab.iptablesSave(6));
      return all.split("\n").filter((l) => l.includes("VIRT_HOOKS")).join("\n");
    }
    const rules = await lab.nftRuleset();
    const tables = rules.match(/table ip6? virt_hooks \{[\s\S]*?\n\}/g) ?? [];
    return [...tables, ...rules.split("\n").filter((l) => l.includes('comment "virt-hooks"'))].join("\n").replace(/counter packets \d+ bytes \d+/g, "counter");
  }

  /** Our accept (iptables: our jump) is the first rule where libvirt's rejects would see the packet. */
  async function oursFirst(): Promise<boolean> {
    if (backend === "iptables") {
      const forward = (await lab.iptablesSave()).split("\n").filter((l) => l.startsWith("-A FORWARD "));
      return forward[0] === "-A FORWARD -j VIRT_HOOKS_FWD";
    }
    const chain = (await lab.must(["nft", "list", "chain", "ip", "libvirt_network", "forward"])).stdout;
    const rules = chain.split("\n").map((l) => l.trim()).filter((l) => /^(meta|jump|counter|accept|ip|ct)/.test(l));
    return /comment "virt-hooks"$/.test(rules[0] ?? "");
  }

  const hook = (driver: "qemu" | "network", args: string, input: string, env: NodeJS.ProcessEnv = HOOK_ENV) =>
    lab.exec([`/etc/libvirt/hooks/${driver}`, ...args.split(" ")], { input, env });

  /** What libvirt hands `qemu NAME start|started|reconnect begin -`: the live <domain> of the status file. */
  const domainXml = (name: string) => {
    const status = readFileSync(join(lab.root, "run", "libvirt", "qemu", `${name}.xml`), "utf8");
    const xml = /<domain[\s>][\s\S]*<\/domain>/.exec(status)?.[0];
    if (!xml) throw new Error(`no <domain> in ${name}'s status file`);
    return xml;
  };
  /** What libvirt hands `network NET ...`: <hookData> with the live <network> (and a <networkport>). */
  const networkHookData = (net: string, port = "") => {
    const status = readFileSync(join(lab.root, "run", "libvirt", "network", `${net}.xml`), "utf8");
    const xml = /<network[\s>][\s\S]*<\/network>/.exec(status)?.[0];
    if (!xml) throw new Error(`no <network> in ${net}'s status file`);
    return `<hookData>\n${xml}\n${port}</hookData>\n`;
  };
  const portXml = (g: typeof R1) => {
    const owner = /<uuid>([^<]+)<\/uuid>/.exec(domainXml(g.name))?.[1] ?? randomUUID();
    return `<networkport>\n  <uuid>${randomUUID()}</uuid>\n  <owner>\n    <name>${g.name}</name>\n    <uuid>${owner}</uuid>\n  </owner>\n  <mac address='${g.mac}'/>\n  <plug type='network' bridge='virbr0'/>\n</networkport>\n`;
  };

  function setFault(mode: string, marker: string): void {
    rmSync(join(faults, "pids"), { force: true });
    writeFileSync(join(faults, "mode"), mode);
    writeFileSync(join(faults, "marker"), marker);
  }

  beforeAll(async () => {
    lab = await Lab.start(backend);
    faults = join(lab.root, "faults");
    mkdirSync(join(faults, "bin"), { recursive: true });
    for (const tool of ["iptables-restore", "nft"]) writeFileSync(join(faults, "bin", tool), FAULTY_TOOL, { mode: 0o755 });
    await lab.install();
    lab.writeRules("10-forwards.rules", FORWARDS);
    await lab.outside(HOST, CLIENT, 24);
    await lab.serve("outside", [8080], "outside");
    await lab.startDaemons();
    await lab.defineNetwork(defaultNetwork);
    await Promise.all(R.map((g) => lab.defineGuest({ ...g, network: "default" })));
    await Promise.all([R1, R2, R3, R4, R5].map((g) => lab.virsh("start", g.name)));
    for (const g of [R1, R5]) await lab.standIn(g.name, g.mac, { ip: g.ip, prefix: 24, gateway: "192.168.122.1", ports: [22] });
  });

  afterAll(async () => {
    await lab?.dispose();
  });

  it("1. concurrency: 24 hook invocations at once (reconnect, start, started, network started/updated/port-created) beside a real destroy and start: exactly the desired rules, nothing duplicated or lost", async () => {
    expect(await lab.probe(HOST, R5.port, "outside")).toBe(`r5:22 ${CLIENT}`);
    const steady = [R1, R2, R3, R4];
    const calls: [driver: "qemu" | "network", args: string, input: string][] = [];
    for (const g of steady) {
      const xml = domainXml(g.name);
      for (const op of ["reconnect", "reconnect", "start", "started"]) calls.push(["qemu", `${g.name} ${op} begin -`, xml]);
      calls.push(["network", "default port-created begin -", networkHookData("default", portXml(g))]);
    }
    for (const op of ["started", "started", "updated", "updated"]) calls.push(["network", `default ${op} begin -`, networkHookData("default")]);
    expect(calls.length).toBeGreaterThanOrEqual(24);
    const mark = lab.journal.lines.length;
    const [direct, real] = await Promise.all([
      Promise.all(calls.map(([d, a, x]) => hook(d, a, x))),
      Promise.all([lab.virsh("destroy", R5.name), lab.virsh("start", R6.name)]),
    ]);
    expect(real).toHaveLength(2);
    direct.forEach((r: Run, i) => {
      expect(r.code, `${calls[i]?.[1]}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toBe("");
    });
    await lab.standIn(R6.name, R6.mac, { ip: R6.ip, prefix: 24, gateway: "192.168.122.1", ports: [22] });
    // Every invocation logged its line; none logged an error (a lock timeout, a refused transaction).
    const logged = lab.journal.lines.slice(mark);
    expect(logged.filter((l) => /^(qemu|network) \S+ \S+ \S+: /.test(l.text)).length).toBeGreaterThanOrEqual(calls.length);
    expect(logged.filter((l) => l.priority <= 3).map((l) => l.text)).toEqual([]);
    await expectConverged();
    const mine = await ours();
    for (const g of [R1, R2, R3, R4, R6]) expect(mine).toContain(g.ip);
    expect(mine).not.toContain(R5.ip);
    if (backend === "iptables") {
      const lines = mine.split("\n").filter((l) => l.startsWith("-A "));
      expect(new Set(lines).size).toBe(lines.length);
      expect(lines.filter((l) => l.startsWith("-A FORWARD "))).toEqual(["-A FORWARD -j VIRT_HOOKS_FWD"]);
    } else {
      expect(mine.split("\n").filter((l) => l.includes('comment "virt-hooks"'))).toHaveLength(1);
    }
    expect(await oursFirst()).toBe(true);
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
    expect(await lab.probe(HOST, R6.port, "outside")).toBe(`r6:22 ${CLIENT}`);
    expect(await lab.probe(HOST, R5.port, "outside")).toMatch(/refused|timeout/);
    expect(await status()).toBe(0);
  });

  const failModes = backend === "iptables" ? ["fail", "partial"] : ["fail"];
  it.each(failModes)("2. atomic failure: the firewall tool refuses the transaction (%s): apply exits 3, a hook exits 0, the previous rules stay whole and work; the next apply repairs", async (mode) => {
    const before = await ours();
    setFault(mode, "2999");
    lab.writeRules("50-fault.rules", `forward tcp 2999 to r1:22\n`);
    const r = await cli(["apply"], faultyEnv());
    expect(r.code, r.stderr + r.stdout).toBe(3);
    expect(r.stderr + r.stdout).toMatch(/injected/);
    expect(await ours()).toBe(before);
    // The same fault under a hook: it never hurts the guest (exit 0) and changes nothing.
    const h = await hook("qemu", "r1 reconnect begin -", domainXml(R1.name), faultyEnv());
    expect(h.code).toBe(0);
    expect(await ours()).toBe(before);
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
    expect(await lab.probe(HOST, 2999, "outside")).toMatch(/refused|timeout/);
    expect(await status()).toBe(5);
    await expectApplied();
    expect(await lab.probe(HOST, 2999, "outside")).toBe(`r1:22 ${CLIENT}`);
    expect(await status()).toBe(0);
    lab.removeRules("50-fault.rules");
    await expectApplied();
  });

  it.each(["hang-before", "hang-after"])("3. kill -9 of virt-hooks apply while its firewall tool runs (%s the kernel took the change): the rules are whole, the lock is free, the next apply repairs", async (mode) => {
    const port = mode === "hang-before" ? 2998 : 2997;
    const before = await ours();
    setFault(mode, String(port));
    lab.writeRules("50-fault.rules", `forward tcp ${port} to r1:22\n`);
    const applying = cli(["apply"], faultyEnv());
    const pids = join(faults, "pids");
    for (let i = 0; i < 600 && !existsSync(pids); i++) await sleep(50);
    const [tool, parent] = readFileSync(pids, "utf8").trim().split(" ").map(Number) as [number, number];
    process.kill(parent, "SIGKILL");
    process.kill(tool, "SIGKILL");
    const killed = await applying;
    expect(killed.code).not.toBe(0);
    // Either nothing of the new transaction, or all of it: never a part.
    const after = await ours();
    if (mode === "hang-before") {
      expect(after).toBe(before);
      expect(await lab.probe(HOST, port, "outside")).toMatch(/refused|timeout/);
    } else {
      expect(after).toContain(`${port}`);
      expect(await lab.probe(HOST, port, "outside")).toBe(`r1:22 ${CLIENT}`);
    }
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
    // The dead process's lock went with it: the next apply neither waits it out nor fails.
    const t0 = Date.now();
    await expectApplied();
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(await status()).toBe(0);
    await expectConverged();
    expect(await lab.probe(HOST, port, "outside")).toBe(`r1:22 ${CLIENT}`);
    lab.removeRules("50-fault.rules");
    await expectApplied();
  });

  /** Docker's lines (and the FORWARD policy), sorted: Docker re-inserting its jumps reorders them. */
  async function dockers(): Promise<string[]> {
    const save = await lab.iptablesSave();
    return save.split("\n").filter((l) => /DOCKER|docker0|172\.17\.|^:FORWARD /.test(l)).map((l) => l.replace(/\[\d+:\d+\]/, "")).sort();
  }

  it("4a. Docker beside us: FORWARD policy DROP, DOCKER-USER and its other chains jumped from FORWARD above ours: nothing of Docker's is deleted by apply or flush", async () => {
    await lab.must(["iptables-restore", "--noflush", "--wait"], { input: DOCKER });
    await lab.must(["iptables", "-w", "-P", "FORWARD", "DROP"]);
    const docker = await dockers();
    expect(docker).toContain(":FORWARD DROP ");
    await expectApplied();
    expect(await dockers()).toEqual(docker);
    const flush = await cli(["flush"]);
    expect(flush.code, flush.stderr).toBe(0);
    expect(await dockers()).toEqual(docker);
    await expectApplied();
    expect(await dockers()).toEqual(docker);
    expect(await oursFirst()).toBe(true);
  });

  // With libvirt's nftables backend a packet must be accepted by EVERY base chain on the
  // forward hook: Docker's `ip filter FORWARD` (iptables-nft, policy DROP) drops our DNAT'd
  // flows (and libvirt's own guest traffic) whatever our table and libvirt's chain accept,
  // and virt-hooks never writes into tables it does not own. The README's fix is one line in
  // DOCKER-USER accepting the mark our table sets. Our table marks both directions of a
  // forwarded flow (render/nftables.ts): the guest's SYN-ACK must pass Docker's DROP too,
  // and Docker's own FORWARD accepts established flows only `-o docker0`.
  (backend === "nftables" ? it : it.skip)("4b1. nftables backend, Docker beside us: the README's one DOCKER-USER line lets forwards through Docker's FORWARD policy DROP", async () => {
    expect(await lab.probe(HOST, R1.port, "outside")).toMatch(/timeout/);
    await lab.must(["iptables", "-w", "-I", "DOCKER-USER", "-m", "mark", "--mark", "0x10000000/0x10000000", "-j", "ACCEPT"]);
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
  });

  // The iptables backend needs nothing: our jump sits first in that same FORWARD chain.
  it("4b2. Docker beside us: forwards work through Docker's FORWARD policy DROP (nftables backend: with 4b1's one line in DOCKER-USER), also after Docker re-inserted its jumps above ours", async () => {
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
    // `systemctl restart docker`: its jumps go back to the top of FORWARD; DOCKER-USER keeps its rules.
    for (const chain of ["DOCKER-ISOLATION-STAGE-1", "DOCKER-USER"]) {
      await lab.must(["iptables", "-w", "-D", "FORWARD", "-j", chain]);
      await lab.must(["iptables", "-w", "-I", "FORWARD", "-j", chain]);
    }
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
    // libvirt's own NAT out of the guest: through Docker's DROP only where libvirt's rules share its chain.
    if (backend === "iptables") expect(await lab.probe(CLIENT, 8080, lab.guestNetns(R1.name))).toBe(`outside:8080 ${HOST}`);
    await expectApplied();
    expect(await oursFirst()).toBe(true);
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
  });

  it("4c. an admin's own nftables table (drop-policy forward chain, sets, counters): nothing of it is changed by apply or flush", async () => {
    // Docker's DROP policy would hide what the admin's chain does.
    await lab.must(["iptables", "-w", "-P", "FORWARD", "ACCEPT"]);
    await lab.must(["nft", "-f", "-"], { input: ADMIN_NFT });
    const admin = async () => (await lab.must(["nft", "list", "table", "inet", "admin"])).stdout.replace(/counter packets \d+ bytes \d+/g, "counter");
    const theirs = await admin();
    await expectApplied();
    expect(await admin()).toBe(theirs);
    expect((await cli(["flush"])).code).toBe(0);
    expect(await admin()).toBe(theirs);
    await expectApplied();
    expect(await admin()).toBe(theirs);
  });

  // The same rule as 4b for a table of the admin's own: its drop-policy chain (accepting
  // established flows and the guests' bridges) drops the first packet of each DNAT'd flow.
  // The admin's one line: our mark (README) on the nftables backend; the iptables backend
  // sets no mark, so there it takes `ct status dnat accept` (which the README does not say).
  it("4d. an admin's own nftables table with a drop-policy forward chain drops our forwards until the admin accepts them with one line; the guests' own traffic is unaffected", async () => {
    expect(await lab.probe(CLIENT, 8080, lab.guestNetns(R1.name))).toBe(`outside:8080 ${HOST}`);
    expect(await lab.probe(HOST, R1.port, "outside")).toMatch(/timeout/);
    const accept = backend === "nftables" ? "meta mark & 0x10000000 == 0x10000000 accept" : "ct status dnat accept";
    await lab.must(["nft", "insert", "rule", "inet", "admin", "forward", ...accept.split(" ")]);
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
    await expectApplied();
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
  });

  it("5. rebuilds no hook sees: our chain's jump flushed / our table flushed: status exits 5, the apply unit's command repairs, status exits 0", async () => {
    await lab.must(["nft", "delete", "table", "inet", "admin"]);
    if (backend === "iptables") await lab.must(["iptables", "-w", "-t", "nat", "-F", "PREROUTING"]);
    else await lab.must(["nft", "flush", "table", "ip", "virt_hooks"]);
    expect(await lab.probe(HOST, R1.port, "outside")).toMatch(/refused|timeout/);
    expect(await status()).toBe(5);
    await runUnit("virt-hooks-apply.service", "ExecStart");
    expect(await status()).toBe(0);
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
  });

  it("6. a firewall reload (everything flushed) then `systemctl reload libvirtd` (SIGHUP: libvirt rebuilds its rules, no hook fires): status exits 5, the reapply unit's commands repair, status exits 0", async () => {
    if (backend === "iptables") {
      for (const table of ["filter", "nat", "mangle"]) {
        await lab.must(["iptables", "-w", "-t", table, "-F"]);
        await lab.must(["iptables", "-w", "-t", table, "-X"]);
      }
    } else {
      await lab.must(["nft", "flush", "ruleset"]);
    }
    const mark = lab.journal.lines.length;
    await lab.sighupLibvirtd();
    expect(await lab.probe(HOST, R1.port, "outside")).toMatch(/refused|timeout/);
    expect(lab.journal.since(mark)).toEqual([]);
    expect(await status()).toBe(5);
    const ms = await runUnit("virt-hooks-reapply.service", "ExecReload");
    console.log(`[${backend}] reapply after a flush + SIGHUP: ${ms} ms`);
    expect(await status()).toBe(0);
    expect(await lab.probe(HOST, R1.port, "outside")).toBe(`r1:22 ${CLIENT}`);
    expect(await lab.probe(HOST, R6.port, "outside")).toBe(`r6:22 ${CLIENT}`);
    // libvirt 11.3 restores its nftables table only when it starts (libvirt-facts.md): until
    // then nothing of libvirt's rejects, and its next start's reconnect hooks put our accept
    // atop it again (forwards.test.ts, 2a/2c).
    if (backend === "nftables") expect((await lab.exec(["nft", "list", "table", "ip", "libvirt_network"])).code).not.toBe(0);
    else expect(await oursFirst()).toBe(true);
  });

  /**
   * Runs a shipped unit's commands of one kind as installed in the lab (no systemd here):
   * ExecStart=/ExecReload= lines, "-" prefix honoured, the 5 s sleep between passes skipped.
   */
  async function runUnit(unit: string, key: "ExecStart" | "ExecReload"): Promise<number> {
    const dir = join(lab.root, "usr-local", "lib", "systemd", "system");
    expect(readdirSync(dir)).toContain(unit);
    const text = readFileSync(join(dir, unit), "utf8");
    const commands = [...text.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => (m[1] as string).trim());
    expect(commands.some((c) => /virt-hooks apply$/.test(c))).toBe(true);
    const t0 = Date.now();
    for (const c of commands) {
      if (/^-?\/bin\/sleep /.test(c)) continue;
      const ignoreFailure = c.startsWith("-");
      const r = await lab.exec(c.replace(/^-/, "").split(" "), { env: HOOK_ENV });
      if (!ignoreFailure) expect(r.code, r.stderr).toBe(0);
    }
    return Date.now() - t0;
  }
});
