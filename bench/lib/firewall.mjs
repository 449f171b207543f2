// The firewall the hook meets, inside the bench's private namespace: libvirt
// 11.3's real iptables state (test/kernel/libvirt-default.v*.save), or for the
// nftables backend a `libvirt_network` table shaped like libvirt's own (base
// chain `forward` jumping to guest_* chains that REJECT new inbound flows).
// Every function here re-checks the namespace first.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { must } from "./measure.mjs";
import { assertPrivate } from "./netns.mjs";

const KERNEL = resolve(import.meta.dirname, "..", "..", "test", "kernel");

const LIBVIRT_NFT = `table ip libvirt_network {
	chain forward {
		type filter hook forward priority filter; policy accept;
		counter jump guest_cross
		counter jump guest_input
		counter jump guest_output
	}
	chain guest_output {
		ip saddr 192.168.122.0/24 iifname "virbr0" counter accept
		iifname "virbr0" counter reject
	}
	chain guest_input {
		oifname "virbr0" ip daddr 192.168.122.0/24 ct state established,related counter accept
		oifname "virbr0" counter reject
	}
	chain guest_cross {
		iifname "virbr0" oifname "virbr0" counter accept
	}
	chain guest_nat {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.168.122.0/24 ip daddr 224.0.0.0/24 counter return
		ip saddr 192.168.122.0/24 ip daddr 255.255.255.255 counter return
		meta l4proto tcp ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade to :1024-65535
		meta l4proto udp ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade to :1024-65535
		ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade
	}
}
`;

/** Empty every table, then load what libvirt's `backend` would have made for the default network. */
export async function resetFirewall(hostNetns, backend) {
  assertPrivate(hostNetns);
  await must(["nft", "flush", "ruleset"]);
  if (backend === "iptables") {
    await must(["iptables-restore"], { input: readFileSync(`${KERNEL}/libvirt-default.v4.save`, "utf8") });
    await must(["ip6tables-restore"], { input: readFileSync(`${KERNEL}/libvirt-default.v6.save`, "utf8") });
  } else {
    await must(["nft", "-f", "-"], { input: LIBVIRT_NFT });
  }
}

/** A short description of everything of ours in the kernel: equal fingerprints, equal state. */
export async function fingerprint(hostNetns, backend) {
  assertPrivate(hostNetns);
  if (backend === "iptables") {
    const save = (await must(["iptables-save"])).stdout;
    const ours = save.split("\n").filter((l) => l.includes("VIRT_HOOKS_"));
    const firstForward = save.split("\n").find((l) => l.startsWith("-A FORWARD "));
    return `${ours.length} lines, FORWARD starts with ${firstForward}`;
  }
  const table = await must(["nft", "list", "ruleset"]);
  const lines = table.stdout.split("\n");
  const start = lines.findIndex((l) => l.startsWith("table ip virt_hooks"));
  const ours = start < 0 ? 0 : lines.slice(start).findIndex((l) => l === "}");
  const accept = lines.some((l) => l.includes('comment "virt-hooks"'));
  return `${ours} lines, libvirt accept ${accept}`;
}

/** Someone else flushed our DNAT rules: the next event must notice and repair. */
export async function driftDnat(hostNetns, backend) {
  assertPrivate(hostNetns);
  if (backend === "iptables") await must(["iptables", "-w", "-t", "nat", "-F", "VIRT_HOOKS_PRE"]);
  else await must(["nft", "flush", "chain", "ip", "virt_hooks", "prerouting"]);
}

/**
 * What libvirtd does to its own rules on a restart before the `reconnect`
 * hooks: iptables, its jumps deleted and re-inserted (now above ours);
 * nftables, its table deleted and re-created (our accept in it is gone).
 */
export async function libvirtRebuild(hostNetns, backend) {
  assertPrivate(hostNetns);
  if (backend === "iptables") {
    const lines = ["*filter"];
    for (const c of ["LIBVIRT_FWO", "LIBVIRT_FWI", "LIBVIRT_FWX"]) lines.push(`-D FORWARD -j ${c}`, `-I FORWARD 1 -j ${c}`);
    lines.push("COMMIT", "*nat", "-D POSTROUTING -j LIBVIRT_PRT", "-I POSTROUTING 1 -j LIBVIRT_PRT", "COMMIT", "");
    await must(["iptables-restore", "--noflush"], { input: lines.join("\n") });
  } else {
    await must(["nft", "-f", "-"], { input: `delete table ip libvirt_network\n${LIBVIRT_NFT}` });
  }
}

/** How many of bench/baseline-hook.sh's rules for the guest at `ip` the kernel holds (its DNATs and FORWARD accepts). */
export async function baselineRules(hostNetns, ip) {
  assertPrivate(hostNetns);
  const save = (await must(["iptables-save", "-t", "nat"])).stdout + (await must(["iptables-save", "-t", "filter"])).stdout;
  return save.split("\n").filter((l) => (l.startsWith("-A PREROUTING ") && l.includes(`--to-destination ${ip}:`)) || (l.startsWith("-A FORWARD ") && l.includes(`-d ${ip}/32 `) && l.includes("-j ACCEPT"))).length;
}
