// What one script's run means: success or not, the XML it hands on (filters
// only), and the log line an admin reads in `journalctl -t virt-hooks`. Pure.

export interface ScriptResult {
  /** null when killed by a signal or never started. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** Killed by us at its time limit. */
  readonly timedOut: boolean;
  /** Could not be started, or printed more than we keep. */
  readonly error?: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** It exited, but something it started still held its stdout/stderr: we stopped reading. */
  readonly heldOpen: boolean;
}

export const succeeded = (r: ScriptResult) => r.exitCode === 0 && !r.timedOut && r.error === undefined;

/** libvirt's virStringIsEmpty: nothing but white space is no output. */
const blank = (s: string) => /^[ \t\n\r]*$/.test(s);

/**
 * libvirt's filter semantics for migrate/restore (virHookCall, src/util/virhook.c,
 * since 6.5): each script reads the last non-empty output of a successful
 * script before it, else the XML libvirt sent; the last such output is what
 * libvirt gets. No output anywhere: libvirt keeps its own XML, so we print nothing.
 */
export interface Chain {
  readonly original: string;
  /** The last non-empty stdout of a successful script; undefined: nobody replaced the XML. */
  readonly replacement?: string;
}

export const startChain = (xml: string): Chain => ({ original: xml });
export const inputFor = (c: Chain): string => c.replacement ?? c.original;

export function afterScript(c: Chain, r: ScriptResult, filter: boolean): Chain {
  if (!filter || !succeeded(r) || blank(r.stdout)) return c;
  return { ...c, replacement: r.stdout };
}

/** How a run ended, in words: "exit 0", "exit 3", "killed by SIGKILL", "timed out after 30 s, killed". */
export function ending(r: ScriptResult, timeoutMs: number): string {
  if (r.error !== undefined) return r.error;
  if (r.timedOut) return `timed out after ${formatSeconds(timeoutMs)}, killed (its process group)`;
  if (r.signal) return `killed by ${r.signal}`;
  return `exit ${r.exitCode}`;
}

const formatSeconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`);

export const OUTPUT_IN_LOG = 400;

/** Output for one log line: control characters shown as escapes, lines joined by " | ", cut to `max` characters. */
export function trimOutput(text: string, max = OUTPUT_IN_LOG): string {
  const oneLine = text
    .trim()
    .split(/\r?\n/)
    .map((l) => l.replace(/\t/g, " ").trim())
    .filter(Boolean)
    .join(" | ")
    // C0/C1 controls, line and paragraph separators, bidi overrides: no forged or reordered log text.
    .replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return oneLine.length > max ? `${oneLine.slice(0, max)}… (${oneLine.length - max} more characters)` : oneLine;
}

/** One log line per script: path, how it ended, duration, its output trimmed. */
export function scriptLine(label: string, path: string, r: ScriptResult, o: { filter: boolean; timeoutMs: number }): string {
  const parts = [`${label}: script ${path}: ${ending(r, o.timeoutMs)}`, `${r.ms} ms`];
  if (o.filter && succeeded(r) && !blank(r.stdout)) parts.push(`stdout: replacement domain XML, ${Buffer.byteLength(r.stdout)} bytes`);
  else if (r.stdout.trim()) parts.push(`stdout: ${trimOutput(r.stdout)}`);
  if (r.stderr.trim()) parts.push(`stderr: ${trimOutput(r.stderr)}`);
  if (r.heldOpen) parts.push("a process it left running still held its output open: not waited for (redirect a background job's output)");
  return parts.join("; ");
}

/** The reason libvirt shows (it reports a failing hook's stderr): which script, how it ended, what it said. */
export function vetoReason(label: string, path: string, r: ScriptResult, timeoutMs: number): string {
  const said = trimOutput(r.stderr);
  return `virt-hooks: refusing ${label}: script ${path}: ${ending(r, timeoutMs)}${said ? `: ${said}` : ""}\n`;
}
