// The bus wire format: round trips of every topic, the CRC exactly as proto/perceptd.proto
// defines it (reproduced here from the text, with a bitwise CRC of our own), and every way a
// frame can be wrong.
import protobuf from "protobufjs";
import type { Type } from "protobufjs";
import { describe, expect, it } from "vitest";
import {
  ALERT_KINDS,
  ALERT_LEVELS,
  BusEncoder,
  CAMERA_HEALTH_STATES,
  FrameError,
  WIRE_HEALTH_STATES,
  toWireHealthState,
  decodeFrame,
  type AlertsBody,
  type BusClock,
  type DetectionsBody,
  type HealthBody,
  type TopicBodies,
} from "../../src/bus/codec.ts";
import { HEALTH_STATES } from "../../src/core/health.ts";
import { SCHEMA_VERSION, TOPIC_TYPES, lookupEnum, lookupMessage } from "../../src/bus/proto.ts";
import { TOPICS, TOPIC_NAMES, type TopicName } from "../../src/bus/topics.ts";

// Every field set to something other than its default, and exact in float32, so a field the
// TypeScript side forgets (or misspells) shows up as a default after the round trip.
const SAMPLES: TopicBodies = {
  detections: {
    model: "nanodet-u8",
    frameWidthPx: 1280,
    frameHeightPx: 720,
    detections: [
      { classId: 2, label: "car", score: 0.875, box: [10.5, 20.25, 110.75, 300], trackId: 7n, rangeM: 12.5, ttcS: 2.25, inCorridor: true },
      { classId: 0, label: "person", score: 0.5, box: [600, 300, 900.125, 500] },
    ],
  } satisfies DetectionsBody,
  health: {
    state: "STATE_DEGRADED",
    reasons: ["camera rear: restarting"],
    cameras: [{ cameraId: "front", state: "STATE_RUNNING", fps: 29.5, restarts: 2, framesIngested: 9_007_199_254_740_993n, framesProcessed: 1000n, lastFrameAgeMs: 12.5 }],
    uptimeS: 3600.25,
    fps: 29.5,
    latencyE2eP50Ms: 35.5,
    latencyE2eP99Ms: 80.25,
    latencyInferenceP50Ms: 20.5,
    framesIngested: 2n ** 63n,
    framesProcessed: 5n,
    framesDropped: 1n,
    model: "nanodet-u8",
    executionProvider: "tensorrt",
  } satisfies HealthBody,
  alerts: {
    alerts: [
      {
        alertId: 77n,
        kind: "KIND_PEDESTRIAN",
        level: "LEVEL_CRITICAL",
        valid: true,
        cameraId: "front",
        trackId: 12n,
        classId: 1,
        label: "person",
        rangeM: 8.5,
        ttcS: 1.25,
        tRaisedMonoNs: 18_446_744_073_709_551_615n,
        tSourceIngestMonoNs: 6n,
      },
    ],
  } satisfies AlertsBody,
};

const clock: BusClock = { monoNs: () => 9_007_199_254_740_993_123n, wallUnixNs: () => 1_760_000_123_456_000_000n };

// ---------------------------------------------------------------------------------------
// The CRC as the .proto's comment defines it, written from the text, not from crc32c.ts.

function crc32cBitwise(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** The consumer's procedure from proto/perceptd.proto: offset of the CRC bytes, or null if the prefix is wrong. */
function documentedCrcOffset(frame: Uint8Array): number | null {
  if (frame[0] !== 0x0a) return null;
  let i = 1;
  while (frame[i] & 0x80) i++;
  i++;
  return frame[i] === 0x0d ? i + 1 : null;
}

function documentedCrcOk(frame: Uint8Array): boolean {
  const at = documentedCrcOffset(frame);
  if (at === null) return false;
  const want = Buffer.from(frame).readUInt32LE(at);
  const zeroed = Uint8Array.from(frame);
  zeroed.fill(0, at, at + 4);
  return crc32cBitwise(zeroed) === want;
}

/**
 * A frame as another producer would make it from the .proto's instructions: the whole message
 * through a protobuf library with header.crc32c set to 0 (protobufjs writes fields in number
 * order, and a set field even when 0), then the CRC written into its four bytes.
 */
function foreignFrame(type: Type, message: Record<string, unknown>): Uint8Array {
  const frame = Uint8Array.from(type.encode(type.fromObject(message)).finish());
  const at = documentedCrcOffset(frame);
  if (at === null) throw new Error("foreign frame lacks the documented prefix");
  Buffer.from(frame.buffer, frame.byteOffset).writeUInt32LE(crc32cBitwise(frame), at);
  return frame;
}

function foreignHeader(topic: TopicName, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { crc32c: 0, schemaVersion: SCHEMA_VERSION, dataId: TOPICS[topic].dataId, counter: 5, cameraId: "", frameSeq: 0, tIngestMonoNs: 0, tPublishMonoNs: 1, wallTimeUnixNs: 2, ...extra };
}

function expectFrameError(fn: () => unknown, reason: FrameError["reason"], message?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, "decodeFrame threw").toBeInstanceOf(FrameError);
  expect((err as FrameError).reason).toBe(reason);
  if (message) expect((err as FrameError).message).toMatch(message);
}

/** Paths of fields left at their default in a decoded JSON message (first element of lists). */
function defaultsLeft(type: Type, json: Record<string, unknown>, path: string): string[] {
  const out: string[] = [];
  for (const f of type.fieldsArray) {
    const p = `${path}.${f.name}`;
    let v = json[f.name];
    if (f.repeated) {
      if (!Array.isArray(v) || v.length === 0) {
        out.push(p);
        continue;
      }
      v = v[0];
    }
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) {
      if (v === null || v === undefined) out.push(p);
      else out.push(...defaultsLeft(rt, v as Record<string, unknown>, p));
    } else if (v === undefined || v === null || v === 0 || v === "" || v === "0" || v === false || (rt instanceof protobuf.Enum && v === rt.valuesById[0])) {
      out.push(p);
    }
  }
  return out;
}

describe("bus frames", () => {
  it.each(TOPIC_NAMES)("round-trips a %s message, every .proto field included, with the header stamped by the encoder", (topic) => {
    const enc = new BusEncoder(clock);
    const frame = enc.encode(topic, SAMPLES[topic], topic === "detections" ? { cameraId: "front", frameSeq: 41, tIngestMonoNs: 9_007_199_254_740_000_000n } : {});
    const d = decodeFrame(topic, frame);
    expect(d.body).toEqual(SAMPLES[topic]);
    expect(d.header).toEqual({
      crc32c: expect.any(Number),
      schemaVersion: SCHEMA_VERSION,
      dataId: TOPICS[topic].dataId,
      counter: 0n,
      cameraId: topic === "detections" ? "front" : "",
      frameSeq: topic === "detections" ? 41n : 0n,
      tIngestMonoNs: topic === "detections" ? 9_007_199_254_740_000_000n : 0n,
      tPublishMonoNs: 9_007_199_254_740_993_123n,
      wallTimeUnixNs: 1_760_000_123_456_000_000n,
      valid: true,
    });
    // A field in the .proto that the TypeScript shape lacks would come back at its default.
    const left = defaultsLeft(TOPIC_TYPES[topic], d.json, topic).filter((p) => !(topic !== "detections" && /\.header\.(cameraId|frameSeq|tIngestMonoNs)$/.test(p)));
    expect(left, "fields the sample (and so the TypeScript shape) does not cover").toEqual(["detections.header.counter", "health.header.counter", "alerts.header.counter"].filter((p) => p.startsWith(topic)));
  });

  it("keeps the CRC where the .proto says and computes it as the .proto says", () => {
    const frame = new BusEncoder(clock).encode("detections", SAMPLES.detections, { cameraId: "front", frameSeq: 1 });
    expect(frame[0]).toBe(0x0a);
    expect(documentedCrcOffset(frame)).toBe(3);
    expect(documentedCrcOk(frame)).toBe(true);
    expect(decodeFrame("detections", frame).header.crc32c).toBe(Buffer.from(frame).readUInt32LE(3));
  });

  it("finds the CRC after a multi-byte header length", () => {
    const frame = new BusEncoder(clock).encode("detections", SAMPLES.detections, { cameraId: "c".repeat(200) });
    expect(frame[1] & 0x80, "header length takes two varint bytes").toBe(0x80);
    expect(documentedCrcOk(frame)).toBe(true);
    expect(decodeFrame("detections", frame).header.cameraId).toBe("c".repeat(200));
  });

  it("accepts a frame another producer made by following the .proto's instructions", () => {
    const frame = foreignFrame(lookupMessage("Health"), { header: foreignHeader("health"), state: "STATE_OK", fps: 10 });
    const d = decodeFrame("health", frame);
    expect(d.header.counter).toBe(5n);
    expect(d.body).toMatchObject({ state: "STATE_OK", fps: 10, reasons: [], cameras: [] });
  });

  it("carries valid=false when the publisher says so; a producer that leaves it out reads as not valid", () => {
    const frame = new BusEncoder(clock).encode("detections", SAMPLES.detections, { cameraId: "front", valid: false });
    expect(decodeFrame("detections", frame).header.valid).toBe(false);
    expect(decodeFrame("detections", frame).json.header).toMatchObject({ valid: false });
    expect(decodeFrame("health", foreignFrame(lookupMessage("Health"), { header: foreignHeader("health") })).header.valid).toBe(false);
  });

  it("counts per topic from 0, one per message; a body that cannot be encoded leaves no gap", () => {
    const enc = new BusEncoder(clock);
    const counters = (t: TopicName, n: number): bigint[] => Array.from({ length: n }, () => decodeFrame(t, enc.encode(t, SAMPLES[t])).header.counter);
    expect(counters("detections", 3)).toEqual([0n, 1n, 2n]);
    expect(counters("health", 2)).toEqual([0n, 1n]);
    expect(() => enc.encode("detections", { ...SAMPLES.detections, frameWidthPx: -1 })).toThrow(/detections\.frameWidthPx = -1: must be an integer from 0 to 4294967295/);
    expect(counters("detections", 1)).toEqual([3n]);
    expect(enc.nextCounter("alerts")).toBe(0n);
  });

  it.each([
    ["a NaN score", "detections", { ...SAMPLES.detections, detections: [{ classId: 0, label: "x", score: NaN, box: [0, 0, 1, 1] }] }, /detections\.detections\[0\]\.score = NaN: must be a finite number/],
    ["an infinite box corner", "detections", { ...SAMPLES.detections, detections: [{ classId: 0, label: "x", score: 1, box: [0, 0, Infinity, 1] }] }, /detections\.detections\[0\]\.x2Px = Infinity/],
    ["an unknown enum name", "health", { ...SAMPLES.health, state: "STATE_BOGUS" }, /health\.state = "STATE_BOGUS": must be one of STATE_UNSPECIFIED, STATE_STARTING/],
    ["a negative uint64", "health", { ...SAMPLES.health, framesDropped: -1n }, /health\.framesDropped = -1n: must be a bigint/],
    ["a uint64 past 2^64", "alerts", { alerts: [{ ...SAMPLES.alerts.alerts[0], trackId: 2n ** 64n }] }, /alerts\.alerts\[0\]\.trackId = 18446744073709551616n/],
    ["a fractional uint32", "alerts", { alerts: [{ ...SAMPLES.alerts.alerts[0], classId: 1.5 }] }, /alerts\.alerts\[0\]\.classId = 1\.5/],
  ] as [string, TopicName, unknown, RegExp][])("refuses to encode %s, naming the field", (_what, topic, body, error) => {
    expect(() => new BusEncoder().encode(topic, body as TopicBodies[typeof topic])).toThrow(error);
  });

  it("refuses a header source it cannot carry", () => {
    expect(() => new BusEncoder().encode("detections", SAMPLES.detections, { frameSeq: -3 })).toThrow(/detections\.header\.frameSeq = -3/);
  });

  it("writes JSON in the protobuf mapping: 64-bit integers as strings, enums by name, header first", () => {
    const d = decodeFrame("health", new BusEncoder(clock).encode("health", SAMPLES.health));
    expect(Object.keys(d.json)[0]).toBe("header");
    expect(d.json).toMatchObject({ state: "STATE_DEGRADED", framesIngested: "9223372036854775808", header: { counter: "0", tPublishMonoNs: "9007199254740993123" } });
    expect(JSON.parse(JSON.stringify(d.json))).toEqual(d.json);
  });

  it("reads an enum value from a newer schema as UNSPECIFIED, and keeps its number in the JSON", () => {
    const frame = foreignFrame(lookupMessage("Health"), { header: foreignHeader("health"), state: 42 });
    const d = decodeFrame("health", frame);
    expect(d.body.state).toBe("STATE_UNSPECIFIED");
    expect(d.json.state).toBe(42);
  });
});

describe("bus frame checks", () => {
  const good = (): Uint8Array => new BusEncoder(clock).encode("detections", SAMPLES.detections, { cameraId: "front", frameSeq: 9, tIngestMonoNs: 1n });

  it("catches every single corrupted byte, anywhere in the frame", () => {
    const frame = good();
    for (let i = 0; i < frame.length; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const bad = Uint8Array.from(frame);
        bad[i] ^= flip;
        let reason: string | undefined;
        try {
          decodeFrame("detections", bad);
        } catch (e) {
          reason = e instanceof FrameError ? e.reason : `not a FrameError: ${String(e)}`;
        }
        expect(["crc", "layout"], `byte ${i} ^ 0x${flip.toString(16)}`).toContain(reason);
      }
    }
  });

  it("names the CRC mismatch", () => {
    const bad = good();
    bad[bad.length - 1] ^= 0x20;
    expectFrameError(() => decodeFrame("detections", bad), "crc", /CRC-32C mismatch: the frame carries 0x[0-9a-f]{8}, its bytes give 0x[0-9a-f]{8}/);
  });

  it.each([0, 1, 2, 6, 20])("rejects a frame cut to %i bytes", (n) => {
    const cut = good().subarray(0, n);
    expect(() => decodeFrame("detections", cut)).toThrow(FrameError);
  });

  it("rejects a frame without the prefix (not a perceptd frame, or the old JSON)", () => {
    expectFrameError(() => decodeFrame("detections", Buffer.from('{"schema_version":1}')), "layout", /starts with 0x7b, not 0x0a/);
    expectFrameError(() => decodeFrame("detections", Uint8Array.from([0x0a, 0x05, 0x08, 1, 2, 3, 4])), "layout", /not 0x0d/);
  });

  it("rejects a message of another topic by its data_id", () => {
    const health = new BusEncoder().encode("health", SAMPLES.health);
    expectFrameError(() => decodeFrame("detections", health), "data_id", /data_id 2 on topic detections \(expected 1; it is health's\)/);
  });

  it("rejects a schema_version it does not read", () => {
    const frame = foreignFrame(lookupMessage("Alerts"), { header: foreignHeader("alerts", { schemaVersion: SCHEMA_VERSION + 1 }) });
    expectFrameError(() => decodeFrame("alerts", frame), "schema_version", new RegExp(`schema_version ${SCHEMA_VERSION + 1}; this build reads ${SCHEMA_VERSION}`));
  });

  it("tells a protobuf error under a correct CRC from a transmission error", () => {
    // a good frame with a key of wire type 7 (which does not exist) appended, CRC recomputed
    const g = good();
    const frame = new Uint8Array(g.length + 2);
    frame.set(g);
    frame.set([0xff, 0x01], g.length);
    frame.fill(0, 3, 7);
    Buffer.from(frame.buffer).writeUInt32LE(crc32cBitwise(frame), 3);
    expectFrameError(() => decodeFrame("detections", frame), "protobuf", /not a valid perceptd\.v1\.Detections/);
  });
});

describe("the .proto and the TypeScript side agree", () => {
  it("on the topic table: message types and data ids", () => {
    const ids = lookupEnum("DataId").values;
    for (const t of TOPIC_NAMES) {
      expect(TOPIC_TYPES[t].fullName).toBe(`.${TOPICS[t].message}`);
      expect(ids[`DATA_ID_${t.toUpperCase()}`], `DataId for ${t}`).toBe(TOPICS[t].dataId);
      expect(TOPICS[t].encoding).toBe("protobuf");
    }
    expect(Object.keys(ids).length, "one DataId per topic, plus UNSPECIFIED").toBe(TOPIC_NAMES.length + 1);
  });

  it("on enum names", () => {
    expect(Object.keys(lookupEnum("Health.State").values)).toEqual([...WIRE_HEALTH_STATES]);
    expect(Object.keys(lookupEnum("CameraHealth.State").values)).toEqual([...CAMERA_HEALTH_STATES]);
    expect(Object.keys(lookupEnum("Alert.Kind").values)).toEqual([...ALERT_KINDS]);
    expect(Object.keys(lookupEnum("Alert.Level").values)).toEqual([...ALERT_LEVELS]);
  });

  it("maps every health state of the daemon to its wire enum, and nothing to UNSPECIFIED", () => {
    const wire = HEALTH_STATES.map(toWireHealthState);
    expect(wire).toEqual(["STATE_STARTING", "STATE_OK", "STATE_DEGRADED", "STATE_FAULT", "STATE_STOPPING"]);
    for (const w of wire) expect(WIRE_HEALTH_STATES).toContain(w);
  });

  it("on the schema version: the highest SchemaVersion value", () => {
    expect(SCHEMA_VERSION).toBe(Math.max(...Object.values(lookupEnum("SchemaVersion").values)));
    expect(SCHEMA_VERSION).toBe(1);
  });
});
