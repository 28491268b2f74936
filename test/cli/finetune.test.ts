// `perceptd finetune` in a child process: the errors a user sees for bad recipe flags, before
// any data is read or PyTorch is started (so these run without python3-torch). Training itself
// is tested on a tiny detector in test/model/finetune/distill.test.ts.
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { perceptd } from "./run-cli.ts";

const OUT = "/tmp/perceptd-finetune-cli-never-written.onnx";

describe("perceptd finetune, bad flags", () => {
  it("names the flag and the value for --keep-by, --confidence-weight, --feature-weight, --warmup and --augment, and writes nothing", async () => {
    const base = ["finetune", "student.onnx", "--teacher", "nanodet-u8", "--out", OUT, "--calibration", "corpus:calibration"];
    const cases: [string[], RegExp, number][] = [
      [["--keep-by", "accuracy"], /option '--keep-by <loss\|recall>' argument 'accuracy' is invalid\. expected loss or recall/, 2],
      [["--confidence-weight", "-1"], /option '--confidence-weight <x>' argument '-1' is invalid\. expected a number >= 0/, 2],
      [["--feature-weight", "x"], /option '--feature-weight <x>' argument 'x' is invalid\. expected a number >= 0/, 2],
      [["--warmup", "2.5"], /option '--warmup <steps>' argument '2.5' is invalid\. expected an integer >= 0/, 2],
      [["--augment", "scale=0.5"], /augment scale=0.5: unknown setting "scale"; known: flip, minScale, zoomOut/, 1],
      [["--augment", "minScale=2"], /augment minScale=2: minScale takes a number from 0.05 to 1/, 1],
    ];
    for (const [flags, message, code] of cases) {
      const r = await perceptd(...base, ...flags);
      expect(r.stderr, `perceptd finetune ${flags.join(" ")}: stderr`).toMatch(message);
      expect(r.code, `perceptd finetune ${flags.join(" ")}: exit code`).toBe(code);
    }
    expect(existsSync(OUT), "nothing written").toBe(false);
  });
});
