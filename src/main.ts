// One executable, three faces, chosen by the name it was invoked by:
// /etc/libvirt/hooks/qemu and .../network are libvirt's hooks, anything else
// (virt-hooks) is the admin CLI.
//
// Each face is loaded by dynamic import(): the bundle is one file, but esbuild
// keeps a dynamically imported module's initialisation lazy, so a hook call
// never initialises the CLI (status, lint, ...) and the CLI never the hook.
import { basename } from "node:path";
import { defaultPaths } from "./config/paths.js";
import { HOOK_DRIVERS, type Driver } from "./libvirt/event.js";

declare const VIRT_HOOKS_VERSION: string;
const version = typeof VIRT_HOOKS_VERSION === "string" ? VIRT_HOOKS_VERSION : "dev";

function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return Promise.resolve("");
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on("data", (c: Buffer) => {
      size += c.length;
      // Keep draining past the cap (libvirt must not block on a full pipe) but stop keeping it.
      if (size <= 8 * 1024 * 1024) chunks.push(c);
    });
    process.stdin.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.once("error", reject);
  });
}

async function main(): Promise<number> {
  const invokedAs = basename(process.argv0 || process.argv[0] || "virt-hooks");
  const paths = defaultPaths();
  const args = process.argv.slice(2);
  if ((HOOK_DRIVERS as readonly string[]).includes(invokedAs)) {
    const { runHook } = await import("./hook/run-hook.js");
    return runHook(invokedAs as Driver, args, paths, {
      stdin: readStdin,
      stderr: (t) => process.stderr.write(t),
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
    process.stderr.write(`virt-hooks: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.applyFailed;
  }
}

main().then(
  (code) => process.exit(code),
  () => process.exit(0),
);
