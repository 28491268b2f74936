import { existsSync, readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TfjsReference, initTfjsBackend, stripTensorSuffix } from "../../../src/model/tfjs/reference.ts";
import type { ReferenceOutputs } from "../../../src/model/tfjs/reference.ts";

const VENDOR = ".cache/vendor/human-models-3.0.4";
const NANODET = `${VENDOR}/nanodet.json`;
const CENTERNET = `${VENDOR}/centernet.json`;
const haveModels = existsSync(NANODET) && existsSync(CENTERNET);

/** Output dims by name (":0" stripped) as the model.json signature declares them. */
function signatureOutputs(file: string): Record<string, number[]> {
  const json = JSON.parse(readFileSync(file, "utf8")) as {
    signature: { outputs: Record<string, { tensorShape: { dim: { size: string }[] } }> };
  };
  return Object.fromEntries(Object.entries(json.signature.outputs).map(([name, o]) =>
    [stripTensorSuffix(name), o.tensorShape.dim.map((d) => Number(d.size))]));
}

/**
 * A smooth, channel-dependent pattern in [0, 1] (sines across x and y), so the convolutions
 * see structure rather than a constant; defined per (c, y, x) so both layouts agree.
 */
function pattern(c: number, y: number, x: number, h: number, w: number): number {
  return 0.5 + 0.25 * Math.sin(2 * Math.PI * (x / w) * (c + 1)) + 0.25 * Math.cos(2 * Math.PI * (y / h) * (3 - c));
}

function nchwInput(h: number, w: number): Float32Array {
  const out = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[(c * h + y) * w + x] = pattern(c, y, x, h, w);
  }
  return out;
}

function nhwcInput(h: number, w: number, scale: number): Float32Array {
  const out = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
    out[(y * w + x) * 3 + c] = scale * pattern(c, y, x, h, w);
  }
  return out;
}

/** Math.min/max(...a) overflow the argument limit on outputs this large. */
function range(a: Float32Array): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of a) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

function expectAllFinite(outputs: ReferenceOutputs): void {
  for (const [name, t] of Object.entries(outputs)) {
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    expect(bad, `${name}: first non-finite value at ${bad}`).toBe(-1);
  }
}

function expectSameOutputs(a: ReferenceOutputs, b: ReferenceOutputs): void {
  expect(Object.keys(b)).toEqual(Object.keys(a));
  for (const name of Object.keys(a)) {
    expect(b[name].dims).toEqual(a[name].dims);
    // Single-threaded wasm is bit-for-bit repeatable; a tolerance would hide state leaking between runs.
    expect(Buffer.from(b[name].data.buffer).equals(Buffer.from(a[name].data.buffer)), name).toBe(true);
  }
}

/** Tensor count stays flat across runs: every per-run tensor is disposed. */
async function expectNoTensorLeak(ref: TfjsReference, input: Float32Array): Promise<void> {
  await ref.run(input); // the first run may allocate lazily; count from after it
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) await ref.run(input);
  expect(tf.memory().numTensors).toBe(before);
}

describe.skipIf(!haveModels)("TfjsReference (wasm backend)", () => {
  let nanodet: TfjsReference;
  let centernet: TfjsReference;

  beforeAll(async () => {
    nanodet = await TfjsReference.load(NANODET);
    centernet = await TfjsReference.load(CENTERNET);
  });

  afterAll(() => {
    nanodet?.dispose();
    centernet?.dispose();
  });

  it("runs on the wasm backend, SIMD, one thread", async () => {
    expect(tf.getBackend()).toBe("wasm");
    expect(await initTfjsBackend("wasm")).toEqual({ backend: "wasm", simd: true, threads: 1 });
    await expect(initTfjsBackend("cpu")).rejects.toThrow(/"wasm" is already initialised.*"cpu"/);
  });

  describe("NanoDet", () => {
    const input = nchwInput(416, 416);

    it("exposes the signature's input and outputs", () => {
      expect(nanodet.inputName).toBe("input_1");
      expect(nanodet.inputShape).toEqual([1, 3, 416, 416]);
      expect(nanodet.outputNames).toEqual(["Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4", "Identity_5"]);
      // SparseToDense does not need the async executor.
      expect(nanodet.usesExecuteAsync).toBe(false);
    });

    it("produces finite outputs with the signature's dims and sigmoid scores", async () => {
      const out = await nanodet.run(input);
      const sig = signatureOutputs(NANODET);
      expect(Object.keys(out)).toEqual(nanodet.outputNames);
      for (const name of nanodet.outputNames) {
        expect(out[name].dims, name).toEqual(sig[name]);
        expect(out[name].data.length).toBe(sig[name].reduce((a, b) => a * b, 1));
        // The TF tensor spelling reaches the same tensor.
        expect(out[`${name}:0`]).toBe(out[name]);
      }
      expectAllFinite(out);
      for (const name of ["Identity", "Identity_1", "Identity_2"]) {
        expect(out[name].dims[2]).toBe(80);
        const { min, max } = range(out[name].data);
        expect(min, name).toBeGreaterThanOrEqual(0);
        expect(max, name).toBeLessThanOrEqual(1);
      }
      for (const name of ["Identity_3", "Identity_4", "Identity_5"]) expect(out[name].dims[2]).toBe(44);
      // Not a degenerate graph: the pattern moves the box logits around.
      const { min, max } = range(out.Identity_3.data);
      expect(max - min).toBeGreaterThan(1);
    });

    it("is deterministic and does not leak tensors", async () => {
      expectSameOutputs(await nanodet.run(input), await nanodet.run(input));
      await expectNoTensorLeak(nanodet, input);
    });

    it("rejects an input of the wrong size, naming the model", async () => {
      await expect(nanodet.run(new Float32Array(10))).rejects.toThrow(/nanodet\.json: input input_1 needs 519168 values/);
    });
  });

  describe("CenterNet", () => {
    const input = nhwcInput(512, 512, 255);

    it("exposes the signature's input and outputs", () => {
      expect(centernet.inputName).toBe("tower_0/images");
      expect(centernet.inputShape).toEqual([1, 512, 512, 3]);
      expect(centernet.outputNames).toEqual(["tower_0/detections", "tower_0/keypoints", "tower_0/wh"]);
      // TopKV2 does not need the async executor either.
      expect(centernet.usesExecuteAsync).toBe(false);
    });

    it("produces finite outputs with the signature's dims and sane detections", async () => {
      const out = await centernet.run(input);
      const sig = signatureOutputs(CENTERNET);
      expect(Object.keys(out)).toEqual(centernet.outputNames);
      for (const name of centernet.outputNames) expect(out[name].dims, name).toEqual(sig[name]);
      expect(out["tower_0/keypoints"].dims).toEqual([1, 128, 128, 80]);
      expect(out["tower_0/wh"].dims).toEqual([1, 128, 128, 4]);
      expectAllFinite(out);

      // Rows are [x1, y1, x2, y2, score, class] in input pixels, best score first.
      const det = out["tower_0/detections"];
      expect(det.dims).toEqual([1, 100, 6]);
      let prevScore = Infinity;
      for (let i = 0; i < 100; i++) {
        const [x1, y1, x2, y2, score, cls] = det.data.subarray(i * 6, i * 6 + 6);
        expect(x1, `row ${i}`).toBeLessThanOrEqual(x2);
        expect(y1, `row ${i}`).toBeLessThanOrEqual(y2);
        expect(score).toBeGreaterThanOrEqual(0);
        expect(score).toBeLessThanOrEqual(1);
        expect(score).toBeLessThanOrEqual(prevScore);
        prevScore = score;
        expect(Number.isInteger(cls) && cls >= 0 && cls <= 79, `row ${i} class ${cls}`).toBe(true);
      }
    });

    it("is deterministic and does not leak tensors", async () => {
      expectSameOutputs(await centernet.run(input), await centernet.run(input));
      await expectNoTensorLeak(centernet, input);
    });
  });

  it("refuses more than one wasm thread, which Node cannot give", async () => {
    await expect(TfjsReference.load(NANODET, { threads: 2 })).rejects.toThrow(/threads=2 is not possible/);
  });

  it("names the file when model.json is missing", async () => {
    await expect(TfjsReference.load(`${VENDOR}/nope.json`)).rejects.toThrow(/nope\.json: cannot read TF\.js model\.json/);
  });
});
