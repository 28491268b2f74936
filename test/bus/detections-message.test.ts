import { describe, expect, it } from "vitest";
import { decodeDetections, encodeDetections, type DetectionsMessage } from "../../src/bus/detections-message.ts";

const message: DetectionsMessage = {
  camera: "front-left",
  seq: 41,
  // beyond 2^53: must survive as a decimal string, not a double
  tIngestNs: 9_007_199_254_740_993_123n,
  tPublishNs: 9_007_199_254_757_000_456n,
  wallTimeMs: 1_760_000_123_456,
  model: "nanodet-u8",
  width: 1280,
  height: 720,
  detections: [
    { classId: 0, label: "person", score: 0.875, box: [10.5, 20.25, 110.75, 300] },
    { classId: 2, label: "car", score: 0.4, box: [600, 300, 900.125, 500] },
  ],
};

function wire(): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(encodeDetections(message))) as Record<string, unknown>;
}

function withField(path: (string | number)[], value: unknown): string {
  const w: Record<string, unknown> = wire();
  let o: Record<string | number, unknown> = w;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (value === undefined) delete o[last];
  else o[last] = value;
  return JSON.stringify(w);
}

describe("detections message", () => {
  it("round-trips, bigints and fractional pixels included", () => {
    expect(decodeDetections(encodeDetections(message))).toEqual(message);
    expect(decodeDetections(Buffer.from(encodeDetections(message)).toString("utf8"))).toEqual(message);
    expect(decodeDetections(encodeDetections({ ...message, detections: [] })).detections).toEqual([]);
  });

  it("puts units in the wire names", () => {
    const w = wire();
    expect(Object.keys(w).sort()).toEqual(
      ["camera", "detections", "frame_height_px", "frame_width_px", "model", "schema_version", "seq", "t_ingest_mono_ns", "t_publish_mono_ns", "wall_time_unix_ms"].sort(),
    );
    expect(w.t_ingest_mono_ns).toBe("9007199254740993123");
    expect(w.wall_time_unix_ms).toBe(1_760_000_123_456);
    expect((w.detections as unknown[])[0]).toEqual({ class_id: 0, label: "person", score: 0.875, box_px: [10.5, 20.25, 110.75, 300] });
  });

  it("ignores fields it does not know (a newer publisher may add some)", () => {
    expect(decodeDetections(withField(["future_field"], { x: 1 }))).toEqual(message);
  });

  it.each([
    ["not JSON", "{camera:", /detections message: not valid JSON/],
    ["not an object", "[1,2]", /expected a JSON object, got an array/],
    ["null", "null", /expected a JSON object, got null/],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /not valid UTF-8/],
  ])("rejects %s", (_what, payload, error) => {
    expect(() => decodeDetections(payload)).toThrow(error);
  });

  it.each([
    [["camera"], undefined, 'field "camera" is missing'],
    [["t_ingest_mono_ns"], undefined, 'field "t_ingest_mono_ns" is missing'],
    [["t_ingest_mono_ns"], 12345, 'field "t_ingest_mono_ns"'],
    [["t_publish_mono_ns"], "-5", 'field "t_publish_mono_ns": must be a non-negative integer as a decimal string'],
    [["seq"], 1.5, 'field "seq"'],
    [["frame_width_px"], 0, 'field "frame_width_px"'],
    [["detections"], undefined, 'field "detections" is missing'],
    [["detections", 1, "box_px"], undefined, 'field "detections[1].box_px" is missing'],
    [["detections", 1, "box_px"], [1, 2, 3], 'field "detections[1].box_px"'],
    [["detections", 0, "box_px"], [50, 0, 10, 10], 'field "detections[0].box_px": must be [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2'],
    [["detections", 0, "score"], 1.5, 'field "detections[0].score"'],
    [["detections", 0, "class_id"], "person", 'field "detections[0].class_id"'],
    [["schema_version"], 2, "unsupported schema_version 2 (this build reads 1)"],
    [["schema_version"], undefined, 'field "schema_version" is missing'],
  ] as [(string | number)[], unknown, string][])("rejects %j = %j, naming the field", (path, value, error) => {
    expect(() => decodeDetections(withField(path, value))).toThrow(error);
  });

  it("refuses to encode non-finite numbers, naming the field (JSON would send null)", () => {
    const bad = { ...message, detections: [{ ...message.detections[0], box: [0, 0, Number.NaN, 1] as [number, number, number, number] }] };
    expect(() => encodeDetections(bad)).toThrow('cannot encode field "detections[0].box[2]" = NaN');
    expect(() => encodeDetections({ ...message, wallTimeMs: Number.POSITIVE_INFINITY })).toThrow('field "wallTimeMs"');
  });
});
