// Aligned columns in the manner of `systemctl list-units` and `ip -br`: a
// header, two spaces between columns, numbers right-aligned, the last column
// free-running. Colour only when asked for (stdout is a TTY, NO_COLOR unset).
// Cells are escaped here (text/escape.ts), before they are measured and
// painted: the colours are then the only control sequences in the table.
import { escapeLine } from "../text/escape.js";

export interface Column {
  readonly title: string;
  readonly align?: "left" | "right";
}

export type Paint = (text: string, colour: "green" | "yellow" | "red" | "bold") => string;

const CODES = { green: 32, yellow: 33, red: 31, bold: 1 } as const;
export const paint = (on: boolean): Paint => (text, colour) => (on ? `\x1b[${CODES[colour]}m${text}\x1b[0m` : text);

export const wantColour = (stream: { isTTY?: boolean }) => stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== "dumb";

/** Rows of cells; `colour` may decorate a cell after it is padded (so alignment counts visible text only). */
export function renderTable(columns: readonly Column[], cells: readonly (readonly string[])[], colour?: (row: number, col: number, padded: string) => string): string {
  const rows = cells.map((r) => r.map(escapeLine));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[], row: number) =>
    cells
      .map((cell, i) => {
        const last = i === columns.length - 1;
        const w = widths[i] as number;
        const padded = last ? cell : columns[i]?.align === "right" ? cell.padStart(w) : cell.padEnd(w);
        return row >= 0 && colour ? colour(row, i, padded) : padded;
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.title), -1), ...rows.map((r, i) => line(r, i))].join("\n") + "\n";
}

/** 1234 -> "1234", 12345 -> "12K", 1234567 -> "1.2M" (powers of 1000, as iptables -L prints). */
export function humanCount(n: number | null | undefined): string {
  if (n === null || n === undefined) return "-";
  if (n < 10000) return String(n);
  for (const [unit, size] of [["T", 1e12], ["G", 1e9], ["M", 1e6], ["K", 1e3]] as const) {
    if (n >= size) {
      const v = n / size;
      return `${v < 10 ? v.toFixed(1) : Math.round(v)}${unit}`;
    }
  }
  return String(n);
}
