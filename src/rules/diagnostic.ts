// Diagnostics are values, not exceptions: the parser and resolver return them,
// the edges decide how to print them and which exit code they mean.
import { formatSpan, type Span } from "./source.js";

export type Severity = "error" | "warning";

export interface Diagnostic {
  readonly severity: Severity;
  /** Stable identifier, documented in the README (e.g. "unknown-protocol"). */
  readonly code: string;
  readonly message: string;
  /** How to fix it; the exact command where one exists. */
  readonly hint?: string;
  readonly span?: Span;
  /** A second place involved (e.g. the earlier rule of a conflict). */
  readonly related?: Span;
}

export function error(code: string, span: Span | undefined, message: string, hint?: string, related?: Span): Diagnostic {
  return { severity: "error", code, message, span, ...(hint ? { hint } : {}), ...(related ? { related } : {}) };
}

export function warning(code: string, span: Span | undefined, message: string, hint?: string): Diagnostic {
  return { severity: "warning", code, message, span, ...(hint ? { hint } : {}) };
}

/**
 * Text from a rule file inside a message: quoted, control characters escaped
 * and long words cut, so a hostile line can neither forge log lines (or
 * terminal escapes) nor make one line megabytes long.
 */
export function shown(text: string, max = 80): string {
  // JSON escapes C0 controls, quotes and lone surrogates; DEL, C1 controls,
  // line separators and bidi overrides (which reorder what an admin sees) too.
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text).replace(
    /[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}

/** `file:line:col: error: message [code]` then indented hint and related place. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.span ? `${formatSpan(d.span)}: ` : "";
  const lines = [`${where}${d.severity}: ${d.message} [${d.code}]`];
  if (d.related) lines.push(`  ${formatSpan(d.related)}: the other rule is here`);
  if (d.hint) lines.push(`  hint: ${d.hint}`);
  return lines.join("\n");
}
