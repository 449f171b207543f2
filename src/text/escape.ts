// The one escaping every face applies to the text it prints or logs
// (terminal, stderr, journal, syslog). Guests choose some of what we print —
// a DHCP hostname in dnsmasq's lease status file above all — and names we
// echo come from files and arguments: none of it may drive the reader's
// terminal (ESC/CSI, C1's single-byte CSI U+009B), forge a log record (a
// newline, a carriage return) or make a line read other than it is (bidi
// overrides and isolates, invisible characters).
//
// Each such character becomes `\uXXXX`, JSON's own spelling, for two reasons:
// it is plain ASCII whatever the terminal or locale, and text that is already
// JSON (`--json`, which JSON.stringify leaves with C1, bidi and U+2028/9 raw
// inside its strings) stays valid JSON that parses back to the exact string,
// so `--json` goes through the same sink (docs/json.md). Nothing else is
// touched: escaping twice changes nothing (the output has no character it
// escapes), and a backslash stays a backslash, so the escaped form is for
// reading, not for undoing: a name spelled `\u001b` prints as the same text
// as one holding ESC. JSON is the exact form.
//
// Pure: no I/O, no state.

/**
 * Escaped in every face: C0 but newline and tab (those two only in log
 * records), DEL, C1; the Arabic letter mark, the zero-width characters and
 * the left-to-right / right-to-left marks (U+200B-200F); the line and
 * paragraph separators (U+2028/9, line ends to JavaScript and some
 * terminals); the bidi embeddings and overrides (U+202A-202E); the word
 * joiner, invisible operators and bidi isolates (U+2060-2069); the byte
 * order mark (U+FEFF); the interlinear annotation marks (U+FFF9-FFFB).
 */
const ALWAYS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;
/** The same in one log record, where a newline or tab would start or shape another record. */
const IN_RECORD = /[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;

const spell = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * Text for a terminal or a stream read as lines (stdout, stderr): every
 * character above escaped, newlines and tabs kept (our own layout).
 */
export function escapeText(text: string): string {
  return text.replace(ALWAYS, spell);
}

/**
 * One log record (a journal or syslog line), or a value read from outside
 * that must stay on its line wherever it is printed (a guest's hostname): the
 * same, and newlines and tabs escaped too.
 */
export function escapeLine(text: string): string {
  return text.replace(IN_RECORD, spell);
}
