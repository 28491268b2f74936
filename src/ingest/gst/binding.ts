// gstreamer-superficial ships no TypeScript types. These interfaces describe only the part
// perceptd uses, as read from its 1.7.4 C++ sources (Pipeline.cpp, GObjectWrap.cpp,
// GLibHelpers.cpp); keep them in this one file so a binding upgrade is checked in one place.
import { createRequire } from "node:module";

/**
 * A GstStructure flattened into an object: `name` is the structure name, other fields are
 * converted (ints/floats/strings as such; fractions and enums as strings, e.g. "10/1").
 */
export interface GstStructureObject {
  name?: string;
  [field: string]: unknown;
}

/**
 * A bus message. `type` is GST_MESSAGE_TYPE_NAME ("eos", "error", "state-changed", ...),
 * but the binding copies the message structure's fields over it afterwards, so messages
 * whose structure has its own `type` field (stream-status) arrive with that value instead.
 * For "error" the binding adds `message` (GError text) and overwrites `name` with the
 * source element's path; the structure's `debug` string comes along too.
 */
export interface GstBusMessage extends GstStructureObject {
  type: string;
  _src_element_name?: string;
  message?: string;
  debug?: string;
}

/**
 * An element from findChild(). Every GObject property is an accessor on the object; a
 * string set on it becomes a G_TYPE_STRING property value with no parsing, and numbers are
 * always converted through float.
 */
export interface GstElementHandle {
  [property: string]: unknown;
}

/**
 * Samples are copied into a fresh Buffer (no stride info, no timestamps). `caps` is the
 * sample's first caps structure, or {} when `buf` is null (EOS, flushing, or not started).
 * Each call queues one blocking gst_app_sink_pull_sample on the libuv threadpool.
 */
export interface GstAppSinkHandle extends GstElementHandle {
  pull(callback: (buf: Buffer | null, caps: GstStructureObject) => void): void;
}

/**
 * An appsrc from findChild(). push() copies the buffer into a new GstBuffer and queues it
 * on the calling thread (it blocks only with block=true and a full queue); the optional
 * second argument is the PTS in nanoseconds as an 8-byte big-endian buffer.
 */
export interface GstAppSrcHandle extends GstElementHandle {
  push(buf: Buffer, ptsBigEndian?: Buffer): void;
}

export interface GstPipelineHandle {
  play(): void;
  pause(): void;
  /** gst_element_set_state(NULL), synchronous. */
  stop(): void;
  /** Seconds, or -1 when unknown. */
  queryDuration(): number;
  queryPosition(): number;
  /** gst_element_send_event(pipeline, EOS): each source (an appsrc too) ends after what it has queued. */
  sendEOS(): void;
  findChild(name: string): GstElementHandle | undefined;
  /**
   * Re-arms itself after each message for as long as the pipeline is not in NULL, each
   * time blocking a libuv threadpool thread in gst_bus_timed_pop with no timeout.
   */
  pollBus(callback: (msg: GstBusMessage) => void): void;
  "auto-flush-bus": boolean;
}

export interface GstBinding {
  /** Runs gst_parse_launch; throws the parse error's message. */
  Pipeline: new (launch: string) => GstPipelineHandle;
}

export function isAppSink(el: GstElementHandle | undefined): el is GstAppSinkHandle {
  return el !== undefined && typeof el.pull === "function";
}

export function isAppSrc(el: GstElementHandle | undefined): el is GstAppSrcHandle {
  return el !== undefined && typeof el.push === "function";
}

let cached: GstBinding | null = null;

/**
 * Loaded on first use rather than at import: it is an optional native dependency, and
 * loading it runs gst_init, which image-only commands and unit tests should not pay for.
 */
export function loadGstBinding(): GstBinding {
  if (cached !== null) return cached;
  const require = createRequire(import.meta.url);
  let mod: unknown;
  try {
    mod = require("gstreamer-superficial");
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(
      `gstreamer-superficial could not be loaded (optional dependency; needs GStreamer 1.x and a native build): ${detail}`,
      { cause: err },
    );
  }
  if (typeof mod !== "object" || mod === null || typeof (mod as { Pipeline?: unknown }).Pipeline !== "function") {
    throw new Error("gstreamer-superficial loaded but exports no Pipeline constructor");
  }
  cached = mod as GstBinding;
  return cached;
}
