import { describe, expect, it } from "vitest";
import { boxToModel, boxToSource, computeLetterbox, toSourceDetections } from "../../src/core/letterbox.ts";
import type { Box, Detection } from "../../src/core/types.ts";

function expectBoxClose(actual: Box, expected: Box, what: string): void {
  for (let i = 0; i < 4; i++) {
    expect(actual[i], `${what}: coordinate ${i} of [${actual.join(", ")}] vs [${expected.join(", ")}]`).toBeCloseTo(
      expected[i],
      9,
    );
  }
}

describe("computeLetterbox", () => {
  it("stretch scales each axis independently and never pads", () => {
    const t = computeLetterbox(640, 480, 416, 416, "stretch");
    expect(t).toEqual({
      srcWidth: 640,
      srcHeight: 480,
      dstWidth: 416,
      dstHeight: 416,
      scaleX: 416 / 640,
      scaleY: 416 / 480,
      padX: 0,
      padY: 0,
    });
  });

  it("letterbox of a landscape frame uses the width scale and pads top/bottom equally", () => {
    const t = computeLetterbox(1280, 720, 416, 416, "letterbox");
    expect(t.scaleX).toBe(0.325);
    expect(t.scaleY, "letterbox must use a single scale").toBe(t.scaleX);
    expect(t.padX).toBe(0);
    // 720 * 0.325 = 234 rows of image, 182 rows of pad split 91 / 91.
    expect(t.padY).toBe(91);
  });

  it("letterbox of a portrait frame pads left/right", () => {
    const t = computeLetterbox(720, 1280, 416, 416, "letterbox");
    expect(t.padX).toBe(91);
    expect(t.padY).toBe(0);
  });

  it("letterbox floors an odd pad so the extra pixel goes right/bottom", () => {
    const t = computeLetterbox(10, 5, 10, 10, "letterbox");
    expect(t.scaleX).toBe(1);
    expect(t.padY, "5 rows of pad split as 2 above, 3 below").toBe(2);
  });

  it("letterbox of a frame with the model's aspect ratio needs no pad", () => {
    const t = computeLetterbox(1024, 1024, 512, 512, "letterbox");
    expect([t.scaleX, t.padX, t.padY]).toEqual([0.5, 0, 0]);
  });

  it.each([
    ["srcW", [0, 480, 416, 416]],
    ["srcH", [640, -1, 416, 416]],
    ["dstW", [640, 480, 416.5, 416]],
    ["dstH", [640, 480, 416, Number.NaN]],
  ] as const)("throws a RangeError naming %s when it is not a positive integer", (name, args) => {
    expect(() => computeLetterbox(args[0], args[1], args[2], args[3], "letterbox")).toThrow(RangeError);
    expect(() => computeLetterbox(args[0], args[1], args[2], args[3], "stretch")).toThrow(name);
  });
});

describe("boxToModel / boxToSource", () => {
  const cases = [
    ["letterbox landscape", computeLetterbox(1280, 720, 416, 416, "letterbox")],
    ["letterbox portrait", computeLetterbox(720, 1280, 416, 416, "letterbox")],
    ["stretch", computeLetterbox(640, 480, 416, 416, "stretch")],
  ] as const;

  it.each(cases)("%s: source -> model -> source returns the original box", (_name, t) => {
    const box: Box = [12.5, 30, 400.25, t.srcHeight - 1];
    expectBoxClose(boxToSource(boxToModel(box, t), t), box, "round trip");
  });

  it("forward map applies scale then pad", () => {
    const t = computeLetterbox(1280, 720, 416, 416, "letterbox");
    expect(boxToModel([0, 0, 1280, 720], t)).toEqual([0, 91, 416, 91 + 234]);
  });

  it("boxes reaching into the letterbox pad are clamped to the source frame", () => {
    const t = computeLetterbox(1280, 720, 416, 416, "letterbox");
    // Whole model input, pad included, covers exactly the source frame.
    expectBoxClose(boxToSource([0, 0, 416, 416], t), [0, 0, 1280, 720], "full model input");
    expectBoxClose(boxToSource([-20, 10, 500, 80], t), [0, 0, 1280, 0], "box entirely in top pad");
  });

  it("toSourceDetections maps every box and leaves its input untouched", () => {
    const t = computeLetterbox(1280, 720, 416, 416, "letterbox");
    const dets: Detection[] = [{ classId: 0, label: "person", score: 0.9, box: [0, 91, 208, 208] }];
    const out = toSourceDetections(dets, t);
    expectBoxClose(out[0].box, [0, 0, 640, 360], "mapped box");
    expect(out[0]).toMatchObject({ classId: 0, label: "person", score: 0.9 });
    expect(dets[0].box, "input detection must not be mutated").toEqual([0, 91, 208, 208]);
  });
});
