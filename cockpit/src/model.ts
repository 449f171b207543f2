// The page's pure part: the shapes of `virt-hooks … --json` it reads (docs/json.md,
// "version": 1), the statements it writes, and the edits of its own drop-in file.
// No cockpit.js here, so it is tested in the unit tier.

/** The page's own drop-in file: it never writes any other file of rules.d. */
export const RULES_DIR = "/etc/libvirt/hooks/rules.d";
export const OWN_FILE = `${RULES_DIR}/60-cockpit.rules`;
export const HEADER = "# Written by Cockpit's Port forwards page (virt-hooks). Edit here or in the page:\n# the page refuses to save over changes it has not seen.\n";

export interface Diagnostic {
  severity: "error" | "warning"; code: string; message: string; hint: string | null;
  file: string | null; line: number | null; column: number | null;
}
export interface Counters { connections: number | null; packets: number | null; bytes: number | null; note: string | null }
export interface Lease { ip: string; mac: string; hostname: string | null; expiry: number | null; differs: boolean }
export interface StatusRule {
  origin: string; file: string; line: number; kind: string; text: string;
  state: "live" | "waiting" | "failed" | "drifted" | "unknown"; detail: string; targets: string[];
  domain: string | null; mac: string | null; network: string | null; lease: Lease | null; counters: Counters | null;
}
export interface HostEntry {
  origin: string; file: string; line: number; kind: "host"; text: string;
  state: "live" | "pending" | "waiting" | "failed" | "unknown"; detail: string;
  network: string; mac: string; ip: string; name: string | null;
}
export interface Drift { family: number; backend: string; kind: string; where: string; detail: string; origin: string | null }
export interface Watcher {
  running: boolean; pid: number | null; sources: Record<string, string> | null;
  lastRepair: { at: string; why: string; ms: number; outMs: number } | null;
}
export interface Status {
  version: 1; command: "status"; ok: boolean; exitCode: number;
  backend: { name: string; why: string } | null;
  summary: { live: number; drifted: number; waiting: number; failed: number };
  rules: StatusRule[]; hosts: HostEntry[]; drift: Drift[]; diagnostics: Diagnostic[]; errors: string[]; watcher: Watcher;
}
export interface Check { version: 1; command: "check"; ok: boolean; exitCode: number; diagnostics: Diagnostic[] }
export interface PlanFamily { family: number; backend: string; inSync: boolean; added: number; removed: number; transaction: string | null; error: string | null }
export interface Plan { version: 1; command: "plan"; ok: boolean; exitCode: number; families: PlanFamily[]; diagnostics: Diagnostic[] }

/**
 * What `virt-hooks status` run without administrative access can vouch for: rules.d
 * as written. It cannot read the firewall, libvirt's system connection or the
 * watcher's state file, so its states ("domain is not running", "waiting"), counters
 * and drift would mislead: they become "unknown", nothing else is claimed.
 */
export const NEEDS_ADMIN = "its state needs administrative access";
export function unprivileged(st: Status): Status {
  return {
    ...st,
    backend: null,
    summary: { live: 0, drifted: 0, waiting: 0, failed: 0 },
    rules: st.rules.map((r) => ({ ...r, state: "unknown", detail: NEEDS_ADMIN, targets: [], lease: null, counters: null })),
    hosts: st.hosts.map((h) => ({ ...h, state: "unknown", detail: NEEDS_ADMIN })),
    drift: [], errors: [],
    watcher: { running: false, pid: null, sources: null, lastRepair: null },
  };
}

/** Parses one `--json` document; refuses another contract version. */
export function parseDoc<T extends { version: number }>(text: string, command: string): T {
  let doc: T & { command?: string };
  try { doc = JSON.parse(text); } catch { throw new Error(`virt-hooks ${command} --json printed no JSON: ${text.slice(0, 200)}`); }
  if (doc.version !== 1) throw new Error(`virt-hooks ${command} --json speaks version ${doc.version}; this page reads version 1`);
  return doc;
}

export interface ForwardInput { proto: string; hostPort: string; guest: string; guestPort: string; hostAddr?: string }
export interface HostInput { network: string; mac: string; ip: string; name?: string }

const WORD = /^[A-Za-z0-9_.:\-\[\]\/]+$/;

/**
 * The statement for a forward, or an error the form shows before anything runs.
 * Only the shape is checked here (one word per field: nothing can smuggle a second
 * statement into the file); the meaning is `virt-hooks check`'s to judge.
 */
export function forwardLine(f: ForwardInput): string {
  for (const [k, v] of Object.entries({ protocol: f.proto, "host port": f.hostPort, guest: f.guest, "guest port": f.guestPort }))
    if (!v || !WORD.test(v)) throw new Error(`${k}: one word without spaces is needed`);
  if (f.hostAddr && !WORD.test(f.hostAddr)) throw new Error("host address: one word without spaces is needed");
  const from = f.hostAddr ? `${f.hostAddr}:${f.hostPort}` : f.hostPort;
  return `forward ${f.proto} ${from} to ${f.guest}:${f.guestPort}`;
}

export function hostLine(h: HostInput): string {
  for (const [k, v] of Object.entries({ network: h.network, MAC: h.mac, address: h.ip }))
    if (!v || !WORD.test(v)) throw new Error(`${k}: one word without spaces is needed`);
  if (h.name && !WORD.test(h.name)) throw new Error("name: one word without spaces is needed");
  return `host ${h.network} ${h.mac} ${h.ip}${h.name ? ` ${h.name}` : ""}`;
}

/** Splits a statement back into the form's fields (for Edit); null when it is not one the form writes. */
export function parseForward(text: string): ForwardInput | null {
  const m = /^forward\s+(\S+)\s+(?:(\S+):)?(\d[\d-]*)\s+to\s+([^:\s]+):(\S+)\s*$/.exec(text.trim());
  return m ? { proto: m[1]!, hostPort: m[3]!, guest: m[4]!, guestPort: m[5]!, ...(m[2] ? { hostAddr: m[2] } : {}) } : null;
}
export function parseHost(text: string): HostInput | null {
  const m = /^host\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+(\S+))?\s*$/.exec(text.trim());
  return m ? { network: m[1]!, mac: m[2]!, ip: m[3]!, ...(m[4] ? { name: m[4] } : {}) } : null;
}

/** The file with one more statement (a new file gets the header). */
export function addLine(content: string | null, line: string): string {
  const base = content && content.length ? (content.endsWith("\n") ? content : content + "\n") : HEADER;
  return base + line + "\n";
}

/**
 * The file with line `n` (1-based) replaced (or removed with null). The line must
 * still hold `expected` (the statement status showed): else the file changed since
 * and the edit is refused, never applied to whatever is there now.
 */
export function editLine(content: string, n: number, expected: string, replacement: string | null): string {
  const lines = content.split("\n");
  const cur = lines[n - 1];
  if (cur === undefined || cur.replace(/#.*/, "").trim() !== expected.trim())
    throw new Error(`line ${n} of ${OWN_FILE} no longer reads "${expected}": the file changed since the page showed it; nothing was written`);
  if (replacement === null) lines.splice(n - 1, 1); else lines[n - 1] = replacement;
  return lines.join("\n");
}

/** Diagnostics of a staged copy name the staged directory: give them the real path. */
export function unstage<T extends { file: string | null }>(d: T, stagedDir: string): T {
  return d.file && d.file.startsWith(stagedDir + "/") ? { ...d, file: RULES_DIR + d.file.slice(stagedDir.length) } : d;
}

/** What stops a save: every error, and any warning about the page's own file (an unknown guest). */
export function blocking(diags: Diagnostic[]): Diagnostic[] {
  return diags.filter((d) => d.severity === "error" || d.file === OWN_FILE);
}

export function where(d: { file: string | null; line: number | null; column: number | null }): string {
  return d.file ? `${d.file}${d.line ? `:${d.line}${d.column ? `:${d.column}` : ""}` : ""}` : "";
}

export function fmtBytes(n: number | null): string {
  if (n === null) return "–";
  if (n < 1024) return `${n} B`;
  const u = ["KiB", "MiB", "GiB", "TiB"]; let v = n / 1024; let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(1)} ${u[i]}`;
}

/** A shell word, quoted only when needed: for the command lines the page shows. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
