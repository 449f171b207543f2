// What every CLI command is handed to talk to the world: its own module so
// that the commands (status, explain, ...) and the dispatcher (run-cli.ts)
// share it without importing each other.
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly stdin: () => Promise<string>;
  readonly now: () => number;
  readonly version: string;
}
