// What every CLI command is handed to talk to the world: its own module so
// that the commands (status, explain, ...) and the dispatcher (run-cli.ts)
// share it without importing each other.
import { escapeText } from "../text/escape.js";

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /**
   * stdout for text whose only control sequences are our own colours, every
   * value in it escaped already (table.ts renderTable); absent: `out`.
   */
  readonly outPainted?: (text: string) => void;
  readonly stdin: () => Promise<string>;
  readonly now: () => number;
  readonly version: string;
}

/**
 * The sinks every command prints through (run-cli.ts): what guests and names
 * bring in (a lease's hostname, a domain or file name) is escaped on the way
 * out (text/escape.ts), whatever printed it. `--json` goes through it too and
 * stays exact: the escapes are JSON's own (docs/json.md). Not for a hook's
 * stdout, which libvirt may read as XML.
 */
export function escapingIo(io: CliIo): CliIo {
  return {
    ...io,
    out: (text) => io.out(escapeText(text)),
    err: (text) => io.err(escapeText(text)),
    outPainted: io.outPainted ?? io.out,
  };
}
