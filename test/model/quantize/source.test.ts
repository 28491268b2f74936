import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findQuantizeParent, quantizeReportPrefix, readQuantizeSource } from "../../../src/model/quantize/source.ts";

describe("the parent of a quantized file, from its quantize report", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "perceptd-qsource-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const writeReport = (modelPath: string, model: Record<string, unknown>): void => {
    writeFileSync(`${quantizeReportPrefix(modelPath)}.json`, JSON.stringify({ command: "perceptd quantize ...", model }));
  };
  const candidate = (name: string, sha256: string) => ({ name, path: join(dir, `${name}.onnx`), sha256 });

  it("writes its report beside the output, as quantize does without --report", () => {
    expect(quantizeReportPrefix("/x/p40-int8.onnx")).toBe("/x/p40-int8.report");
    expect(quantizeReportPrefix("/x/p40-int8.ONNX")).toBe("/x/p40-int8.report");
  });

  it("finds the parent by the source's sha256 even when the report's path no longer leads to it", () => {
    const int8 = join(dir, "p40-int8.onnx");
    // the source was named by a path relative to another folder, and the file has moved since
    writeReport(int8, { source: "../elsewhere/p40-u8.onnx", sourceSha256: "bbb", output: "p40-int8.onnx" });
    const a = candidate("nanodet-u8", "aaa");
    const b = candidate("moved-p40-u8", "bbb");
    expect(findQuantizeParent(int8, [a, b, candidate("p40-int8", "ccc")])).toBe(b);
  });

  it("finds nothing when the report's sha256 matches no candidate, rather than guessing by name", () => {
    const int8 = join(dir, "q.onnx");
    writeReport(int8, { source: "nanodet-u8", sourceSha256: "fff" });
    expect(findQuantizeParent(int8, [candidate("nanodet-u8", "aaa")])).toBeUndefined();
  });

  it("falls back on the manifest name or the path for reports that have no sha256", () => {
    const byName = join(dir, "dense-int8.onnx");
    writeReport(byName, { source: "nanodet-u8" });
    const dense = candidate("nanodet-u8", "aaa");
    const p40 = candidate("p40-u8", "bbb");
    expect(findQuantizeParent(byName, [p40, dense])).toBe(dense);

    const byPath = join(dir, "p40-int8.onnx");
    writeReport(byPath, { source: relative(process.cwd(), p40.path) });
    expect(findQuantizeParent(byPath, [dense, p40])).toBe(p40);
  });

  it("never names the quantized file as its own parent", () => {
    const int8 = join(dir, "self.onnx");
    writeReport(int8, { source: "self", sourceSha256: "sss" });
    expect(findQuantizeParent(int8, [{ name: "self", path: int8, sha256: "sss" }])).toBeUndefined();
  });

  it("returns undefined without a report, and names the report that cannot be read", () => {
    expect(readQuantizeSource(join(dir, "none.onnx"))).toBeUndefined();
    const broken = join(dir, "broken.onnx");
    writeFileSync(`${quantizeReportPrefix(broken)}.json`, "{ not json");
    expect(() => readQuantizeSource(broken)).toThrow(/broken\.report\.json: not a readable quantize report/);
  });
});
