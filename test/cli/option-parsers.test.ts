// The shared numeric option parsers: what each accepts, and the message for what it refuses.
import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { nonNegativeInt, nonNegativeNumber, positiveInt, positiveNumber } from "../../src/cli/option-parsers.ts";

describe("option parsers", () => {
  it("accept what their names say", () => {
    expect(positiveInt("3")).toBe(3);
    expect(nonNegativeInt("0")).toBe(0);
    expect(positiveNumber("0.5")).toBe(0.5);
    expect(nonNegativeNumber("0")).toBe(0);
    expect(nonNegativeNumber("20")).toBe(20);
  });

  it("refuse empty values, fractions for integers, signs out of range and non-numbers, quoting the value", () => {
    const cases: [(v: string) => number, string, RegExp][] = [
      [positiveInt, "0", /expected an integer >= 1, got "0"/],
      [positiveInt, "1.5", /expected an integer >= 1, got "1.5"/],
      [positiveInt, "1e2", /expected an integer >= 1, got "1e2"/],
      [nonNegativeInt, "", /expected an integer >= 0, got ""/],
      [nonNegativeInt, "-1", /expected an integer >= 0, got "-1"/],
      [positiveNumber, "0", /expected a number > 0, got "0"/],
      [positiveNumber, " ", /expected a number > 0, got " "/],
      [nonNegativeNumber, "", /expected a number >= 0, got ""/],
      [nonNegativeNumber, "-0.1", /expected a number >= 0, got "-0.1"/],
      [nonNegativeNumber, "x", /expected a number >= 0, got "x"/],
    ];
    for (const [parse, value, message] of cases) {
      expect(() => parse(value), `${parse.name}(${JSON.stringify(value)})`).toThrow(InvalidArgumentError);
      expect(() => parse(value), `${parse.name}(${JSON.stringify(value)})`).toThrow(message);
    }
  });
});
