// A scratch host as the hook sees it (VIRT_HOOKS_ROOT): rules.d, libvirt's
// status files under run/libvirt/{qemu,network}, and the hook symlinks named
// qemu/network so that argv0 picks hook mode, as under libvirt. The XML is
// libvirt 11.3's own (test/fixtures/libvirt-11.3), renamed per guest.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SYSTEM_PATH } from "./measure.mjs";

const BASELINE_HOOK = resolve(import.meta.dirname, "..", "baseline-hook.sh");
const FIXTURES = resolve(import.meta.dirname, "..", "..", "test", "fixtures", "libvirt-11.3");
const fixture = (name) => readFileSync(join(FIXTURES, name), "utf8");

const CAPTURED_MAC = "52:54:00:6c:3c:01";
const HOST_ANCHOR = `<host mac='${CAPTURED_MAC}' name='vm1' ip='192.168.122.10'/>`;

/** A bench guest: name, MAC and fixed address on libvirt's default network. */
export const guest = (i) => ({
  name: `bench${String(i).padStart(3, "0")}`,
  mac: `52:54:00:be:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
  ip: `192.168.122.${20 + i}`,
});

export class BenchHost {
  /** @param {"iptables"|"nftables"} backend what libvirt's network status says it uses */
  constructor(binary, backend) {
    this.binary = binary;
    this.backend = backend;
    this.root = mkdtempSync(join(tmpdir(), "virt-hooks-bench-"));
    this.hooksDir = join(this.root, "etc/libvirt/hooks");
    this.rulesDir = join(this.hooksDir, "rules.d");
    this.runDir = join(this.root, "run/libvirt");
    for (const d of [this.rulesDir, join(this.runDir, "qemu"), join(this.runDir, "network"), join(this.root, "bin")]) mkdirSync(d, { recursive: true });
    for (const driver of ["qemu", "network"]) symlinkSync(binary, join(this.hooksDir, driver));
    symlinkSync(binary, join(this.root, "bin", "virt-hooks"));
    this.guests = [];
  }

  /** The default network active, with a DHCP host entry (fixed address) per guest. */
  setGuests(guests) {
    this.guests = guests;
    writeFileSync(join(this.runDir, "network", "default.xml"), this.networkXml("status-network-default.xml"));
  }

  /** `status-...`: libvirt's status file; `02-...`: what `network default started begin -` gets on stdin. */
  networkXml(file) {
    const hosts = this.guests.map((g) => `\n        <host mac='${g.mac}' name='${g.name}' ip='${g.ip}'/>`).join("");
    return fixture(file).replace(HOST_ANCHOR, HOST_ANCHOR + hosts).replace("backend='iptables'", `backend='${this.backend}'`);
  }

  /** The live domain XML libvirt sends to `qemu NAME start|reconnect|stopped ...`. */
  domainXml(g, file = "05-qemu-start-begin.xml") {
    return fixture(file).replaceAll(CAPTURED_MAC, g.mac).replaceAll("<name>vm1</name>", `<name>${g.name}</name>`).replace(/<uuid>[^<]*<\/uuid>/, "");
  }

  writeRules(text, name = "50-bench.rules") {
    rmSync(this.rulesDir, { recursive: true, force: true });
    mkdirSync(this.rulesDir);
    writeFileSync(join(this.rulesDir, name), text);
  }

  /**
   * What a `reconnect` hook gets on stdin: the live <domain>, the very element
   * libvirt keeps in the guest's status file (captured: 08-qemu-reconnect-begin.xml).
   */
  liveXml(g) {
    const status = this.domainXml(g, "status-qemu-vm1.xml");
    return status.slice(status.indexOf("<domain "), status.lastIndexOf("</domain>") + "</domain>".length) + "\n";
  }

  /** libvirt writes the status file once the guest runs (at `started`) and removes it when it stops. */
  running(g, yes) {
    const path = join(this.runDir, "qemu", `${g.name}.xml`);
    if (yes) writeFileSync(path, this.domainXml(g, "status-qemu-vm1.xml"));
    else rmSync(path, { force: true });
  }

  /** The environment libvirt gives a hook (cleared to LC_ALL=C and PATH), plus our root. */
  env(pathFirst) {
    return { LC_ALL: "C", PATH: pathFirst ? `${pathFirst}:${SYSTEM_PATH}` : SYSTEM_PATH, VIRT_HOOKS_ROOT: this.root };
  }

  /** bench/baseline-hook.sh's settings for `g`: the ports of forwardsTo(g, count, firstPort), to its fixed address. */
  writeBaseline(g, count, firstPort = 20000) {
    const dir = join(this.hooksDir, "baseline.d");
    mkdirSync(dir, { recursive: true });
    const host = [], guestPorts = [];
    for (let i = 0; i < count; i++) {
      host.push(firstPort + i);
      guestPorts.push(22 + (i % 1000));
    }
    writeFileSync(join(dir, `${g.name}.conf`), `Guest_ipaddr=${g.ip}\nHost_ipaddr=192.168.1.100\nHost_port=( ${host.join(" ")} )\nGuest_port=( ${guestPorts.join(" ")} )\n`);
  }

  /** The baseline hook, as libvirt would run it: HOOKS/qemu-baseline (a symlink to bench/baseline-hook.sh) GUEST OP SUBOP -. */
  baselineArgv(line) {
    const path = join(this.hooksDir, "qemu-baseline");
    try {
      symlinkSync(BASELINE_HOOK, path);
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
    }
    return [path, ...line.split(" ")];
  }

  hookArgv(line) {
    const [driver, ...args] = line.split(" ");
    return [join(this.hooksDir, driver), ...args];
  }

  cliArgv(...args) {
    return [join(this.root, "bin", "virt-hooks"), ...args];
  }

  dispose() {
    if (!this.root.startsWith(join(tmpdir(), "virt-hooks-bench-"))) throw new Error(`refusing to remove ${this.root}`);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** `count` forwards to one guest, each its own host port (what a busy guest might publish). */
export function forwardsTo(g, count, firstPort = 20000) {
  const lines = [];
  for (let i = 0; i < count; i++) lines.push(`forward tcp 192.168.1.100:${firstPort + i} to ${g.name}:${22 + (i % 1000)}`);
  return lines.join("\n") + "\n";
}
