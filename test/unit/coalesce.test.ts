// The inputs check that lets a queued hook skip reading the host (src/hook/coalesce.ts).
import { describe, expect, it } from "vitest";
import { correctionsRedundant, coveredBefore, inputsKey } from "../../src/hook/coalesce.js";
import { domainElement } from "../../src/libvirt/domain-text.js";
import type { DomainInfo } from "../../src/libvirt/domain.js";

const web: DomainInfo = { name: "web", interfaces: [{ mac: "52:54:00:00:00:01", type: "network", network: "default", bridge: "virbr0", tap: "vnet0" }] };
const base = { rules: [{ path: "/etc/libvirt/hooks/rules.d/50.rules", text: "forward tcp 8080 to web:80\n" }], statusIdentity: "qemu/web.xml 12 3000 1700000000000000000", networkConf: undefined };

describe("coalescing before the host is read", () => {
  it("the key changes with every input: rules text, file names, status file versions, network.conf", () => {
    const k = inputsKey(base);
    expect(inputsKey({ ...base })).toBe(k);
    expect(inputsKey({ ...base, rules: [{ ...base.rules[0]!, text: "forward tcp 8081 to web:80\n" }] })).not.toBe(k);
    expect(inputsKey({ ...base, rules: [{ ...base.rules[0]!, path: "/etc/libvirt/hooks/rules.d/60.rules" }] })).not.toBe(k);
    expect(inputsKey({ ...base, rules: [] })).not.toBe(k);
    expect(inputsKey({ ...base, statusIdentity: "qemu/web.xml 13 3000 1700000000000000000" })).not.toBe(k);
    expect(inputsKey({ ...base, networkConf: 'firewall_backend = "nftables"\n' })).not.toBe(k);
    // Boundaries between files are part of the key.
    const split = { ...base, rules: [{ path: "a", text: "bc" }] };
    expect(inputsKey(split)).not.toBe(inputsKey({ ...base, rules: [{ path: "ab", text: "c" }] }));
  });

  it("only 'domain X is up' with exactly what X's status file holds adds nothing", () => {
    const status = (name: string) => (name === "web" ? web : undefined);
    expect(correctionsRedundant([{ kind: "domain-up", domain: web }], status)).toBe(true);
    expect(correctionsRedundant([], status)).toBe(true);
    const otherTap = { ...web, interfaces: [{ ...web.interfaces[0]!, tap: "vnet7" }] };
    expect(correctionsRedundant([{ kind: "domain-up", domain: otherTap }], status)).toBe(false);
    expect(correctionsRedundant([{ kind: "domain-up", domain: { ...web, name: "db" } }], status)).toBe(false);
    expect(correctionsRedundant([{ kind: "domain-down", name: "web" }], status)).toBe(false);
  });

  it("covered only by a clean record that started looking after this hook, for the same inputs", () => {
    const counts = { live: 1, waiting: 0, failed: 0 };
    expect(coveredBefore({ at: 20n, key: "d", inputs: "i", counts }, 10n, "i")).toBe(true);
    expect(coveredBefore({ at: 10n, key: "d", inputs: "i", counts }, 10n, "i")).toBe(false);
    expect(coveredBefore({ at: 5n, key: "d", inputs: "i", counts }, 10n, "i")).toBe(false);
    expect(coveredBefore({ at: 20n, key: "d", inputs: "other", counts }, 10n, "i")).toBe(false);
    expect(coveredBefore({ at: 20n, key: "d" }, 10n, "i")).toBe(false);
    expect(coveredBefore(undefined, 10n, "i")).toBe(false);
  });

  it("cuts a status file's <domain> element exactly as libvirt hands it to a reconnect hook", () => {
    const domain = "<domain type='kvm' id='3'>\n  <name>web</name>\n  <devices><domainsnapshot/></devices>\n</domain>";
    const status = `<!--\nWARNING\n-->\n<domstatus state='running' pid='42'>\n  <taint flag='high-privileges'/>\n  <domainhost/>\n  ${domain}\n</domstatus>\n`;
    // <domainhost> is not <domain>: the match needs a space or '>' after the name.
    expect(domainElement(status)).toBe(domain);
    expect(domainElement(domain)).toBeUndefined(); // no <domstatus>: not a status file
    expect(domainElement("<domstatus state='running'></domstatus>")).toBeUndefined();
    expect(domainElement(status.replace("</domain>", ""))).toBeUndefined();
  });
});
