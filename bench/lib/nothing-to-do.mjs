// Issue 28: the hooks of a libvirtd restart that find nothing to do, against
// an ignored event run between their own samples (the target: ≤ 1.1× it, no
// child).
// - `port-created` of a running guest's recorded port: what libvirtd runs,
//   one after another, for every running guest's port as it starts
//   (hook/recorded-port.ts).
// - `reconnect` while the real watcher (`virt-hooks watch`, run here in the
//   bench's namespace) hears every change: left to it (hook/handed-to-watcher.ts).
// - `started` in sync while that watcher holds its quiet record
//   (effects/quiet-record.ts): the firewall did not move since it verified.
// - the `reconnect` with no watcher: it reads the kernel (for contrast).
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BenchHost, forwardsTo, guest } from "./host.mjs";
import { resetFirewall } from "./firewall.mjs";
import { timed } from "./measure.mjs";

const CAPTURED_MAC = "52:54:00:6c:3c:01";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What libvirtd sends `network default port-created` for `g`'s port, the one its status file (status-qemu-vm1.xml) holds. */
function portCreatedXml(host, g) {
  const xml = host.networkXml("22-network-port-created-begin.xml");
  const at = xml.indexOf("<networkport>");
  return xml.slice(0, at) + xml.slice(at).replace(`<mac address='${CAPTURED_MAC}'/>`, `<mac address='${g.mac}'/>`).replace("<name>vm1</name>", `<name>${g.name}</name>`);
}

async function startWatcher(host) {
  const argv = host.cliArgv("watch");
  const child = spawn(argv[0], argv.slice(1), { env: host.env(), stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (c) => (stderr += c));
  const quiet = join(host.root, "run/virt-hooks/quiet.json");
  for (let waited = 0; !existsSync(quiet); waited += 50) {
    if (waited > 20_000) throw new Error(`the watcher wrote no quiet record in 20 s: ${stderr.slice(-500)}`);
    await sleep(50);
  }
  const pid = JSON.parse(readFileSync(join(host.root, "run/virt-hooks/watch.json"), "utf8")).pid;
  return {
    stop: async () => {
      process.kill(pid, "SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("close", r)));
    },
  };
}

export async function nothingToDo(b, backend) {
  const host = new BenchHost(b.binary, backend);
  let watcher;
  try {
    const g = guest(1);
    const other = guest(2);
    host.setGuests([g, other]);
    host.writeRules(`set backend ${backend}\n` + forwardsTo(g, 2));
    host.running(g, true);
    await resetFirewall(b.hostNetns, backend);
    b.check("apply", await timed(host.cliArgv("apply"), { env: host.env() }), true);

    const ignored = ["qemu start of a domain no rule names", `qemu ${other.name} start begin -`, host.domainXml(other)];
    const port = ["network port-created of a running guest's recorded port (a libvirtd restart's)", "network default port-created begin -", portCreatedXml(host, g), /recorded port of running guest/];
    const reconnect = (how, note) => [`qemu reconnect in sync, ${how}`, `qemu ${g.name} reconnect begin -`, host.liveXml(g), note];

    const measure = async ([name, line, input, note]) => {
      const row = b.row("nothing", name, backend, { pairedIgnored: b.row("nothing-ref", `${name} (its ignored events)`, backend) });
      const ref = row.pairedIgnored;
      await b.hook(host, line, input);
      for (let i = 0; i < b.reps.fast; i++) {
        await b.hook(host, ignored[1], ignored[2], ref);
        const r = await b.hook(host, line, input, row);
        if (note && !note.test(r.stderr)) b.problems.push(`${name}: log line ${r.stderr.trim().slice(0, 200)} does not say ${note}`);
      }
      await b.trace(host, line, input, row);
    };
    await measure(port);
    await measure(reconnect("no watcher (reads the kernel)"));
    watcher = await startWatcher(host);
    await measure(reconnect("the watcher hears every change (left to it)", /left to the watcher/));
    await measure([`qemu started in sync, the watcher's quiet record`, `qemu ${g.name} started begin -`, host.liveXml(g), /unchanged since the watcher verified it/]);
  } finally {
    await watcher?.stop();
    host.dispose();
  }
}
