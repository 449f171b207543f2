// Command-line parsing for the admin face. Small and strict: unknown options
// are usage errors (exit 2), never silently ignored.

export type Command = "check" | "plan" | "apply" | "flush" | "hook" | "help" | "version";

export interface CliArgs {
  readonly command: Command;
  readonly rulesDir?: string;
  readonly verbose: boolean;
  /** For `hook`: the driver and libvirt's arguments. */
  readonly rest: readonly string[];
  readonly helpFor?: Command;
}

export class UsageError extends Error {}

const COMMANDS: readonly Command[] = ["check", "plan", "apply", "flush", "hook", "help", "version"];

export function parseCliArgs(argv: readonly string[]): CliArgs {
  let command: Command | undefined;
  let rulesDir: string | undefined;
  let verbose = false;
  let help = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (command === "hook") { rest.push(a); continue; }
    if (a === "--help" || a === "-h") help = true;
    else if (a === "--version" || a === "-V") command ??= "version";
    else if (a === "--verbose" || a === "-v") verbose = true;
    else if (a === "--rules-dir" || a.startsWith("--rules-dir=")) {
      const value = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (!value) throw new UsageError("--rules-dir needs a directory");
      rulesDir = value;
    } else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
    else if (!command) {
      if (!COMMANDS.includes(a as Command)) throw new UsageError(`unknown command "${a}"`);
      command = a as Command;
    } else if (command === "help" && COMMANDS.includes(a as Command)) {
      return { command: "help", helpFor: a as Command, verbose, rest };
    } else throw new UsageError(`unexpected argument "${a}"`);
  }
  if (help) return { command: "help", ...(command && command !== "help" ? { helpFor: command } : {}), verbose, rest };
  return { command: command ?? "help", ...(rulesDir ? { rulesDir } : {}), verbose, rest };
}
