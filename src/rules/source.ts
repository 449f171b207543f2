// A rule file as read, with offset -> line:column conversion. Positions are kept
// as offsets while parsing and turned into line:col only when reported.

export interface SourceFile {
  /** The path as shown to the admin (absolute, as found in rules.d). */
  readonly path: string;
  readonly text: string;
}

export interface Span {
  readonly file: SourceFile;
  readonly start: number;
  readonly end: number;
}

export interface Position {
  readonly line: number;
  readonly column: number;
}

// Line starts per file, computed once: every rule's comment and every
// diagnostic asks for a position, and a scan from the top each time made a
// large rules file quadratic (seconds per hook call, found by fuzzing).
const lineStarts = new WeakMap<SourceFile, { text: string; starts: number[] }>();

function startsOf(file: SourceFile): number[] {
  const known = lineStarts.get(file);
  if (known && known.text === file.text) return known.starts;
  const starts = [0];
  for (let i = file.text.indexOf("\n"); i >= 0; i = file.text.indexOf("\n", i + 1)) starts.push(i + 1);
  lineStarts.set(file, { text: file.text, starts });
  return starts;
}

export function positionOf(file: SourceFile, offset: number): Position {
  const starts = startsOf(file);
  const at = Math.max(0, Math.min(offset, file.text.length));
  // The last line start <= at (binary search).
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] as number) <= at) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - (starts[lo] as number) + 1 };
}

/** "path:line:col", the prefix every diagnostic and status line uses. */
export function formatSpan(span: Span): string {
  const { line, column } = positionOf(span.file, span.start);
  return `${span.file.path}:${line}:${column}`;
}

/** "path:line", for places where a column adds nothing (status, comments). */
export function formatLine(span: Span): string {
  return `${span.file.path}:${positionOf(span.file, span.start).line}`;
}
