import { describe, expect, it } from "vitest";
import { compileText, diagnosticsOf } from "../helpers/rules.js";
import { formatDiagnostic } from "../../src/rules/diagnostic.js";

// One line in, one compact description out: the language's accepted forms.
const accepted: [string, string][] = [
  ["forward tcp 192.168.1.100:1122 to devstack:22", "tcp 192.168.1.100:1122-1122 -> domain devstack:22"],
  ["forward tcp 1180 to devstack:80", "tcp *:1180-1180 -> domain devstack:80"],
  ["forward tcp,udp 5000-5010 to 192.168.122.50", "tcp,udp *:5000-5010 -> 192.168.122.50:same"],
  ["forward udp 5000-5010 to 192.168.122.50:6000-6010", "udp *:5000-5010 -> 192.168.122.50:6000-6010"],
  ["forward tcp 8000-8010 to web:80", "tcp *:8000-8010 -> domain web:80"],
  ["forward tcp [2001:db8::1]:8080 to [fd00::10]:80", "tcp 2001:db8::1:8080-8080 -> fd00::10:80"],
  ["forward tcp 8080 to [FD00:0::10]", "tcp *:8080-8080 -> fd00::10:same"],
  ['forward tcp 2222 to "my vm":22', "tcp *:2222-2222 -> domain my vm:22"],
  ['forward tcp 2222 to "my:vm"@"net 1":22', "tcp *:2222-2222 -> domain my:vm@net 1:22"],
  ["forward tcp 2222 to devstack@default:22", "tcp *:2222-2222 -> domain devstack@default:22"],
  ['forward tcp 2222 to "10.0.0.1":22', "tcp *:2222-2222 -> domain 10.0.0.1:22"],
  ["forward tcp 22 to vm1 from 10.0.0.0/8,192.0.2.7 in eth0", "tcp *:22-22 -> domain vm1:same from 10.0.0.0/8,192.0.2.7/32 in eth0"],
  ["forward tcp 22 to vm1 in eth0 from 10.0.0.0/8   # comment", "tcp *:22-22 -> domain vm1:same from 10.0.0.0/8 in eth0"],
  ["masquerade route", "masquerade route"],
  ["accept route to default", "accept route -> default"],
  ["accept route to default tcp 22", "accept route -> default tcp 22-22"],
  ["accept 10.0.0.0/24 to default tcp,udp 1000-2000", "accept 10.0.0.0/24 -> default tcp,udp 1000-2000"],
  ["uplink route eth0", "uplink route eth0"],
  ['uplink "my net" enp3s0.100', "uplink my net enp3s0.100"],
  ["route route default via 192.168.1.1", "route route 0.0.0.0/0 (default) via 192.168.1.1 ipv4"],
  ["route route default via fe80::1", "route route ::/0 (default) via fe80::1 ipv6"],
  ["route route default via [2001:DB8::1]", "route route ::/0 (default) via 2001:db8::1 ipv6"],
  ["route route 10.1.2.0/24 via 192.168.100.254", "route route 10.1.2.0/24 via 192.168.100.254 ipv4"],
  ["route route 10.1.2.3/16 via 192.168.100.254", "route route 10.1.0.0/16 via 192.168.100.254 ipv4"],
  ["route route 203.0.113.9 via 192.168.100.254", "route route 203.0.113.9/32 via 192.168.100.254 ipv4"],
  ["route route 0.0.0.0/0 via 192.168.1.1", "route route 0.0.0.0/0 (default) via 192.168.1.1 ipv4"],
  ["route v6 2001:db8:5::/48 via 2001:db8::2", "route v6 2001:db8:5::/48 via 2001:db8::2 ipv6"],
];

function describeRule(text: string): string {
  const { rules, diagnostics } = compileText(text);
  if (diagnostics.length) return diagnostics.map(formatDiagnostic).join("\n");
  const f = rules.forwards[0];
  if (f) {
    const target = f.target.kind === "domain" ? `domain ${f.target.name}${f.target.network ? `@${f.target.network}` : ""}` : f.target.address;
    const tp = f.targetPorts ? (f.targetPorts.first === f.targetPorts.last ? `${f.targetPorts.first}` : `${f.targetPorts.first}-${f.targetPorts.last}`) : "same";
    const from = f.from.length ? ` from ${f.from.map((c) => `${c.address}/${c.prefix}`).join(",")}` : "";
    return `${f.protos.join(",")} ${f.hostAddress?.address ?? "*"}:${f.hostPorts.first}-${f.hostPorts.last} -> ${target}:${tp}${from}${f.inInterface ? ` in ${f.inInterface}` : ""}`;
  }
  const m = rules.masquerades[0];
  if (m) return `masquerade ${m.network}`;
  const a = rules.accepts[0];
  if (a) {
    const ep = (e: typeof a.from) => (e.kind === "network" ? e.name : `${e.cidr.address}/${e.cidr.prefix}`);
    return `accept ${ep(a.from)} -> ${ep(a.to)}${a.protos.length ? ` ${a.protos.join(",")}` : ""}${a.ports ? ` ${a.ports.first}-${a.ports.last}` : ""}`;
  }
  const u = rules.uplinks[0];
  if (u) return `uplink ${u.network} ${u.iface}`;
  const r = rules.routes[0];
  if (r) return `route ${r.network} ${r.dest.address}/${r.dest.prefix}${r.isDefault ? " (default)" : ""} via ${r.gateway} ipv${r.family}`;
  return "(nothing)";
}

describe("rule language: accepted statements", () => {
  it.each(accepted)("%s", (line, expected) => {
    expect(describeRule(line)).toBe(expected);
  });
});

// Every error names file:line:col and a stable code.
const rejected: [string, string][] = [
  ["forward tpc 80 to vm1:80", "10-test.rules:1:9 unknown-protocol"],
  ["forward tcp 0 to vm1", "10-test.rules:1:13 bad-port"],
  ["forward tcp 65536 to vm1", "10-test.rules:1:13 bad-port"],
  ["forward tcp 90-80 to vm1", "10-test.rules:1:13 bad-port"],
  ["forward tcp 80-90 to vm1:1-5", "10-test.rules:1:22 port-count"],
  ["forward tcp 80 vm1:80", "10-test.rules:1:16 syntax"],
  ["forward tcp 80 to", "10-test.rules:1:18 syntax"],
  ["forward tcp 300.1.1.1:80 to vm1", "10-test.rules:1:13 bad-address"],
  ["forward tcp 2001:db8::1:80 to vm1", "10-test.rules:1:13 bad-address"],
  ["forward tcp 80 to fd00::1", "10-test.rules:1:19 bad-address"],
  ["forward tcp 80 to 10.0.0.300", "10-test.rules:1:19 bad-address"],
  ["forward tcp 192.0.2.1:80 to [fd00::1]:80", "10-test.rules:1:29 family-mismatch"],
  ["forward tcp 80 to vm1 from 10.0.0.0/33", "10-test.rules:1:28 bad-address"],
  ["forward tcp 80 to vm1 in this-name-is-too-long0", "10-test.rules:1:26 bad-interface"],
  ["forward tcp 80 to vm1 sideways", "10-test.rules:1:23 syntax"],
  ['forward tcp 80 to "vm1', "10-test.rules:1:19 syntax"],
  ["forward tcp 80 to a/b", "10-test.rules:1:19 bad-name"],
  ["froward tcp 80 to vm1", "10-test.rules:1:1 unknown-statement"],
  ["masquerade", "10-test.rules:1:11 syntax"],
  ["masquerade a b", "10-test.rules:1:14 syntax"],
  ["accept a b", "10-test.rules:1:10 syntax"],
  ["accept 10.0.0.0/8 to fd00::/8", "10-test.rules:1:1 family-mismatch"],
  ["set on-error maybe", "10-test.rules:1:14 bad-setting"],
  ["set colour blue", "10-test.rules:1:5 unknown-setting"],
  ["uplink", "10-test.rules:1:7 syntax"],
  ["uplink route", "10-test.rules:1:13 syntax"],
  ["uplink route eth0 eth1", "10-test.rules:1:19 syntax"],
  ["uplink route eth+", "10-test.rules:1:14 bad-interface"],
  ["uplink route lo", "10-test.rules:1:14 bad-interface"],
  ["uplink route this-name-is-too-long0", "10-test.rules:1:14 bad-interface"],
  ["uplink a/b eth0", "10-test.rules:1:8 bad-name"],
  ["route route default 192.168.1.1", "10-test.rules:1:21 syntax"],
  ["route route default via", "10-test.rules:1:24 syntax"],
  ["route route defualt via 192.168.1.1", "10-test.rules:1:13 bad-address"],
  ["route route 10.0.0.0/33 via 192.168.1.1", "10-test.rules:1:13 bad-address"],
  ["route route default via 192.168.1.0/24", "10-test.rules:1:25 bad-address"],
  ["route route default via gw.example", "10-test.rules:1:25 bad-address"],
  ["route route 10.0.0.0/8 via fe80::1", "10-test.rules:1:28 family-mismatch"],
  ["route route default via 192.168.1.1 dev eth0", "10-test.rules:1:37 syntax"],
  ["rout route default via 192.168.1.1", "10-test.rules:1:1 unknown-statement"],
];

describe("rule language: errors", () => {
  it.each(rejected)("%s", (line, expected) => {
    expect(diagnosticsOf(line)).toEqual([expected]);
  });

  it("gives a fix with every error", () => {
    for (const [line] of rejected) {
      for (const d of compileText(line).diagnostics) expect(d.hint, line).toBeTruthy();
    }
  });

  it("suggests the closest keyword", () => {
    const [d] = compileText("froward tcp 80 to vm1").diagnostics;
    expect(d?.hint).toContain('did you mean "forward"');
  });
});

describe("rule language: whole files", () => {
  it("ignores comments and blank lines and keeps going after a bad line", () => {
    const { rules, diagnostics } = compileText("# header\n\nforward tcp 1 to a\nforward tcq 2 to b\n  forward tcp 3 to c # trailing\n");
    expect(rules.forwards.map((f) => f.hostPorts.first)).toEqual([1, 3]);
    expect(diagnosticsOf("# header\n\nforward tcp 1 to a\nforward tcq 2 to b\n")).toEqual(["10-test.rules:4:9 unknown-protocol"]);
    expect(diagnostics).toHaveLength(1);
  });

  it("reports two rules claiming the same address, port and protocol, naming both places", () => {
    const text = "forward tcp 192.168.1.100:1122 to devstack:22\nforward tcp 192.168.1.100:1122 to other:22\n";
    const { rules, diagnostics } = compileText(text);
    expect(diagnostics).toHaveLength(1);
    const printed = formatDiagnostic(diagnostics[0]!);
    expect(printed).toContain("10-test.rules:2:1: error:");
    expect(printed).toContain("10-test.rules:1:1: the other rule is here");
    expect(rules.forwards).toHaveLength(1);
  });

  it.each([
    ["forward tcp 80 to a\nforward tcp 80 to b", 1],
    ["forward tcp 80 to a\nforward tcp 192.0.2.1:80 to b", 1],
    ["forward tcp 70-90 to a\nforward tcp 80 to b", 1],
    ["forward tcp 80 to a\nforward udp 80 to b", 0],
    ["forward tcp 192.0.2.1:80 to a\nforward tcp 192.0.2.2:80 to b", 0],
    ["forward tcp 80 to a from 10.0.0.0/8\nforward tcp 80 to b from 192.168.0.0/16", 0],
    ["forward tcp 80 to 10.0.0.1\nforward tcp 80 to [fd00::1]", 0],
  ])("conflict detection: %j -> %i", (text, n) => {
    expect(compileText(text).diagnostics.filter((d) => d.code === "conflict")).toHaveLength(n);
  });

  it.each([
    ["uplink a eth0\nuplink b eth0", ["10-test.rules:2:10 conflict"]],
    ["uplink a eth0\nuplink a eth0", ["10-test.rules:2:1 duplicate"]],
    ["uplink a eth0\nuplink a eth1", []],
    ["route a default via 192.0.2.1\nroute b default via 192.0.2.1", ["10-test.rules:2:1 conflict"]],
    ["route a default via 192.0.2.1\nroute a 0.0.0.0/0 via 192.0.2.1", ["10-test.rules:2:1 duplicate"]],
    ["route a default via 192.0.2.1\nroute a default via fe80::1", []],
    ["route a 10.0.0.0/8 via 192.0.2.1\nroute a 10.0.0.0/16 via 192.0.2.1", []],
  ])("uplink and route clashes: %j", (text, expected) => {
    expect(diagnosticsOf(text)).toEqual(expected);
    const { rules } = compileText(text);
    expect(rules.uplinks.length + rules.routes.length).toBe(expected.length ? 1 : 2);
  });

  it("names the earlier uplink of a conflict and suggests the closest keyword", () => {
    const [d] = compileText("uplink a eth0\nuplink b eth0").diagnostics;
    expect(formatDiagnostic(d!)).toContain("10-test.rules:1:1: the other rule is here");
    expect(compileText("uplnk a eth0").diagnostics[0]?.hint).toContain('did you mean "uplink"');
  });

  it("reads on-error, defaulting to warn, and rejects contradictions", () => {
    expect(compileText("").rules.settings.onError).toBe("warn");
    expect(compileText("set on-error block").rules.settings.onError).toBe("block");
    expect(diagnosticsOf("set on-error block\nset on-error warn")).toEqual(["10-test.rules:2:1 conflicting-setting"]);
  });

  it("counts columns in the file, not the word", () => {
    expect(diagnosticsOf("\n\n   forward   tcp  70000 to a")).toEqual(["10-test.rules:3:19 bad-port"]);
  });
});

describe("the shipped example files", () => {
  it("parse without a single diagnostic", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const dir = join(import.meta.dirname, "..", "..", "rules.d");
    const names = readdirSync(dir).filter((n) => n.endsWith(".rules"));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) {
      const text = readFileSync(join(dir, name), "utf8");
      // Uncomment the commented-out statements too: they must be valid as shown.
      const uncommented = text.replace(/^# ((forward|masquerade|accept|set) .*)$/gm, "$1");
      expect(compileText(uncommented, join(dir, name)).diagnostics.map((d) => d.message), name).toEqual([]);
    }
  });
});
