// Markdown tables for benchmark reports. The output is meant to be pasted into issues and
// PRs as is, so the raw text is padded into aligned columns too: it reads in a terminal
// and renders on GitHub, and a diff between two runs lines up cell by cell.

export type Align = "left" | "right";

export interface Column {
  header: string;
  /** Numbers read best right-aligned, so their decimal points line up. Default "left". */
  align?: Align;
}

/** What an absent or meaningless number prints as, so a missing value is not mistaken for 0. */
export const MISSING = "—";

/**
 * `|` would end the cell and a newline would end the row; both are legal in values we print
 * (command lines, error text), so they are escaped rather than refused.
 */
function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/** Length as a terminal shows it: counts code points, so "—" and "×" take one column. */
function displayWidth(text: string): number {
  return [...text].length;
}

function pad(text: string, width: number, align: Align): string {
  const fill = " ".repeat(Math.max(0, width - displayWidth(text)));
  return align === "right" ? fill + text : text + fill;
}

/**
 * A GitHub-flavoured Markdown table, one line per row, no trailing newline. Every row must
 * have one cell per column: a short row would shift the values under the wrong headers.
 */
export function markdownTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  if (columns.length === 0) throw new RangeError("markdownTable: no columns");
  rows.forEach((row, i) => {
    if (row.length !== columns.length) {
      throw new RangeError(`markdownTable: row ${i} has ${row.length} cells, the table has ${columns.length} columns`);
    }
  });
  const header = columns.map((c) => escapeCell(c.header));
  const body = rows.map((row) => row.map(escapeCell));
  const aligns = columns.map((c) => c.align ?? "left");
  // Three dashes is the shortest separator every Markdown renderer accepts.
  const widths = columns.map((_, i) => Math.max(3, displayWidth(header[i]), ...body.map((r) => displayWidth(r[i]))));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => pad(c, widths[i], aligns[i])).join(" | ")} |`;
  const separator = `| ${widths.map((w, i) => (aligns[i] === "right" ? "-".repeat(w - 1) + ":" : "-".repeat(w))).join(" | ")} |`;
  return [line(header), separator, ...body.map(line)].join("\n");
}

/**
 * Fixed decimals with thousands kept unseparated (the tables are also parsed back by
 * scripts). Null, NaN and infinities print as MISSING.
 */
export function formatFixed(value: number | null | undefined, digits: number): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return MISSING;
  const text = value.toFixed(digits);
  // toFixed keeps the sign of a negative value that rounds to zero ("-0.00").
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

/**
 * Milliseconds with about three significant digits: sub-millisecond timings keep their
 * detail and long ones do not print noise digits a timer cannot vouch for.
 */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return MISSING;
  const abs = Math.abs(ms);
  return formatFixed(ms, abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3);
}

/** A difference in ms with its sign, "+2.17" or "-0.27", as formatMs otherwise. */
export function formatSignedMs(ms: number): string {
  return `${ms >= 0 ? "+" : ""}${formatMs(ms)}`;
}

/** A ratio such as a speedup, "2.31×". */
export function formatRatio(ratio: number | null | undefined, digits = 2): string {
  const text = formatFixed(ratio, digits);
  return text === MISSING ? text : `${text}×`;
}
