// Encoding and decoding of bus frames (the second ZeroMQ frame of every message), for the
// wire described in proto/perceptd.proto. BusEncoder is the one place where a message gets
// its Header: per-topic counter, publish times and CRC-32C are stamped there, at encode
// time, and nowhere else. decodeFrame is its inverse and checks everything a frame can be
// checked for on its own (layout, CRC, schema_version, data_id); counters and staleness
// need history and live in the subscriber client (src/bus/client/).
//
// TypeScript shapes mirror the .proto in protobufjs's camelCase field names; 64-bit integers
// are bigint (they exceed 2^53) and enums are their .proto value names. The conversion walks
// the reflected schema instead of naming fields, so a field added to the .proto needs only
// its TypeScript declaration here (test/bus/codec.test.ts fails until it has one).
import protobuf from "protobufjs";
import type { Field, Type } from "protobufjs";
import type { HealthState } from "../core/health.ts";
import type { Detection } from "../core/types.ts";
import { crc32c } from "./crc32c.ts";
import { HeaderType, READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, TOPIC_TYPES } from "./proto.ts";
import { TOPIC_NAMES, TOPICS, topicOfDataId, type TopicName } from "./topics.ts";

// ---------------------------------------------------------------------------------------
// Shapes

export interface Header {
  /** CRC-32C of the frame (proto/perceptd.proto: "CRC") */
  crc32c: number;
  schemaVersion: number;
  dataId: number;
  /** per topic, +1 per message from 0 at publisher start */
  counter: bigint;
  /** "" when the message is about no single camera */
  cameraId: string;
  frameSeq: bigint;
  /** process.hrtime.bigint() of the publisher when ingest received the frame; 0n: none */
  tIngestMonoNs: bigint;
  /** process.hrtime.bigint() of the publisher at encoding */
  tPublishMonoNs: bigint;
  wallTimeUnixNs: bigint;
  /** false: not fit to act on (stale at publish); see the .proto */
  valid: boolean;
}

/** What a message is about, for its Header; everything else in the Header is stamped by BusEncoder. */
export interface HeaderSource {
  cameraId?: string;
  frameSeq?: number | bigint;
  /** process.hrtime.bigint() when ingest received the frame the message derives from */
  tIngestMonoNs?: bigint;
  /** default true; false: the content is not fit to act on (e.g. detections older than the latency budget) */
  valid?: boolean;
}

export interface DetectionsBody {
  /** manifest name of the model */
  model: string;
  /** source frame size: the pixel space of the boxes */
  frameWidthPx: number;
  frameHeightPx: number;
  /** boxes travel as float32, the detector's own precision */
  detections: PublishedDetection[];
}

/** A detection as published: the detector's fields plus what the hazard assessment knows of it (absent: unknown). */
export interface PublishedDetection extends Detection {
  /** the object's track; absent (0 on the wire): not tracked */
  trackId?: bigint;
  rangeM?: number;
  ttcS?: number;
  /** absent (false on the wire): outside the corridor, or none configured */
  inCorridor?: boolean;
}

/** Health.State on the wire (proto/perceptd.proto): the daemon's HealthState (src/core/health.ts), spelled as the enum. */
export const WIRE_HEALTH_STATES = ["STATE_UNSPECIFIED", "STATE_STARTING", "STATE_OK", "STATE_DEGRADED", "STATE_FAULT", "STATE_STOPPING"] as const;
export type WireHealthState = (typeof WIRE_HEALTH_STATES)[number];

/** The one mapping from the daemon's health state to the wire enum. */
export function toWireHealthState(state: HealthState): WireHealthState {
  return `STATE_${state.toUpperCase() as Uppercase<HealthState>}`;
}

export const CAMERA_HEALTH_STATES = ["STATE_UNSPECIFIED", "STATE_STARTING", "STATE_RUNNING", "STATE_RESTARTING", "STATE_ENDED", "STATE_STOPPED"] as const;
export type CameraHealthState = (typeof CAMERA_HEALTH_STATES)[number];

export interface CameraHealth {
  cameraId: string;
  state: CameraHealthState;
  fps: number;
  restarts: number;
  framesIngested: bigint;
  framesProcessed: bigint;
  /** absent before the camera's first frame */
  lastFrameAgeMs?: number;
}

export interface HealthBody {
  state: WireHealthState;
  /** why the state is not STATE_OK; empty when it is */
  reasons: string[];
  cameras: CameraHealth[];
  uptimeS: number;
  fps: number;
  latencyE2eP50Ms: number;
  latencyE2eP99Ms: number;
  latencyInferenceP50Ms: number;
  framesIngested: bigint;
  framesProcessed: bigint;
  framesDropped: bigint;
  model: string;
  executionProvider: string;
}

export const ALERT_KINDS = ["KIND_UNSPECIFIED", "KIND_FORWARD_COLLISION", "KIND_PEDESTRIAN", "KIND_CYCLIST", "KIND_OBSTACLE", "KIND_VEHICLE"] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const ALERT_LEVELS = ["LEVEL_UNSPECIFIED", "LEVEL_INFO", "LEVEL_WARNING", "LEVEL_CRITICAL"] as const;
export type AlertLevel = (typeof ALERT_LEVELS)[number];

export interface Alert {
  /** stable while the alert stays active */
  alertId: bigint;
  kind: AlertKind;
  level: AlertLevel;
  /** false: show it, do not act on it */
  valid: boolean;
  cameraId: string;
  /** 0n: no track */
  trackId: bigint;
  classId: number;
  label: string;
  /** absent: not estimated */
  rangeM?: number;
  /** absent: not closing, or not estimated */
  ttcS?: number;
  tRaisedMonoNs: bigint;
  tSourceIngestMonoNs: bigint;
}

export interface AlertsBody {
  /** every alert active now; empty: none */
  alerts: Alert[];
}

/** The payload of each topic, without its Header. */
export interface TopicBodies {
  detections: DetectionsBody;
  health: HealthBody;
  alerts: AlertsBody;
}
export type BodyOf<T extends TopicName> = TopicBodies[T];

/** One decoded frame. */
export interface DecodedFrame<T extends TopicName = TopicName> {
  topic: T;
  header: Header;
  body: BodyOf<T>;
  /**
   * The whole message, header included, in the protobuf JSON mapping: camelCase field names,
   * 64-bit integers as decimal strings, enums by name, fields at their defaults included.
   */
  json: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------
// Errors

/** Why a frame failed decodeFrame; every reason is an E2E ERROR for a receiver. */
export type FrameErrorReason =
  /** the prefix the CRC relies on is missing (not a perceptd frame, truncated, or corrupted there) */
  | "layout"
  | "crc"
  /** CRC right, protobuf wrong: a publisher bug rather than a transmission error */
  | "protobuf"
  | "schema_version"
  /** the message belongs to another topic */
  | "data_id";

export class FrameError extends Error {
  override readonly name = "FrameError";
  constructor(
    readonly reason: FrameErrorReason,
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------
// Encoding

export interface BusClock {
  /** for t_publish_mono_ns: the clock the daemon stamps ingest times with */
  monoNs(): bigint;
  wallUnixNs(): bigint;
}

export const systemClock: BusClock = {
  monoNs: () => process.hrtime.bigint(),
  wallUnixNs: () => BigInt(Date.now()) * 1_000_000n,
};

const KEY_HEADER = 0x0a; // field 1, wire type 2 (length-delimited)
const KEY_CRC = 0x0d; // field 1, wire type 5 (fixed32)

/**
 * Stamps and encodes messages. One per publisher: it owns the per-topic counters, so every
 * message of a topic must go through the same instance for the counter to mean anything.
 */
export class BusEncoder {
  private readonly next = Object.fromEntries(TOPIC_NAMES.map((t) => [t, 0n])) as Record<TopicName, bigint>;

  constructor(private readonly clock: BusClock = systemClock) {}

  /**
   * The complete frame for `topic`: Header stamped (counter, t_publish_mono_ns, wall time,
   * schema_version, data_id, CRC) and body. Throws naming the field if the body cannot be
   * encoded faithfully (a non-finite float, an integer out of range); the counter only
   * moves for a frame actually produced, so a throw leaves no gap for receivers to see.
   */
  encode<T extends TopicName>(topic: T, body: BodyOf<T>, source: HeaderSource = {}): Uint8Array {
    const type = TOPIC_TYPES[topic];
    const wireBody = toWire(type, ADAPTERS[topic].toWire(body), topic);
    // The header goes first on the wire, by hand (below); a stray one in the body must not follow it.
    delete wireBody.header;
    const header = toWire(
      HeaderType,
      {
        schemaVersion: SCHEMA_VERSION,
        dataId: TOPICS[topic].dataId,
        counter: this.next[topic],
        cameraId: source.cameraId ?? "",
        frameSeq: source.frameSeq ?? 0n,
        tIngestMonoNs: source.tIngestMonoNs ?? 0n,
        tPublishMonoNs: this.clock.monoNs(),
        wallTimeUnixNs: this.clock.wallUnixNs(),
        valid: source.valid ?? true,
      },
      `${topic}.header`,
    );
    const frame = assembleFrame(HeaderType.encode(HeaderType.fromObject(header)).finish(), type.encode(type.fromObject(wireBody)).finish());
    this.next[topic]++;
    return frame;
  }

  /** The counter the next message on `topic` will carry. */
  nextCounter(topic: TopicName): bigint {
    return this.next[topic];
  }
}

/**
 * Lays out [0x0A, varint L, 0x0D, crc(4), rest of header, body] and fills in the CRC: the
 * prefix proto/perceptd.proto promises consumers, built here byte by byte rather than left
 * to the field order of a protobuf library.
 */
function assembleFrame(headerRest: Uint8Array, body: Uint8Array): Uint8Array {
  const headerLen = 5 + headerRest.length;
  const len = varint(headerLen);
  const crcAt = 1 + len.length + 1;
  const frame = new Uint8Array(crcAt + 4 + headerRest.length + body.length);
  frame[0] = KEY_HEADER;
  frame.set(len, 1);
  frame[crcAt - 1] = KEY_CRC;
  frame.set(headerRest, crcAt + 4);
  frame.set(body, crcAt + 4 + headerRest.length);
  new DataView(frame.buffer, frame.byteOffset, frame.byteLength).setUint32(crcAt, crc32c(frame), true);
  return frame;
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------
// Decoding

/** Offset of the four CRC bytes in `frame`; throws FrameError("layout") if the prefix is not there. */
export function crcOffset(frame: Uint8Array): number {
  if (frame.length === 0) throw new FrameError("layout", "empty frame");
  if (frame[0] !== KEY_HEADER) throw new FrameError("layout", `frame starts with 0x${hex2(frame[0])}, not 0x0a (the header, field 1)`);
  let i = 1;
  let headerLen = 0;
  for (let shift = 0; ; shift += 7) {
    if (i >= frame.length || shift > 28) throw new FrameError("layout", "header length is not a valid varint");
    const b = frame[i++];
    headerLen += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (headerLen < 5 || i + headerLen > frame.length) throw new FrameError("layout", `header length ${headerLen} does not fit a ${frame.length}-byte frame`);
  if (frame[i] !== KEY_CRC) throw new FrameError("layout", `header starts with 0x${hex2(frame[i])}, not 0x0d (crc32c, field 1)`);
  return i + 1;
}

/** The CRC a frame carries and the one its bytes give; equal for an intact frame. */
export function frameCrc(frame: Uint8Array): { stored: number; computed: number } {
  const at = crcOffset(frame);
  const stored = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(at, true);
  const computed = crc32c(frame.subarray(at + 4), crc32c(ZERO4, crc32c(frame.subarray(0, at))));
  return { stored, computed };
}

const ZERO4 = new Uint8Array(4);

/** Checks and decodes a frame received on `topic`; throws FrameError saying what is wrong. */
export function decodeFrame<T extends TopicName>(topic: T, frame: Uint8Array): DecodedFrame<T> {
  const { stored, computed } = frameCrc(frame);
  if (stored !== computed) throw new FrameError("crc", `CRC-32C mismatch: the frame carries 0x${hex8(stored)}, its bytes give 0x${hex8(computed)}`);
  // The header first, alone: a message of another schema version or topic may not even
  // parse as this topic's type, and "wrong topic" is the error worth reporting then.
  const headerAt = crcOffset(frame) - 1;
  const headerEnd = headerAt + headerLength(frame);
  let header: Header;
  try {
    header = fromWire(HeaderType, HeaderType.toObject(HeaderType.decode(frame.subarray(headerAt, headerEnd)), { longs: String, defaults: true })) as unknown as Header;
  } catch (e) {
    throw new FrameError("protobuf", `not a valid perceptd.v1.Header: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!READABLE_SCHEMA_VERSIONS.has(header.schemaVersion))
    throw new FrameError("schema_version", `schema_version ${header.schemaVersion}; this build reads ${[...READABLE_SCHEMA_VERSIONS].join(", ")}`);
  if (header.dataId !== TOPICS[topic].dataId) {
    const owner = topicOfDataId(header.dataId);
    throw new FrameError("data_id", `data_id ${header.dataId} on topic ${topic} (expected ${TOPICS[topic].dataId}; ${owner ? `it is ${owner}'s` : "no known topic has it"})`);
  }
  const type = TOPIC_TYPES[topic];
  let json: Record<string, unknown>;
  try {
    json = inFieldOrder(type, type.toObject(type.decode(frame), { longs: String, enums: String, defaults: true }));
  } catch (e) {
    throw new FrameError("protobuf", `not a valid ${TOPICS[topic].message}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { header: _header, ...wireBody } = fromWire(type, json);
  return { topic, header, body: ADAPTERS[topic].fromWire(wireBody) as BodyOf<T>, json };
}

/** L of the prefix: the serialized Header's length (crcOffset has checked it). */
function headerLength(frame: Uint8Array): number {
  let len = 0;
  for (let i = 1, shift = 0; ; i++, shift += 7) {
    len += (frame[i] & 0x7f) * 2 ** shift;
    if (frame[i] < 0x80) return len;
  }
}

// ---------------------------------------------------------------------------------------
// TypeScript shape <-> protobufjs plain object, by reflection

type Plain = Record<string, unknown>;

interface Adapter<B> {
  toWire(body: B): Plain;
  fromWire(wire: Plain): B;
}

// Only detections differs from the .proto in shape: the pipeline's box is a tuple, the wire
// has named corners (clearer for C consumers than a repeated field of length 4).
const ADAPTERS: { [T in TopicName]: Adapter<BodyOf<T>> } = {
  detections: {
    toWire: (b) => ({
      model: b.model,
      frameWidthPx: b.frameWidthPx,
      frameHeightPx: b.frameHeightPx,
      detections: b.detections.map((d) => ({
        classId: d.classId,
        label: d.label,
        score: d.score,
        x1Px: d.box[0],
        y1Px: d.box[1],
        x2Px: d.box[2],
        y2Px: d.box[3],
        trackId: d.trackId,
        rangeM: d.rangeM,
        ttcS: d.ttcS,
        inCorridor: d.inCorridor,
      })),
    }),
    fromWire: (w) => {
      const dets = w.detections as Plain[];
      return {
        model: w.model as string,
        frameWidthPx: w.frameWidthPx as number,
        frameHeightPx: w.frameHeightPx as number,
        // The hazard fields are left out where they hold their "unknown" value, so a detection
        // of an untracked camera reads back exactly as the detector produced it.
        detections: dets.map((d) => ({
          classId: d.classId as number,
          label: d.label as string,
          score: d.score as number,
          box: [d.x1Px as number, d.y1Px as number, d.x2Px as number, d.y2Px as number],
          ...(d.trackId !== undefined && d.trackId !== 0n ? { trackId: d.trackId as bigint } : {}),
          ...(d.rangeM !== undefined ? { rangeM: d.rangeM as number } : {}),
          ...(d.ttcS !== undefined ? { ttcS: d.ttcS as number } : {}),
          ...(d.inCorridor === true ? { inCorridor: true } : {}),
        })),
      };
    },
  },
  health: { toWire: (b) => ({ ...b }), fromWire: (w) => w as unknown as HealthBody },
  alerts: { toWire: (b) => ({ ...b }), fromWire: (w) => w as unknown as AlertsBody },
};

const LONGS = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);
const UNSIGNED = new Set(["uint32", "fixed32", "uint64", "fixed64"]);
const INT32_RANGE: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
};

/**
 * Checks a TypeScript value against a message type and converts it to what protobufjs's
 * fromObject takes (bigints as decimal strings). protobufjs itself would wrap an integer
 * out of range, write NaN, and drop an unknown enum name as 0 without a word; each of
 * those would reach subscribers as a plausible wrong value, so they throw here instead.
 */
function toWire(type: Type, value: unknown, path: string): Plain {
  if (!isPlain(value)) throw encodeError(path, value, "must be an object");
  const out: Plain = {};
  for (const field of type.fieldsArray) {
    const v = value[field.name];
    if (v === undefined || v === null) continue;
    const p = `${path}.${field.name}`;
    if (field.repeated) {
      if (!Array.isArray(v)) throw encodeError(p, v, "must be an array");
      out[field.name] = v.map((x: unknown, i) => fieldToWire(field, x, `${p}[${i}]`));
    } else {
      out[field.name] = fieldToWire(field, v, p);
    }
  }
  return out;
}

function fieldToWire(field: Field, v: unknown, path: string): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return toWire(rt, v, path);
  if (rt instanceof protobuf.Enum) {
    if (typeof v !== "string" || !Object.hasOwn(rt.values, v)) throw encodeError(path, v, `must be one of ${Object.keys(rt.values).join(", ")}`);
    return v;
  }
  const t = field.type;
  if (t === "double" || t === "float") {
    if (typeof v !== "number" || !Number.isFinite(v)) throw encodeError(path, v, "must be a finite number");
    return v;
  }
  if (t in INT32_RANGE) {
    const [min, max] = INT32_RANGE[t];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw encodeError(path, v, `must be an integer from ${min} to ${max} (${t})`);
    return v;
  }
  if (LONGS.has(t)) {
    const big = typeof v === "bigint" ? v : typeof v === "number" && Number.isSafeInteger(v) ? BigInt(v) : null;
    const [min, max] = UNSIGNED.has(t) ? [0n, 2n ** 64n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
    if (big === null || big < min || big > max) throw encodeError(path, v, `must be a bigint (or safe integer) from ${min} to ${max} (${t})`);
    return big.toString();
  }
  if (t === "bool" && typeof v !== "boolean") throw encodeError(path, v, "must be true or false");
  if (t === "string" && typeof v !== "string") throw encodeError(path, v, "must be a string");
  if (t === "bytes" && !(v instanceof Uint8Array)) throw encodeError(path, v, "must be a Uint8Array");
  return v;
}

/** The inverse, from protobufjs's toObject({longs: String, enums: String, defaults: true}). */
function fromWire(type: Type, value: Plain): Plain {
  const out: Plain = {};
  for (const field of type.fieldsArray) {
    const v = value[field.name];
    // null: a message field that is absent; undefined: an optional scalar that is absent
    if (v === undefined || v === null) continue;
    out[field.name] = field.repeated && Array.isArray(v) ? v.map((x: unknown) => fieldFromWire(field, x)) : fieldFromWire(field, v);
  }
  return out;
}

function fieldFromWire(field: Field, v: unknown): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return fromWire(rt, v as Plain);
  // A value from a newer schema: proto3 reads it as "unspecified" (value 0) in a typed API.
  if (rt instanceof protobuf.Enum) return typeof v === "string" && Object.hasOwn(rt.values, v) ? v : rt.valuesById[0];
  if (LONGS.has(field.type)) return BigInt(String(v));
  return v;
}

/** protobufjs lists repeated fields first; people read a message in the .proto's order. */
function inFieldOrder(type: Type, value: Plain): Plain {
  const out: Plain = {};
  for (const field of [...type.fieldsArray].sort((a, b) => a.id - b.id)) {
    if (!(field.name in value)) continue;
    const v = value[field.name];
    const rt = field.resolvedType;
    out[field.name] =
      rt instanceof protobuf.Type && v !== null ? (Array.isArray(v) ? v.map((x: unknown) => inFieldOrder(rt, x as Plain)) : inFieldOrder(rt, v as Plain)) : v;
  }
  return out;
}

function encodeError(path: string, v: unknown, why: string): Error {
  const shown = typeof v === "bigint" ? `${v}n` : typeof v === "string" ? JSON.stringify(v) : typeof v === "object" && v !== null ? (Array.isArray(v) ? "an array" : "an object") : String(v);
  return new Error(`bus: cannot encode ${path} = ${shown}: ${why}`);
}

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}
