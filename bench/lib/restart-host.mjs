// What the restart bench sets up inside one booted Debian 13 host: libvirt's
// default network with a fixed address per guest, N paused qemu guests (a real
// tap each, as the host tier's scene has), 2 forwards per guest in rules.d,
// virt-hooks installed by install.sh, the floor executable and (optionally) the
// public Python hook beside it; and the switch between the four variants.
// Everything runs through nsenter inside the host; nothing here touches this
// machine's own firewall, network or /etc.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, copyFileSync, chmodSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Guest i (0-based): name, MAC, fixed address on `default`, its 2 host ports (→ 22 and 80). */
export const guest = (i) => ({
  name: `rb${String(i).padStart(3, "0")}`,
  mac: `52:54:00:ba:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
  ip: `192.168.122.${10 + i}`,
  ports: [20000 + 2 * i, 20001 + 2 * i],
});

/** The host address the Python hook's forwards listen on (a veth inside the booted host). */
export const PUBLIC_IP = "10.77.0.1";
export const MAX_GUESTS = 200;

/** Runs a script in the host; throws with its stderr on failure. */
export function must(host, script, what) {
  const r = host.execSync(script);
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-1000)}`);
  return r.stdout;
}

/** Copies one file of this machine into the host as dest (mode 0755). */
export function copyFileIn(host, src, dest) {
  const dir = mkdtempSync(join(tmpdir(), "vh-rb-"));
  try {
    const name = dest.split("/").pop();
    copyFileSync(src, join(dir, name));
    chmodSync(join(dir, name), 0o755);
    host.copyIn(dir, [name], dest.slice(0, dest.length - name.length - 1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes a text file into the host. */
export function writeIn(host, dest, text) {
  const dir = mkdtempSync(join(tmpdir(), "vh-rb-"));
  try {
    const name = dest.split("/").pop();
    writeFileSync(join(dir, name), text);
    host.copyIn(dir, [name], dest.slice(0, dest.length - name.length - 1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The default network defined with a DHCP host entry (fixed address) for every
 * guest the bench may create, then started; a veth with PUBLIC_IP.
 */
export function prepareNetwork(host) {
  const hosts = Array.from({ length: MAX_GUESTS }, (_, i) => guest(i))
    .map((g) => `<host mac='${g.mac}' name='${g.name}' ip='${g.ip}'/>`).join("");
  must(host, `set -e
virsh net-destroy default >/dev/null 2>&1 || true
virsh net-dumpxml --inactive default > /tmp/default.xml
sed -i "s|</range>|</range>${hosts}|; s|\\(<range [^>]*/>\\)|\\1${hosts}|" /tmp/default.xml
grep -q "rb000" /tmp/default.xml
virsh net-define /tmp/default.xml >/dev/null
virsh net-start default >/dev/null
virsh net-autostart default >/dev/null
for i in $(seq 50); do ip link show virbr0 >/dev/null 2>&1 && break; sleep 0.2; done
ip link add vhb0 type veth peer name vhb1 2>/dev/null || true; ip link set vhb1 up
ip addr add ${PUBLIC_IP}/24 dev vhb0 2>/dev/null || true
ip link set vhb0 up`, "default network");
}

/** Guests from..to-1: defined, started, paused at once (a diskless guest spins in its firmware). */
export function addGuests(host, from, to) {
  const xml = (g) => `<domain type='qemu'><name>${g.name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices><interface type='network'><source network='default'/><mac address='${g.mac}'/></interface><graphics type='vnc' listen='127.0.0.1'/></devices></domain>`;
  const lines = [];
  for (let i = from; i < to; i++) {
    const g = guest(i);
    lines.push(`echo "${xml(g)}" > /tmp/${g.name}.xml; virsh define /tmp/${g.name}.xml >/dev/null && virsh start ${g.name} >/dev/null && virsh suspend ${g.name} >/dev/null`);
  }
  must(host, `set -e\n${lines.join("\n")}`, `guests ${from}-${to - 1}`);
}

/** rules.d: 2 forwards per guest, for the first n guests. */
export function rulesFile(n) {
  const out = ["# restart bench: 2 forwards per running guest"];
  for (let i = 0; i < n; i++) {
    const g = guest(i);
    out.push(`forward tcp ${g.ports[0]} to ${g.name}:22`, `forward tcp ${g.ports[1]} to ${g.name}:80`);
  }
  return `${out.join("\n")}\n`;
}

/** The Python hook's hooks.json publishing the same 2 ports per guest. */
export function pythonConfig(n) {
  const conf = {};
  for (let i = 0; i < n; i++) {
    const g = guest(i);
    conf[g.name] = { interface: "virbr0", private_ip: g.ip, public_ip: PUBLIC_IP, port_map: { tcp: [[g.ports[0], 22], [g.ports[1], 80]] } };
  }
  return `${JSON.stringify(conf, null, 2)}\n`;
}

/**
 * virt-hooks the README's way: the checkout (git archive of HEAD) and the binary
 * under test as its dist/virt-hooks, then `./install.sh --no-build` (the build is
 * the binary given). Returns install.sh's output.
 */
/** Where the measured builds live in the host: `after` (--binary) and, with --before, `before`. */
const BUILDS = "/usr/local/lib/restart-bench/virt-hooks";

export function installVirtHooks(host, repo, binary, before) {
  const a = spawnSync("git", ["-C", repo, "archive", "--format=tar", "HEAD"], { maxBuffer: 1 << 30 });
  if (a.status !== 0) throw new Error(`git archive failed: ${a.stderr}`);
  host.untar(a.stdout, "/root/virt-hooks");
  copyFileIn(host, binary, "/root/virt-hooks/dist/virt-hooks");
  host.copyIn(repo, ["dist/cockpit"], "/root/virt-hooks");
  const out = must(host, "cd /root/virt-hooks && ./install.sh --no-build 2>&1", "install.sh");
  must(host, `set -e; mkdir -p ${BUILDS}; mv /usr/local/sbin/virt-hooks ${BUILDS}/after; ln -s ${BUILDS}/after /usr/local/sbin/virt-hooks`, "builds");
  if (before) copyFileIn(host, before, `${BUILDS}/before`);
  return out;
}

/** The Python hook's files, as its Makefile installs them, kept aside until its variant runs. */
export function stagePythonHook(host, dir) {
  const a = spawnSync("git", ["-C", dir, "archive", "--format=tar", "HEAD", "hooks", "hooks.schema.json"], { maxBuffer: 1 << 28 });
  if (a.status === 0) host.untar(a.stdout, "/root/python-hook");
  else host.copyIn(dir, ["hooks", "hooks.schema.json"], "/root/python-hook");
  // Its Makefile: cp hooks hooks.schema.json; hooks.json if absent; chmod +x hooks; ln -sf hooks qemu (and lxc).
  return must(host, `set -e; cd /etc/libvirt/hooks; cp /root/python-hook/hooks /root/python-hook/hooks.schema.json .; chmod +x hooks
python3 -c 'import jsonschema; from importlib.metadata import version; print(version("jsonschema"))' 2>/dev/null || echo absent`, "python hook").trim();
}

const HOOKS = "/etc/libvirt/hooks";
const UNITS = "virt-hooks-watch.service virt-hooks-apply.timer virt-hooks-apply.service virt-hooks-reapply.service";

/** Puts variant `v` in place; libvirtd reads its hooks directory at its next start (the measured restart). */
export async function useVariant(host, v, n) {
  const base = `set -e; cd ${HOOKS}; rm -f qemu network lxc`;
  if (v === "virt-hooks" || v === "virt-hooks-before") {
    // Both builds stay in the host; /usr/local/sbin/virt-hooks (the hooks' and
    // the units' path) points at the one measured. A switch of build starts
    // from an empty state directory: neither reads the other's records.
    const build = `${BUILDS}/${v === "virt-hooks" ? "after" : "before"}`;
    must(host, `${base}
if [ "$(readlink /usr/local/sbin/virt-hooks)" != "${build}" ]; then
  systemctl stop ${UNITS} >/dev/null 2>&1 || true; rm -rf /run/virt-hooks; ln -sfn ${build} /usr/local/sbin/virt-hooks
fi
ln -s /usr/local/sbin/virt-hooks qemu; ln -s /usr/local/sbin/virt-hooks network
systemctl enable --now ${UNITS} >/dev/null 2>&1
systemctl start virt-hooks-apply.service`, `variant ${v}`);
    // Its watcher counts as up once its monitors have run for a second (as install.test.ts waits).
    for (let i = 0; i < 100; i++) {
      if (/netfilter watching/.test(host.execSync("virt-hooks status").stdout)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the virt-hooks watcher did not come up");
  }
  must(host, `${base}; systemctl disable --now ${UNITS} >/dev/null 2>&1`, `variant ${v}: units off`);
  // Symlinks to one copy, as install.sh links virt-hooks (a fresh 120 MB copy per switch once cost a restart 31 s).
  if (v === "floor") must(host, `cd ${HOOKS}; ln -s /usr/local/lib/restart-bench/floor qemu; ln -s /usr/local/lib/restart-bench/floor network`, "variant floor");
  if (v === "python") {
    writeIn(host, `${HOOKS}/hooks.json`, pythonConfig(n));
    must(host, `cd ${HOOKS}; ln -sf ${HOOKS}/hooks ${HOOKS}/qemu; ln -sf ${HOOKS}/hooks ${HOOKS}/lxc`, "variant python");
  }
}

const PY_CHAIN = "(DNAT|SNAT|FWD)-rb[0-9]+";

/**
 * The Python hook's rules as it left them (its chains' rules and the jumps to
 * them), then removed, so each of its restarts starts from a clean firewall:
 * its `reconnect` deletes one copy of its jumps and re-adds them, and what it
 * failed to delete stays (the issue: its rules multiply on every restart).
 */
export function pythonRulesCountAndClean(host) {
  const out = must(host, `set -e
count=$(iptables-save | grep -cE -- '${PY_CHAIN}' || true)
echo "$count"
for t in nat filter; do
  { echo "*$t"
    iptables-save -t $t | grep -E '^-A (PREROUTING|OUTPUT|POSTROUTING|FORWARD) .*-j ${PY_CHAIN}' | sed 's/^-A /-D /' || true
    iptables-save -t $t | grep -oE '^:${PY_CHAIN}' | sed 's/^:/-F /' || true
    iptables-save -t $t | grep -oE '^:${PY_CHAIN}' | sed 's/^:/-X /' || true
    echo COMMIT; } > /tmp/py-clean.$t
  iptables-restore -w --noflush < /tmp/py-clean.$t
done
iptables-save | grep -cE -- '${PY_CHAIN}' || true`, "python rules");
  const [before, after] = out.trim().split("\n").map(Number);
  return { before, after };
}
