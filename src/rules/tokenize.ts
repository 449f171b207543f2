// Splits one statement line into words. A word may contain double-quoted parts
// ("my vm"@default:22); every character remembers whether it was quoted and its
// offset in the file, so later stages split only on unquoted separators and
// still point at the exact column.
import type { SourceFile, Span } from "./source.js";

export interface Word {
  /** The word's value with quotes removed and escapes resolved. */
  readonly text: string;
  /** quoted[i]: text[i] came from inside double quotes. */
  readonly quoted: readonly boolean[];
  /** offsets[i]: where text[i] stands in the file. */
  readonly offsets: readonly number[];
  readonly span: Span;
}

export interface Line {
  readonly words: Word[];
  readonly span: Span;
  /** Set when the line cannot be split (an unterminated quote). */
  readonly problem?: { readonly offset: number; readonly message: string };
}

const isSpace = (c: string) => c === " " || c === "\t" || c === "\r";

export function splitLines(file: SourceFile): Line[] {
  const lines: Line[] = [];
  let start = 0;
  const text = file.text;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = tokenizeLine(file, start, end);
    if (line.words.length > 0 || line.problem) lines.push(line);
    start = end + 1;
  }
  return lines;
}

function tokenizeLine(file: SourceFile, start: number, end: number): Line {
  const text = file.text;
  const words: Word[] = [];
  let i = start;
  while (i < end) {
    const c = text[i] as string;
    if (isSpace(c)) { i++; continue; }
    if (c === "#") break;
    let value = "";
    const quoted: boolean[] = [];
    const offsets: number[] = [];
    const wordStart = i;
    while (i < end && !isSpace(text[i] as string) && text[i] !== "#") {
      if (text[i] === '"') {
        const open = i;
        i++;
        while (i < end && text[i] !== '"') {
          if (text[i] === "\\" && i + 1 < end) i++;
          value += text[i];
          quoted.push(true);
          offsets.push(i);
          i++;
        }
        if (i >= end) {
          return { words, span: { file, start, end }, problem: { offset: open, message: "unterminated quote" } };
        }
        i++; // closing quote
        continue;
      }
      value += text[i];
      quoted.push(false);
      offsets.push(i);
      i++;
    }
    words.push({ text: value, quoted, offsets, span: { file, start: wordStart, end: i } });
  }
  return { words, span: { file, start, end } };
}

/** A part of a word, keeping its quoting and offsets. */
export function slice(word: Word, from: number, to = word.text.length): Word {
  const offsets = word.offsets.slice(from, to);
  const startOffset = offsets[0] ?? word.span.end;
  const endOffset = offsets.length > 0 ? (offsets[offsets.length - 1] as number) + 1 : startOffset;
  return {
    text: word.text.slice(from, to),
    quoted: word.quoted.slice(from, to),
    offsets,
    span: { file: word.span.file, start: startOffset, end: endOffset },
  };
}

/** Index of the last unquoted `ch` in the word, or -1. */
export function lastUnquoted(word: Word, ch: string): number {
  for (let i = word.text.length - 1; i >= 0; i--) if (word.text[i] === ch && !word.quoted[i]) return i;
  return -1;
}

/** Index of the first unquoted `ch` in the word, or -1. */
export function firstUnquoted(word: Word, ch: string): number {
  for (let i = 0; i < word.text.length; i++) if (word.text[i] === ch && !word.quoted[i]) return i;
  return -1;
}

export function splitUnquoted(word: Word, ch: string): Word[] {
  const parts: Word[] = [];
  let from = 0;
  for (let i = 0; i <= word.text.length; i++) {
    if (i === word.text.length || (word.text[i] === ch && !word.quoted[i])) {
      parts.push(slice(word, from, i));
      from = i + 1;
    }
  }
  return parts;
}

export const anyQuoted = (word: Word) => word.quoted.some(Boolean);
