// Command-line parsing for the admin face. Small and strict: unknown options
// are usage errors (exit 2), never silently ignored.

export type Command = "check" | "plan" | "apply" | "status" | "explain" | "flush" | "hook" | "host" | "watch" | "help" | "version";

export interface CliArgs {
  readonly command: Command;
  readonly rulesDir?: string;
  readonly verbose: boolean;
  /** --json: one JSON document on stdout (check, plan, status; docs/json.md). */
  readonly json: boolean;
  /** plan --event "DRIVER OBJECT OP SUBOP". */
  readonly event?: string;
  /** explain DOMAIN. */
  readonly domain?: string;
  /** For `hook`: the driver and libvirt's arguments. For `host`: add|del and its arguments. */
  readonly rest: readonly string[];
  readonly helpFor?: Command;
}

export class UsageError extends Error {}

const COMMANDS: readonly Command[] = ["check", "plan", "apply", "status", "explain", "flush", "hook", "host", "watch", "help", "version"];
const JSON_COMMANDS: readonly Command[] = ["check", "plan", "status"];

export function parseCliArgs(argv: readonly string[]): CliArgs {
  let command: Command | undefined;
  let rulesDir: string | undefined;
  let event: string | undefined;
  let domain: string | undefined;
  let verbose = false;
  let json = false;
  let help = false;
  const rest: string[] = [];
  const value = (a: string, i: number, what: string): [string, number] => {
    const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[i + 1];
    if (!v) throw new UsageError(`${a.split("=")[0]} needs ${what}`);
    return [v, a.includes("=") ? i : i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (command === "hook") { rest.push(a); continue; }
    if (a === "--help" || a === "-h") help = true;
    else if (a === "--version" || a === "-V") command ??= "version";
    else if (a === "--verbose" || a === "-v") verbose = true;
    else if (a === "--json") json = true;
    else if (a === "--rules-dir" || a.startsWith("--rules-dir=")) [rulesDir, i] = value(a, i, "a directory");
    else if (a === "--event" || a.startsWith("--event=")) [event, i] = value(a, i, 'an event such as "qemu NAME start begin"');
    else if (a.startsWith("-") && a !== "-") throw new UsageError(`unknown option ${a}`);
    else if (!command) {
      if (!COMMANDS.includes(a as Command)) throw new UsageError(`unknown command "${a}"`);
      command = a as Command;
    } else if (command === "help" && COMMANDS.includes(a as Command)) {
      return { command: "help", helpFor: a as Command, verbose, json, rest };
    } else if (command === "explain" && domain === undefined) domain = a;
    else if (command === "host") rest.push(a);
    else throw new UsageError(`unexpected argument "${a}"`);
  }
  if (help) return { command: "help", ...(command && command !== "help" ? { helpFor: command } : {}), verbose, json, rest };
  const cmd = command ?? "help";
  if (json && !JSON_COMMANDS.includes(cmd)) throw new UsageError(`--json is for ${JSON_COMMANDS.join(", ")}`);
  if (event !== undefined && cmd !== "plan") throw new UsageError("--event is for plan");
  if (cmd === "explain" && domain === undefined) throw new UsageError("explain needs a DOMAIN");
  return { command: cmd, ...(rulesDir ? { rulesDir } : {}), verbose, json, ...(event !== undefined ? { event } : {}), ...(domain !== undefined ? { domain } : {}), rest };
}
