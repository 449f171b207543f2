import { describe, expect, it } from "vitest";
import { resolvePlan } from "../../src/plan/resolve.js";
import { renderIptables } from "../../src/render/iptables.js";
import { inSync, renderRemoval, renderRestore } from "../../src/render/iptables-restore.js";
import { parseIptablesSave } from "../../src/render/observed.js";
import { compileText } from "../helpers/rules.js";
import { defaultNet, domain, routeNet, view } from "../helpers/host.js";

const host = view(
  [domain("devstack", [["52:54:00:6c:3c:11", "default"]]), domain("vm2", [["52:54:00:6c:3c:12", "default"]])],
  [defaultNet, routeNet],
);

function render(rules: string, family: 4 | 6 = 4) {
  const c = compileText(rules, "/etc/libvirt/hooks/rules.d/50-golden.rules");
  expect(c.diagnostics).toEqual([]);
  return renderIptables(resolvePlan(c.rules, host), family);
}

// What libvirt itself leaves in iptables-save for the default network (shape
// taken from a real libvirtd 11.3 run), with our jumps absent.
const LIBVIRT_ONLY = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:LIBVIRT_PRT - [0:0]
-A POSTROUTING -j LIBVIRT_PRT
-A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:LIBVIRT_FWI - [0:0]
:LIBVIRT_FWO - [0:0]
:LIBVIRT_FWX - [0:0]
-A FORWARD -j LIBVIRT_FWX
-A FORWARD -j LIBVIRT_FWI
-A FORWARD -j LIBVIRT_FWO
-A LIBVIRT_FWI -d 192.168.122.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp-port-unreachable
COMMIT
`;

describe("iptables rendering (golden)", () => {
  it("renders the second article's forwards", async () => {
    const rules = render("forward tcp 192.168.1.100:1122 to devstack:22\nforward tcp 192.168.1.100:1180 to devstack:80\n");
    const text = renderRestore(rules, parseIptablesSave(LIBVIRT_ONLY));
    await expect(text).toMatchFileSnapshot("golden/article2-forwards.restore");
  });

  it("renders every statement kind", async () => {
    const rules = render(
      [
        "forward tcp,udp 5000-5010 to 192.168.122.50:6000-6010 from 10.0.0.0/8,192.0.2.7 in eth0",
        "forward tcp 8080 to vm2:80",
        "forward udp 53 to devstack",
        "masquerade route",
        "accept route to default tcp 22",
        "accept default to route",
      ].join("\n"),
    );
    await expect(renderRestore(rules, parseIptablesSave(""))).toMatchFileSnapshot("golden/every-statement.restore");
  });

  it("renders IPv6 forwards with bracketed DNAT targets", async () => {
    const rules = render("forward tcp [2001:db8::1]:8080 to [fd00::10]:80\nforward tcp 2222 to [fd00::10]:22", 6);
    await expect(renderRestore(rules, parseIptablesSave(""))).toMatchFileSnapshot("golden/ipv6.restore");
  });
});

describe("jump placement and idempotence", () => {
  const desired = () => render("forward tcp 1122 to devstack:22");

  it("inserts each jump first when absent", () => {
    const text = renderRestore(desired(), parseIptablesSave(LIBVIRT_ONLY));
    for (const line of ["-I PREROUTING 1 -j VIRT_HOOKS_PRE", "-I OUTPUT 1 -j VIRT_HOOKS_OUT", "-I POSTROUTING 1 -j VIRT_HOOKS_POST", "-I FORWARD 1 -j VIRT_HOOKS_FWD"]) {
      expect(text).toContain(line);
    }
    expect(text).not.toContain("-D ");
  });

  it("moves a jump that libvirt buried (its jumps re-added above ours) and removes duplicates", () => {
    const buried = LIBVIRT_ONLY.replace("-A FORWARD -j LIBVIRT_FWO\n", "-A FORWARD -j LIBVIRT_FWO\n-A FORWARD -j VIRT_HOOKS_FWD\n-A FORWARD -j VIRT_HOOKS_FWD\n").replace(":LIBVIRT_FWX - [0:0]\n", ":LIBVIRT_FWX - [0:0]\n:VIRT_HOOKS_FWD - [0:0]\n");
    const text = renderRestore(desired(), parseIptablesSave(buried));
    const fwd = text.split("\n").filter((l) => / FORWARD /.test(l));
    expect(fwd).toEqual(["-D FORWARD -j VIRT_HOOKS_FWD", "-D FORWARD -j VIRT_HOOKS_FWD", "-I FORWARD 1 -j VIRT_HOOKS_FWD"]);
  });

  it("is in sync once the kernel holds exactly the rendered rules with jumps first", () => {
    const d = desired();
    const applied = [
      "*nat",
      ":VIRT_HOOKS_PRE - [0:0]",
      ":VIRT_HOOKS_OUT - [0:0]",
      ":VIRT_HOOKS_POST - [0:0]",
      "-A PREROUTING -j VIRT_HOOKS_PRE",
      "-A OUTPUT -j VIRT_HOOKS_OUT",
      "-A POSTROUTING -j VIRT_HOOKS_POST",
      "-A POSTROUTING -j LIBVIRT_PRT",
      ...d.rules.filter((r) => r.table === "nat").map((r) => `-A ${r.chain} ${r.spec}`),
      "COMMIT",
      "*filter",
      ":VIRT_HOOKS_FWD - [0:0]",
      "-A FORWARD -j VIRT_HOOKS_FWD",
      "-A FORWARD -j LIBVIRT_FWX",
      ...d.rules.filter((r) => r.table === "filter").map((r) => `-A ${r.chain} ${r.spec}`),
      "COMMIT",
    ].join("\n");
    expect(inSync(d, parseIptablesSave(applied))).toBe(true);
    expect(inSync(d, parseIptablesSave(applied.replace("-A FORWARD -j VIRT_HOOKS_FWD\n-A FORWARD -j LIBVIRT_FWX", "-A FORWARD -j LIBVIRT_FWX\n-A FORWARD -j VIRT_HOOKS_FWD")))).toBe(false);
  });

  it("leaves a family alone when nothing is wanted and nothing of ours is there", () => {
    expect(inSync(render(""), parseIptablesSave(LIBVIRT_ONLY))).toBe(true);
  });

  it("removal deletes only our jumps and chains", () => {
    const ours = LIBVIRT_ONLY.replace("-A FORWARD -j LIBVIRT_FWX\n", "-A FORWARD -j VIRT_HOOKS_FWD\n-A FORWARD -j LIBVIRT_FWX\n").replace(":LIBVIRT_FWX - [0:0]\n", ":LIBVIRT_FWX - [0:0]\n:VIRT_HOOKS_FWD - [0:0]\n");
    expect(renderRemoval(parseIptablesSave(ours))).toBe("*filter\n-D FORWARD -j VIRT_HOOKS_FWD\n-F VIRT_HOOKS_FWD\n-X VIRT_HOOKS_FWD\nCOMMIT\n");
    expect(renderRemoval(parseIptablesSave(LIBVIRT_ONLY))).toBeUndefined();
  });
});
