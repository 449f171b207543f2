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

export function positionOf(file: SourceFile, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < file.text.length; i++) {
    if (file.text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
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
