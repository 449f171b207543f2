// Binary tier: `virt-hooks host add|del` as the compiled executable, against a
// scratch VIRT_HOOKS_ROOT (libvirt's status file and persistent definition),
// with a fake `virsh` first in PATH that records its argv. The real-libvirt
// end-to-end is the e2e tier's.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HostTree, networkStatusXml, run, type Run } from "../helpers/binary.js";

const V6 = "    <ip family='ipv6' address='fd00:122::1' prefix='64'>\n      <dhcp>\n        <range start='fd00:122::100' end='fd00:122::1ff'/>\n        <host name='vm1' ip='fd00:122::10'/>\n      </dhcp>\n    </ip>\n";

describe("binary: virt-hooks host add/del", () => {
  let t: HostTree;
  let bin: string;
  const argvLog = () => join(t.root, "virsh.argv");
  /** Each virsh call: its argv (NUL-separated in the log, one call per line). */
  const virshCalls = (): string[][] =>
    existsSync(argvLog()) ? readFileSync(argvLog(), "utf8").split("\n").filter(Boolean).map((l) => l.split("\0").slice(0, -1)) : [];
  const cli = (...args: string[]): Promise<Run> => run(t.cliArgv("host", ...args), { env: t.env(bin) });

  beforeEach(() => {
    // default: 192.168.122.0/24, range .100-.254, vm1 .10 (captured), vm2 .20; an IPv6 subnet too.
    t = HostTree.withDefaultNetwork([{ mac: "52:54:00:6c:3c:02", name: "vm2", ip: "192.168.122.20" }], V6);
    mkdirSync(join(t.root, "etc/libvirt/qemu/networks"), { recursive: true });
    writeFileSync(join(t.root, "etc/libvirt/qemu/networks/default.xml"), networkStatusXml([], V6).replace(/[\s\S]*?(<network[\s>])/, "$1").replace(/<\/networkstatus>[\s\S]*/, ""));
    bin = t.fakeTools({ virsh: `printf '%s\\0' "$@" >> ${JSON.stringify(argvLog())}; printf '\\n' >> ${JSON.stringify(argvLog())}; echo "Updated network default live state"` });
  });

  afterEach(() => t.dispose());

  it("adds an entry live and persistently with one virsh net-update, argv as an array", async () => {
    const r = await cli("add", "default", "52:54:00:AA:BB:CC", "192.168.122.30", "web");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(virshCalls()).toEqual([["net-update", "default", "add", "ip-dhcp-host", "<host mac='52:54:00:aa:bb:cc' name='web' ip='192.168.122.30'/>", "--parent-index", "0", "--live", "--config"]]);
    expect(r.stdout).toContain(`added <host mac='52:54:00:aa:bb:cc' name='web' ip='192.168.122.30'/> to network "default" (live and persistent)`);
  });

  it("IPv6: matched by name, in the IPv6 <ip> element (--parent-index 1)", async () => {
    const r = await cli("add", "default", "52:54:00:aa:bb:cc", "fd00:122::30", "web");
    expect(r.code).toBe(0);
    expect(virshCalls()).toEqual([["net-update", "default", "add", "ip-dhcp-host", "<host name='web' ip='fd00:122::30'/>", "--parent-index", "1", "--live", "--config"]]);
  });

  it.each([
    [["add", "nosuch", "52:54:00:aa:bb:cc", "192.168.122.30"], 'no network named "nosuch" on this host', "virsh net-list --all"],
    [["add", "default", "52:54:00:aa:bb", "192.168.122.30"], 'is not a MAC address', "52:54:00:12:34:56"],
    [["add", "default", "01:00:5e:00:00:01", "192.168.122.30"], "multicast MAC", "virsh domiflist"],
    [["add", "default", "52:54:00:aa:bb:cc", "192.168.123.30"], `192.168.123.30 is not inside network "default"'s subnet 192.168.122.0/24`, "pick an address inside 192.168.122.0/24"],
    [["add", "default", "52:54:00:aa:bb:cc", "192.168.122.1"], "the host's own address", "pick another address"],
    [["add", "default", "52:54:00:aa:bb:cc", "192.168.122.255"], "broadcast address", "pick another address"],
    [["add", "default", "52:54:00:6c:3c:01", "192.168.122.30"], "MAC 52:54:00:6c:3c:01 already has an entry", "virt-hooks host del default 52:54:00:6c:3c:01 && virt-hooks host add default"],
    [["add", "default", "52:54:00:aa:bb:cc", "192.168.122.20"], "192.168.122.20 is already given to <host mac='52:54:00:6c:3c:02' name='vm2' ip='192.168.122.20'/>", "pick another address"],
    [["add", "default", "52:54:00:aa:bb:cc", "192.168.122.30", "vm2"], 'the name "vm2" is already used', "pick another name"],
    [["add", "default", "52:54:00:aa:bb:cc", "192.168.122.30", "bad name!"], "is not a host name", "letters, digits"],
    [["add", "default", "52:54:00:aa:bb:cc", "fd00:122::30"], "an IPv6 host entry needs a NAME", "virt-hooks host add default 52:54:00:aa:bb:cc fd00:122::30 NAME"],
    [["del", "default", "52:54:00:de:ad:00"], 'network "default" has no DHCP host entry with MAC 52:54:00:de:ad:00', "its entries: <host mac='52:54:00:6c:3c:01' name='vm1' ip='192.168.122.10'/>"],
  ])("refuses %j before calling virsh, with the fix", async (args, message, hint) => {
    const r = await cli(...args);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toMatch(/\n  hint: /);
    expect(r.stderr).toContain(hint);
    expect(virshCalls()).toEqual([]);
  });

  it("inside the DHCP range: added (dnsmasq reserves it); leased to another MAC right now: refused, with a free address", async () => {
    mkdirSync(join(t.root, "var/lib/libvirt/dnsmasq"), { recursive: true });
    writeFileSync(join(t.root, "var/lib/libvirt/dnsmasq/virbr0.status"), JSON.stringify([{ "ip-address": "192.168.122.151", "mac-address": "52:54:00:00:00:99", hostname: "other", "expiry-time": 2000000000 }]));
    const leased = await cli("add", "default", "52:54:00:aa:bb:cc", "192.168.122.151");
    expect(leased.code).toBe(1);
    expect(leased.stderr).toContain("192.168.122.151 is inside the network's DHCP range 192.168.122.100-192.168.122.254 and dnsmasq has leased it to 52:54:00:00:00:99 (other)");
    expect(leased.stderr).toContain("the first free one is 192.168.122.2");
    expect(virshCalls()).toEqual([]);
    const ok = await cli("add", "default", "52:54:00:aa:bb:cc", "192.168.122.150");
    expect(ok.code, ok.stderr).toBe(0);
    expect(virshCalls()).toHaveLength(1);
  });

  it("the same entry again is not an error and calls nothing", async () => {
    const r = await cli("add", "default", "52:54:00:6c:3c:02", "192.168.122.20", "vm2");
    expect([r.code, r.stdout]).toEqual([0, 'network "default" already has this entry; nothing to do\n']);
    expect(virshCalls()).toEqual([]);
  });

  it("deletes by MAC, by address and by name (every family's entry of that name)", async () => {
    expect((await cli("del", "default", "52:54:00:6C:3C:02")).code).toBe(0);
    expect((await cli("del", "default", "192.168.122.20")).code).toBe(0);
    const byName = await cli("del", "default", "vm1");
    expect(byName.code).toBe(0);
    expect(virshCalls()).toEqual([
      ["net-update", "default", "delete", "ip-dhcp-host", "<host mac='52:54:00:6c:3c:02' name='vm2' ip='192.168.122.20'/>", "--parent-index", "0", "--live", "--config"],
      ["net-update", "default", "delete", "ip-dhcp-host", "<host mac='52:54:00:6c:3c:02' name='vm2' ip='192.168.122.20'/>", "--parent-index", "0", "--live", "--config"],
      ["net-update", "default", "delete", "ip-dhcp-host", "<host mac='52:54:00:6c:3c:01' name='vm1' ip='192.168.122.10'/>", "--parent-index", "0", "--live", "--config"],
      ["net-update", "default", "delete", "ip-dhcp-host", "<host name='vm1' ip='fd00:122::10'/>", "--parent-index", "1", "--live", "--config"],
    ]);
    expect(byName.stdout).toContain(`deleted <host name='vm1' ip='fd00:122::10'/> from network "default"`);
  });

  it("a network that is defined but not running: --config only, and says so", async () => {
    rmSync(join(t.root, "run/libvirt/network/default.xml"));
    const r = await cli("add", "default", "52:54:00:aa:bb:cc", "192.168.122.30");
    expect(r.code).toBe(0);
    expect(virshCalls()[0]?.slice(-2)).toEqual(["0", "--config"]);
    expect(r.stdout).toContain("persistent only: the network is not running");
  });

  it("reports virsh's own refusal with exit 3", async () => {
    bin = t.fakeTools({ virsh: `echo "error: Requested operation is not valid" >&2; exit 1` });
    const r = await cli("add", "default", "52:54:00:aa:bb:cc", "192.168.122.30");
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("failed (exit 1): error: Requested operation is not valid");
  });

  it.each([[[]], [["add", "default"]], [["del", "default"]], [["move", "default", "x"]]])("usage errors exit 2: %j", async (args) => {
    const r = await cli(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("usage: virt-hooks host add NETWORK MAC IP [NAME]");
  });
});
