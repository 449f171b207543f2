import { describe, expect, it } from "vitest";
import { resolvePlan } from "../../src/plan/resolve.js";
import { renderNft } from "../../src/render/nftables.js";
import { libvirtRuleInPlace, renderNftRemoval, renderNftTransaction } from "../../src/render/nft-transaction.js";
import { chooseBackend, parseNetworkConf } from "../../src/host/backend.js";
import { compileText } from "../helpers/rules.js";
import { defaultNet, domain, routeNet, view } from "../helpers/host.js";

const host = view(
  [domain("devstack", [["52:54:00:6c:3c:11", "default"]]), domain("vm2", [["52:54:00:6c:3c:12", "default"]])],
  [defaultNet, routeNet],
);

function table(rules: string, family: 4 | 6 = 4) {
  const c = compileText(rules, "/etc/libvirt/hooks/rules.d/50-golden.rules");
  expect(c.diagnostics).toEqual([]);
  return renderNft(resolvePlan(c.rules, host), family);
}

const noLibvirt = { ourTable: false, libvirtTable: false, libvirtForward: [] };
const libvirtOnly = { ourTable: false, libvirtTable: true, libvirtForward: [{ handle: 3, ours: false }, { handle: 4, ours: false }] };

describe("nftables rendering (golden)", () => {
  it("puts unrestricted forwards in maps and sets: the packet path does not grow with their number", async () => {
    const t = table("forward tcp 192.168.1.100:1122 to devstack:22\nforward tcp 192.168.1.100:1180 to devstack:80\nforward tcp,udp 8000-8002 to vm2:9000-9002");
    await expect(renderNftTransaction(t, libvirtOnly)).toMatchFileSnapshot("golden/article2-forwards.nft");
  });

  it("renders every statement kind", async () => {
    const t = table(
      [
        "forward tcp,udp 5000-5002 to 192.168.122.50:6000-6002 from 10.0.0.0/8,192.0.2.7 in eth0",
        "forward tcp 8080 to vm2:80",
        "masquerade route",
        "accept route to default tcp 22",
        "accept default to route",
      ].join("\n"),
    );
    await expect(t.body).toMatchFileSnapshot("golden/every-statement.nft");
  });

  it("renders IPv6 into an ip6 table", async () => {
    await expect(table("forward tcp [2001:db8::1]:8080 to [fd00::10]:80", 6).body).toMatchFileSnapshot("golden/ipv6.nft");
  });

  it("keeps the per-packet rule count constant from 1 to 1,000 forwards", () => {
    const rulesFor = (n: number) => {
      const lines = Array.from({ length: n }, (_, i) => `forward tcp ${10000 + i} to 192.168.122.${(i % 200) + 2}:22`).join("\n");
      return table(lines).body.split("\n").filter((l) => /^\t\t(?!type|flags|elements|\t)/.test(l)).length;
    };
    expect(rulesFor(1000)).toBe(rulesFor(1));
  });
});

describe("the nftables transaction", () => {
  it("replaces our table whole and puts one accept first in libvirt's forward chain", () => {
    const tx = renderNftTransaction(table("forward tcp 1122 to devstack:22"), libvirtOnly).split("\n");
    expect(tx.slice(0, 2)).toEqual(["table ip virt_hooks {}", "delete table ip virt_hooks"]);
    expect(tx.filter((l) => l.startsWith("insert rule"))).toEqual([
      'insert rule ip libvirt_network forward meta mark & 0x10000000 == 0x10000000 counter accept comment "virt-hooks"',
    ]);
  });

  it("leaves libvirt's chain alone when our accept is already first and single", () => {
    const inPlace = { ourTable: true, libvirtTable: true, libvirtForward: [{ handle: 9, ours: true }, { handle: 3, ours: false }] };
    expect(libvirtRuleInPlace(inPlace)).toBe(true);
    expect(renderNftTransaction(table("forward tcp 1122 to devstack:22"), inPlace)).not.toContain("libvirt_network");
  });

  it("moves a buried accept (by handle) and drops duplicates", () => {
    const buried = { ourTable: true, libvirtTable: true, libvirtForward: [{ handle: 3, ours: false }, { handle: 9, ours: true }, { handle: 12, ours: true }] };
    const tx = renderNftTransaction(table("forward tcp 1122 to devstack:22"), buried);
    expect(tx).toContain("delete rule ip libvirt_network forward handle 9\ndelete rule ip libvirt_network forward handle 12\ninsert rule ip libvirt_network forward");
  });

  it("with nothing wanted, removes our table and our accept", () => {
    const there = { ourTable: true, libvirtTable: true, libvirtForward: [{ handle: 9, ours: true }] };
    expect(renderNftTransaction(table(""), there)).toBe("table ip virt_hooks {}\ndelete table ip virt_hooks\ndelete rule ip libvirt_network forward handle 9\n");
    expect(renderNftTransaction(table(""), noLibvirt)).toBe("");
    expect(renderNftRemoval("ip", there)).toBe("delete table ip virt_hooks\ndelete rule ip libvirt_network forward handle 9\n");
  });
});

describe("choosing the backend", () => {
  const nftNet = { ...defaultNet, firewallBackend: "nftables" };
  const iptNet = { ...routeNet, firewallBackend: "iptables" };
  it.each([
    ["auto", [nftNet], undefined, "nftables"],
    ["auto", [iptNet], 'firewall_backend = "nftables"', "iptables"],
    ["auto", [], 'firewall_backend = "nftables"', "nftables"],
    ["auto", [], '#firewall_backend = "nftables"', "iptables"],
    ["auto", [nftNet, iptNet], 'firewall_backend = "iptables"', "iptables"],
    ["auto", [nftNet, iptNet], undefined, "nftables"],
    ["iptables", [nftNet], undefined, "iptables"],
  ] as const)("%s with %j and %j -> %s", (setting, nets, conf, expected) => {
    expect(chooseBackend(setting, view([], [...nets]), conf).backend).toBe(expected);
  });

  it("parses network.conf", () => {
    expect(parseNetworkConf('# comment\nfirewall_backend = "nftables"\n')).toBe("nftables");
    expect(parseNetworkConf("")).toBeUndefined();
  });
});
