// One executable, three faces, chosen by the name it was invoked by:
// /etc/libvirt/hooks/qemu and .../network are libvirt's hooks, anything else
// (virt-hooks) is the admin CLI.
//
// The hook's first steps are imported statically: most hook calls end there
// (an event no rule concerns). The CLI, and everything a hook needs only when
// it acts, are loaded by dynamic import(), which the build turns into a
// second bundle compiled on first use (.ci/build.mjs, "Deferred code"):
// a hook call never compiles the CLI, nor an ignored event the firewall code.
import { fstatSync, readSync } from "node:fs";
import { basename, dirname } from "node:path";
import { defaultPaths } from "./config/paths.js";
import { openLogSink } from "./effects/log.js";
import { HOOK_DRIVERS, type Driver } from "./libvirt/event.js";
import { runHook } from "./hook/run-hook.js";
import { escapeText } from "./text/escape.js";

declare const VIRT_HOOKS_VERSION: string;
const version = typeof VIRT_HOOKS_VERSION === "string" ? VIRT_HOOKS_VERSION : "dev";

const STDIN_KEEP_BYTES = 8 * 1024 * 1024;

/**
 * The XML libvirt writes, read with plain blocking reads of fd 0: a hook is
 * synchronous anyway, and process.stdin would build a net.Socket and its
 * stream machinery for one read. Drains past the cap (libvirt must not block
 * on a full pipe) but stops keeping it. Falls back to the stream when fd 0
 * is non-blocking (EAGAIN) or otherwise unreadable this way.
 */
function readStdin(): Promise<string> {
  let device: boolean;
  try {
    device = fstatSync(0).isCharacterDevice();
  } catch {
    return Promise.resolve(""); // no fd 0 at all
  }
  // A terminal (an admin typing a command) or /dev/null: the stream, as before.
  if (device) return process.stdin.isTTY ? Promise.resolve("") : readStdinStream([], 0);
  const chunks: Buffer[] = [];
  let size = 0;
  const buf = Buffer.allocUnsafe(64 * 1024);
  try {
    for (;;) {
      const n = readSync(0, buf, 0, buf.length, null);
      if (n === 0) return Promise.resolve(Buffer.concat(chunks).toString("utf8"));
      size += n;
      if (size <= STDIN_KEEP_BYTES) chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EOF") return Promise.resolve(Buffer.concat(chunks).toString("utf8"));
    return readStdinStream(chunks, size);
  }
}

function readStdinStream(chunks: Buffer[], size: number): Promise<string> {
  return new Promise((resolve, reject) => {
    process.stdin.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= STDIN_KEEP_BYTES) chunks.push(c);
    });
    process.stdin.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.once("error", reject);
  });
}

async function main(): Promise<number> {
  const invokedAs = basename(process.argv0 || process.argv[0] || "virt-hooks");
  const paths = defaultPaths();
  const args = process.argv.slice(2);
  // Run by libvirt from DRIVER.d/ (qemu.d/00-previous-hook is where earlier
  // install.sh releases moved a packaged or other-prefix hook) with its four hook
  // arguments: the CLI would exit 2 on them, and a non-zero exit refuses the
  // guest's start and kills it on reconnect. The main hook DRIVER already did
  // the work, so: one warning line, exit 0 (install.sh and the packages remove
  // such a leftover).
  const from = basename(dirname(process.argv0 || ""));
  if (args.length === 4 && from.endsWith(".d") && (HOOK_DRIVERS as readonly string[]).includes(from.slice(0, -2))) {
    await readStdin();
    const driver = from.slice(0, -2);
    await openLogSink(paths).write("warning", [
      `${driver} hook run as ${from}/${invokedAs}, a leftover copy of this hook: did nothing (the ${driver} hook does the work); remove ${process.argv0}`,
    ]);
    return 0;
  }
  if ((HOOK_DRIVERS as readonly string[]).includes(invokedAs)) {
    return runHook(invokedAs as Driver, args, paths, {
      stdin: readStdin,
      // libvirt puts a refusing hook's stderr in its error, which virsh prints: escaped (text/escape.ts).
      stderr: (t) => process.stderr.write(escapeText(t)),
      // A pipe: written synchronously on Linux, so it is out before process.exit.
      stdout: (t) => process.stdout.write(t),
      now: () => Math.round(performance.now()),
    });
  }
  const { parseCliArgs, UsageError } = await import("./cli/args.js");
  const { EXIT, runCli } = await import("./cli/run-cli.js");
  try {
    const parsed = parseCliArgs(args);
    return await runCli(parsed, paths, {
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
      stdin: readStdin,
      now: () => Math.round(performance.now()),
      version,
    });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`virt-hooks: ${e.message}\nTry: virt-hooks --help\n`);
      return EXIT.usage;
    }
    // "virt-hooks: internal error: " is also the fingerprint install.sh and the
    // packages read (never run) to recognise this executable under any name
    // (install.sh, its vh-lib block): every build since the first carries it; keep it as is.
    process.stderr.write(`virt-hooks: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.applyFailed;
  }
}

main().then(
  (code) => process.exit(code),
  () => process.exit(0),
);
