// The host an `uplink default em1` rule takes over, in a private netns: the
// NIC em1 (192.0.2.5/24, a veth whose peer `wan` stands for the upstream
// switch) carrying the default route via 192.0.2.1, and libvirt's bridge
// virbr0 (192.168.122.1/24) as the `default` network leaves it.
import type { Netns } from "./netns.js";

export async function uplinkLab(ns: Netns): Promise<void> {
  for (const cmd of [
    "link add em1 type veth peer name wan",
    "link set wan up",
    "link set em1 up",
    "address add 192.0.2.5/24 dev em1",
    "route add default via 192.0.2.1 dev em1",
    "link add virbr0 type bridge",
    "link set virbr0 up",
    "address add 192.168.122.1/24 dev virbr0",
  ]) await ns.must(["ip", ...cmd.split(" ")]);
}
