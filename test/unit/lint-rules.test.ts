// The lint warnings check/plan/status add: names this host does not know, host
// addresses that are not its own, forwards over a listening service. Pure:
// host facts are passed in as values.
import { describe, expect, it } from "vitest";
import { lintRules, type HostFacts } from "../../src/lint/lint.js";
import { firewalldForwardPorts, parseProcNet, procAddress, strictForwardPorts } from "../../src/lint/facts.js";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileText } from "../helpers/rules.js";

const lint = (text: string, facts: HostFacts) => {
  const c = compileText(text);
  expect(c.diagnostics).toEqual([]);
  return lintRules(c.rules, facts).map((d) => ({ code: d.code, message: d.message, hint: d.hint, severity: d.severity }));
};

describe("unknown names", () => {
  it("an unknown domain is a warning with the closest known name", () => {
    const [d] = lint("forward tcp 2222 to devstak:22", { domains: ["devstack", "web"] });
    expect(d).toMatchObject({ code: "unknown-domain", severity: "warning", hint: 'did you mean "devstack"?' });
    expect(d?.message).toBe('no domain named "devstak" is defined on this host (the rule waits for it)');
  });
  it("with nothing close, it lists the known names", () => {
    expect(lint("forward tcp 2222 to zzzzzz:22", { domains: ["web", "db"] })[0]?.hint).toBe("known domains: db, web");
  });
  it("known domains, and unknown facts, warn about nothing", () => {
    expect(lint("forward tcp 2222 to web:22", { domains: ["web"] })).toEqual([]);
    expect(lint("forward tcp 2222 to nosuch:22", {})).toEqual([]);
  });
  it("networks: masquerade, accept endpoints and NAME@NETWORK", () => {
    const ds = lint("masquerade defualt\naccept isolatd to default\nforward tcp 1 to web@rout:1", { domains: ["web"], networks: ["default", "isolated", "route"] });
    expect(ds.map((d) => [d.code, d.hint])).toEqual([
      ["unknown-network", 'did you mean "route"?'],
      ["unknown-network", 'did you mean "default"?'],
      ["unknown-network", 'did you mean "isolated"?'],
    ]);
  });
});

describe("host addresses", () => {
  it("a host address this host does not have is a warning naming the ones it has", () => {
    const [d] = lint("forward tcp 192.0.2.1:80 to 192.168.122.10", { addresses: ["127.0.0.1", "10.0.0.5", "192.168.122.1", "::1"] });
    expect(d).toMatchObject({ code: "not-local-address", severity: "warning" });
    expect(d?.message).toBe("192.0.2.1 is not an address of this host (it has 10.0.0.5, 192.168.122.1): nothing reaches this forward until it is");
  });
  it("one of its addresses (IPv6 canonical) is fine", () => {
    expect(lint("forward tcp [2001:db8::1]:80 to [fd00::10]", { addresses: ["2001:db8::1"] })).toEqual([]);
  });
});

describe("forwards over listening services", () => {
  const sshd = { proto: "tcp", family: 4, address: "0.0.0.0", port: 22, process: "sshd[812]" } as const;
  const dns = { proto: "udp", family: 4, address: "192.168.122.1", port: 53 } as const;
  const local = { proto: "tcp", family: 4, address: "127.0.0.1", port: 8080 } as const;
  const v6any = { proto: "tcp", family: 6, address: "::", port: 443 } as const;
  const listeners = [sshd, dns, local, v6any];

  it("port 22 on any host address takes sshd's port", () => {
    const [d] = lint("forward tcp 22 to 192.168.122.10", { listeners });
    expect(d?.code).toBe("shadows-listener");
    expect(d?.message).toContain("tcp port 22 on any of the host's addresses, where a host service listens: tcp 0.0.0.0:22 (sshd[812])");
  });
  it("a range covering a port, and dnsmasq on the bridge address for udp 53", () => {
    expect(lint("forward tcp 20-30 to 192.168.122.10", { listeners })[0]?.code).toBe("shadows-listener");
    expect(lint("forward udp 53 to 192.168.122.10", { listeners })[0]?.message).toContain("udp 192.168.122.1:53");
  });
  it("a specific host address shadows only wildcard listeners and its own", () => {
    expect(lint("forward tcp 10.0.0.5:22 to 192.168.122.10", { listeners })[0]?.code).toBe("shadows-listener");
    expect(lint("forward udp 10.0.0.5:53 to 192.168.122.10", { listeners })).toEqual([]);
  });
  it("loopback-only services, other protocols and other ports are not affected", () => {
    expect(lint("forward tcp 8080 to 192.168.122.10", { listeners })).toEqual([]);
    expect(lint("forward udp 22 to 192.168.122.10", { listeners })).toEqual([]);
    expect(lint("forward tcp 2222 to 192.168.122.10:22", { listeners })).toEqual([]);
  });
  it("a socket on :: counts for IPv4 forwards too", () => {
    expect(lint("forward tcp 443 to 192.168.122.10", { listeners })[0]?.code).toBe("shadows-listener");
  });
});

describe("/proc/net parsing", () => {
  it("addresses in /proc's little-endian words", () => {
    expect(procAddress("0100007F")).toBe("127.0.0.1");
    expect(procAddress("017AA8C0")).toBe("192.168.122.1");
    expect(procAddress("00000000000000000000000000000000")).toBe("::");
    expect(procAddress("00000000000000000000000001000000")).toBe("::1");
    expect(procAddress("B80D0120000000000000000001000000")).toBe("2001:db8::1");
  });
  it("TCP LISTEN and bound unconnected UDP sockets only", () => {
    const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1235 1 0000000000000000 100 0 0 10 0`;
    expect(parseProcNet(tcp, "tcp", 4)).toEqual([{ proto: "tcp", family: 4, address: "0.0.0.0", port: 22, inode: "1234" }]);
    const udp = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 017AA8C0:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 0
  2: 0A00000A:D431 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 998 2 0000000000000000 0`;
    expect(parseProcNet(udp, "udp", 4)).toEqual([{ proto: "udp", family: 4, address: "192.168.122.1", port: 53, inode: "999" }]);
  });
});

describe("firewalld's StrictForwardPorts=yes (firewalld >= 2.3)", () => {
  it("warns on each forward, with the setting to change and the firewalld command that would own the port", () => {
    const [d] = lint("forward tcp 8080 to 192.168.122.5:80", { firewalldStrictForwardPorts: true });
    expect(d).toMatchObject({ code: "firewalld-strict-forward-ports", severity: "warning" });
    expect(d?.hint).toBe(
      "set StrictForwardPorts=no there and run: firewall-cmd --reload   (or let firewalld own this port too: firewall-cmd --permanent --zone=ZONE --add-forward-port=port=8080:proto=tcp:toport=80:toaddr=192.168.122.5)",
    );
    expect(lint("forward tcp 8080 to 192.168.122.5:80", { firewalldStrictForwardPorts: false })).toEqual([]);
  });
  it("a guest by name: the hint's address is its fixed address from rules.d's host statement", () => {
    const [d] = lint("host default 52:54:00:77:00:50 192.168.122.50 web\nforward tcp 8080 to web:80", { firewalldStrictForwardPorts: true });
    expect(d?.hint).toContain("--add-forward-port=port=8080:proto=tcp:toport=80:toaddr=192.168.122.50)");
    const [u] = lint("forward tcp 8080 to web:80", { firewalldStrictForwardPorts: true });
    expect(u?.hint).toContain("toaddr=<the guest's address>)");
  });
  it("reads the option from firewalld.conf: the last setting wins, absent means no, no file means unknown", () => {
    const dir = mkdtempSync(join(tmpdir(), "vh-fwd-"));
    const conf = join(dir, "firewalld.conf");
    expect(strictForwardPorts(conf)).toBeUndefined();
    writeFileSync(conf, "FirewallBackend=nftables\n");
    expect(strictForwardPorts(conf)).toBe(false);
    writeFileSync(conf, "# StrictForwardPorts=yes\nStrictForwardPorts=no\nStrictForwardPorts = yes\n");
    expect(strictForwardPorts(conf)).toBe(true);
  });
  it("says nothing of a forward whose every port firewalld forwards itself (the hint's second fix), for that protocol", () => {
    const owned = [{ proto: "tcp", first: 8080, last: 8080 }, { proto: "tcp", first: 9000, last: 9001 }];
    const facts = { firewalldStrictForwardPorts: true, firewalldForwardPorts: owned };
    expect(lint("forward tcp 8080 to 192.168.122.5:80", facts)).toEqual([]);
    expect(lint("forward tcp 9000-9001 to 192.168.122.5", facts)).toEqual([]);
    expect(lint("forward tcp 9000-9002 to 192.168.122.5", facts).map((d) => d.code)).toEqual(["firewalld-strict-forward-ports"]);
    expect(lint("forward udp 8080 to 192.168.122.5:80", facts).map((d) => d.code)).toEqual(["firewalld-strict-forward-ports"]);
  });
  it("reads firewalld's forward-ports from its permanent zone files", () => {
    const zones = join(mkdtempSync(join(tmpdir(), "vh-fwd-")), "zones");
    expect(firewalldForwardPorts(zones)).toBeUndefined();
    mkdirSync(zones);
    writeFileSync(join(zones, "public.xml"), `<?xml version="1.0" encoding="utf-8"?>
<zone><short>Public</short><service name="ssh"/>
  <forward-port port="8080" protocol="tcp" to-port="80" to-addr="192.168.122.50"/>
  <forward-port to-addr='192.168.122.6' protocol='udp' port='5000-5002'/>
</zone>`);
    writeFileSync(join(zones, "public.xml.old"), `<forward-port port="1" protocol="tcp"/>`);
    expect(firewalldForwardPorts(zones)).toEqual([{ proto: "tcp", first: 8080, last: 8080 }, { proto: "udp", first: 5000, last: 5002 }]);
  });
});
