import { describe, expect, it } from "vitest";
import { MISSING, formatFixed, formatMs, formatRatio, formatSignedMs, markdownTable } from "../../../src/cli/bench/table.ts";

describe("markdownTable", () => {
  it("pads every column to its widest cell and right-aligns numeric columns", () => {
    const out = markdownTable(
      [{ header: "model" }, { header: "p50 ms", align: "right" }],
      [
        ["nanodet", "12.3"],
        ["centernet-u8", "4.56"],
      ],
    );
    expect(out.split("\n")).toEqual([
      "| model        | p50 ms |",
      "| ------------ | -----: |",
      "| nanodet      |   12.3 |",
      "| centernet-u8 |   4.56 |",
    ]);
  });

  it("keeps separators at least three dashes and counts multi-byte characters as one column", () => {
    const out = markdownTable([{ header: "x", align: "right" }, { header: "y" }], [["2.0×", MISSING]]);
    expect(out.split("\n")).toEqual(["|    x | y   |", "| ---: | --- |", "| 2.0× | —   |"]);
    // Headers follow their column's alignment; every line has the same visible width.
    const widths = out.split("\n").map((l) => [...l].length);
    expect(new Set(widths).size).toBe(1);
  });

  it("escapes pipes and newlines instead of breaking the row", () => {
    const out = markdownTable([{ header: "cmd" }], [["a | b\nc"]]);
    expect(out.split("\n")[2]).toBe("| a \\| b c |");
  });

  it("rejects a row whose cell count does not match the columns, naming the row", () => {
    expect(() => markdownTable([{ header: "a" }, { header: "b" }], [["1", "2"], ["3"]])).toThrow(/row 1 has 1 cells.*2 columns/);
    expect(() => markdownTable([], [])).toThrow(/no columns/);
  });

  it("prints a header-only table when there are no rows", () => {
    expect(markdownTable([{ header: "model" }], []).split("\n")).toEqual(["| model |", "| ----- |"]);
  });
});

describe("number formatting", () => {
  it("formatFixed rounds, drops the sign of a negative zero and marks missing values", () => {
    expect(formatFixed(1.005, 1)).toBe("1.0");
    expect(formatFixed(1234.567, 2)).toBe("1234.57");
    expect(formatFixed(-0.0001, 2)).toBe("0.00");
    expect(formatFixed(-1.5, 1)).toBe("-1.5");
    expect(formatFixed(null, 2)).toBe(MISSING);
    expect(formatFixed(Number.NaN, 2)).toBe(MISSING);
    expect(formatFixed(Number.POSITIVE_INFINITY, 2)).toBe(MISSING);
  });

  it("formatMs keeps about three significant digits", () => {
    expect(formatMs(0.12345)).toBe("0.123");
    expect(formatMs(4.5678)).toBe("4.57");
    expect(formatMs(45.678)).toBe("45.7");
    expect(formatMs(456.78)).toBe("457");
    expect(formatMs(1234.5)).toBe("1235");
    expect(formatMs(undefined)).toBe(MISSING);
  });

  it("formatSignedMs marks a difference's sign, + for zero too", () => {
    expect(formatSignedMs(2.1749)).toBe("+2.17");
    expect(formatSignedMs(-0.2718)).toBe("-0.272");
    expect(formatSignedMs(0)).toBe("+0.000");
    expect(formatSignedMs(-12.34)).toBe("-12.3");
  });

  it("formatRatio appends the times sign, except to a missing value", () => {
    expect(formatRatio(2.3149)).toBe("2.31×");
    expect(formatRatio(1)).toBe("1.00×");
    expect(formatRatio(0.5, 1)).toBe("0.5×");
    expect(formatRatio(null)).toBe(MISSING);
  });
});
