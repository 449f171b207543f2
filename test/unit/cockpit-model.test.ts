// The Cockpit page's pure part (cockpit/src/model.ts): the statements it writes,
// the edits of its own file, and how it reads check's diagnostics of a staged copy.
import { describe, expect, it } from "vitest";
import {
  addLine, blocking, editLine, forwardLine, HEADER, hostLine, NEEDS_ADMIN, OWN_FILE, parseDoc, parseForward, parseHost, shq, unprivileged, unstage, type Status,
} from "../../cockpit/src/model.js";

describe("cockpit page model", () => {
  it("writes one statement per field set, and refuses a field that could smuggle another", () => {
    expect(forwardLine({ proto: "tcp", hostPort: "2022", guest: "web", guestPort: "22" })).toBe("forward tcp 2022 to web:22");
    expect(forwardLine({ proto: "udp", hostPort: "53", guest: "dns", guestPort: "53", hostAddr: "192.0.2.1" })).toBe("forward udp 192.0.2.1:53 to dns:53");
    expect(() => forwardLine({ proto: "tcp", hostPort: "1\nforward tcp 1 to x:1", guest: "web", guestPort: "22" })).toThrow(/one word/);
    expect(() => forwardLine({ proto: "tcp", hostPort: "22", guest: "web # x", guestPort: "22" })).toThrow(/guest/);
    expect(hostLine({ network: "default", mac: "52:54:00:aa:bb:cc", ip: "192.168.122.9", name: "" })).toBe("host default 52:54:00:aa:bb:cc 192.168.122.9");
  });

  it("round-trips what it writes (for Edit)", () => {
    const f = { proto: "tcp", hostPort: "8000-8010", guest: "web", guestPort: "8000-8010" };
    expect(parseForward(forwardLine(f))).toEqual(f);
    expect(parseForward("forward tcp 22 to 192.168.122.5:22 from 10.0.0.0/8")).toBeNull();
    expect(parseHost("host default 52:54:00:aa:bb:cc 192.168.122.9 web")).toEqual({ network: "default", mac: "52:54:00:aa:bb:cc", ip: "192.168.122.9", name: "web" });
  });

  it("adds to a new file under its header, edits and removes a line only if it still holds the statement shown", () => {
    const one = addLine(null, "forward tcp 1 to a:1");
    expect(one).toBe(`${HEADER}forward tcp 1 to a:1\n`);
    const two = addLine(one, "forward tcp 2 to b:2");
    expect(editLine(two, 4, "forward tcp 2 to b:2", "forward tcp 3 to b:2")).toBe(`${HEADER}forward tcp 1 to a:1\nforward tcp 3 to b:2\n`);
    expect(editLine(two, 3, "forward tcp 1 to a:1", null)).toBe(`${HEADER}forward tcp 2 to b:2\n`);
    expect(() => editLine(two, 3, "forward tcp 9 to z:9", null)).toThrow(/changed since/);
    expect(addLine("x", "y")).toBe("x\ny\n");
  });

  it("maps a staged copy's diagnostics to the real file; blocks on errors and on anything about its own file", () => {
    const d = { severity: "warning" as const, code: "unknown-domain", message: "m", hint: null, file: "/tmp/virt-hooks-cockpit.ab/60-cockpit.rules", line: 5, column: 1 };
    const u = unstage(d, "/tmp/virt-hooks-cockpit.ab");
    expect(u.file).toBe(OWN_FILE);
    expect(blocking([u])).toHaveLength(1);
    expect(blocking([{ ...u, file: "/etc/libvirt/hooks/rules.d/10-x.rules" }])).toHaveLength(0);
    expect(blocking([{ ...u, severity: "error", file: null }])).toHaveLength(1);
  });

  it("reads only the version 1 contract", () => {
    expect(parseDoc('{"version":1,"command":"status"}', "status")).toMatchObject({ version: 1 });
    expect(() => parseDoc('{"version":2}', "status")).toThrow(/version 2/);
    expect(() => parseDoc("oops", "status")).toThrow(/no JSON/);
    expect(shq("a b")).toBe("'a b'");
  });

  it("without administrative access claims nothing status could not see: every state unknown, no counters, drift, watcher or backend", () => {
    const rule = { origin: "50-web.rules:1", file: "/etc/libvirt/hooks/rules.d/50-web.rules", line: 1, kind: "forward", text: "forward tcp 2022 to web:22", state: "waiting", detail: 'domain "web" is not running', targets: ["192.168.122.9:22"], domain: "web", mac: null, network: "default", lease: null, counters: { connections: 3, packets: 9, bytes: 900 } };
    const host = { origin: "50-web.rules:2", file: "/etc/libvirt/hooks/rules.d/50-web.rules", line: 2, kind: "host", text: "host default 52:54:00:aa:bb:cc 192.168.122.9 web", state: "live", detail: "", network: "default", mac: "52:54:00:aa:bb:cc", ip: "192.168.122.9", name: "web" };
    const st = { version: 1, command: "status", backend: "iptables", summary: { live: 0, drifted: 0, waiting: 1, failed: 0 }, rules: [rule], hosts: [host], drift: [{ family: 4, backend: "iptables", kind: "rule-missing", where: "nat", detail: "x", origin: null }], errors: ["ipv4: iptables-save failed"], watcher: { running: false, pid: null, sources: null, lastRepair: null } } as unknown as Status;
    const u = unprivileged(st);
    expect(u.rules.map((r) => [r.origin, r.text, r.state, r.detail, r.counters])).toEqual([["50-web.rules:1", "forward tcp 2022 to web:22", "unknown", NEEDS_ADMIN, null]]);
    expect(u.hosts.map((h) => [h.text, h.state])).toEqual([["host default 52:54:00:aa:bb:cc 192.168.122.9 web", "unknown"]]);
    expect({ drift: u.drift, errors: u.errors, backend: u.backend, summary: u.summary }).toEqual({ drift: [], errors: [], backend: null, summary: { live: 0, drifted: 0, waiting: 0, failed: 0 } });
  });
});
