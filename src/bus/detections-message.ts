// The `detections` topic payload. JSON for now; the protobuf contract is a later issue and
// will replace this module's wire format, not its TypeScript shape.
//
// Wire names carry their units. Monotonic nanosecond times are decimal strings because they
// exceed 2^53 and JSON numbers are doubles; they come from process.hrtime.bigint(), so they
// only compare with other times from the same boot of the same machine. Wall time is for
// humans and log correlation, never for latency arithmetic.
import { z } from "zod";
import type { Box, Detection } from "../infer/types.ts";

export const DETECTIONS_SCHEMA_VERSION = 1;

export interface DetectionsMessage {
  camera: string;
  /** the frame's per-camera sequence number (gaps: frames dropped before or on the bus) */
  seq: number;
  /** process.hrtime.bigint() when ingest received the frame */
  tIngestNs: bigint;
  /** process.hrtime.bigint() just before the message was encoded for the bus */
  tPublishNs: bigint;
  /** Date.now() at publish */
  wallTimeMs: number;
  /** manifest name of the model that produced the detections */
  model: string;
  /** size of the source frame in pixels: the space the boxes are in */
  width: number;
  height: number;
  detections: Detection[];
}

const nsString = z.string().regex(/^(0|[1-9][0-9]*)$/, "must be a non-negative integer as a decimal string");
const px = z.number().finite();

const WireDetection = z.object({
  class_id: z.number().int().min(0),
  label: z.string(),
  score: z.number().min(0).max(1),
  box_px: z
    .tuple([px, px, px, px])
    .refine(([x1, y1, x2, y2]) => x1 <= x2 && y1 <= y2, "must be [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2"),
});

// Not strict: a newer publisher may add fields, and an older subscriber must keep working.
const WireMessage = z.object({
  schema_version: z.literal(DETECTIONS_SCHEMA_VERSION),
  camera: z.string().min(1),
  seq: z.number().int().min(0),
  t_ingest_mono_ns: nsString,
  t_publish_mono_ns: nsString,
  wall_time_unix_ms: z.number().finite(),
  model: z.string(),
  frame_width_px: z.number().int().min(1),
  frame_height_px: z.number().int().min(1),
  detections: z.array(WireDetection),
});

type Wire = z.infer<typeof WireMessage>;

/**
 * Encodes one frame's detections as UTF-8 JSON. Throws naming the field if a number is not
 * finite: JSON would turn NaN into null and every subscriber would reject the message.
 */
export function encodeDetections(m: DetectionsMessage): Uint8Array {
  requireFinite("seq", m.seq);
  requireFinite("wallTimeMs", m.wallTimeMs);
  requireFinite("width", m.width);
  requireFinite("height", m.height);
  const detections = m.detections.map((d, i): Wire["detections"][number] => {
    requireFinite(`detections[${i}].score`, d.score);
    d.box.forEach((v, k) => requireFinite(`detections[${i}].box[${k}]`, v));
    return { class_id: d.classId, label: d.label, score: d.score, box_px: [d.box[0], d.box[1], d.box[2], d.box[3]] };
  });
  const wire: Wire = {
    schema_version: DETECTIONS_SCHEMA_VERSION,
    camera: m.camera,
    seq: m.seq,
    t_ingest_mono_ns: m.tIngestNs.toString(),
    t_publish_mono_ns: m.tPublishNs.toString(),
    wall_time_unix_ms: m.wallTimeMs,
    model: m.model,
    frame_width_px: m.width,
    frame_height_px: m.height,
    detections,
  };
  return Buffer.from(JSON.stringify(wire), "utf8");
}

/** Parses and validates a `detections` payload; throws naming the first bad field. */
export function decodeDetections(payload: Uint8Array | string): DetectionsMessage {
  let text: string;
  try {
    text = typeof payload === "string" ? payload : new TextDecoder("utf-8", { fatal: true }).decode(payload);
  } catch {
    throw new Error("detections message: payload is not valid UTF-8");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`detections message: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const r = WireMessage.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = formatPath(issue.path);
    if (field === "") throw new Error(`detections message: expected a JSON object, got ${describe(raw)}`);
    if (field === "schema_version" && isObject(raw) && raw.schema_version !== undefined)
      throw new Error(`detections message: unsupported schema_version ${JSON.stringify(raw.schema_version)} (this build reads ${DETECTIONS_SCHEMA_VERSION})`);
    if (valueAt(raw, issue.path) === undefined) throw new Error(`detections message: field "${field}" is missing`);
    throw new Error(`detections message: field "${field}": ${issue.message}`);
  }
  const w = r.data;
  return {
    camera: w.camera,
    seq: w.seq,
    tIngestNs: BigInt(w.t_ingest_mono_ns),
    tPublishNs: BigInt(w.t_publish_mono_ns),
    wallTimeMs: w.wall_time_unix_ms,
    model: w.model,
    width: w.frame_width_px,
    height: w.frame_height_px,
    detections: w.detections.map((d) => ({ classId: d.class_id, label: d.label, score: d.score, box: [...d.box_px] as Box })),
  };
}

function requireFinite(field: string, v: number): void {
  if (!Number.isFinite(v)) throw new Error(`detections message: cannot encode field "${field}" = ${v} (not a finite number)`);
}

function formatPath(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? String(p) : `.${String(p)}`;
  return s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function describe(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
}
