// One running GStreamer pipeline with an appsink, as both the video-file reader and the
// camera sources use it. Everything here works around how gstreamer-superficial 1.7.4
// behaves (see binding.ts): bus polls and appsink pulls each block a libuv threadpool
// thread, the bus poll only stops when it finds the pipeline in NULL after a message,
// pipelines are never freed, and samples arrive without stride or timestamps.
import { threadpoolSize } from "../threadpool.ts";
import type { PipelineProperty } from "../pipeline-description.ts";
import {
  isAppSink,
  loadGstBinding,
  type GstAppSinkHandle,
  type GstBusMessage,
  type GstElementHandle,
  type GstPipelineHandle,
  type GstStructureObject,
} from "./binding.ts";

/*
 * Each live pipeline parks one libuv threadpool thread in the binding's bus poll, and
 * every appsink pull needs another. With all threads parked, pulls never run, the bounded
 * appsink queues fill, no more bus messages come, and the process deadlocks (seen with 4
 * concurrent readers at the default pool size of 4; fs and dns stall with it). So owners
 * reserve the threads they will hold for as long as they run, and a reservation that
 * would leave no thread free is refused with a message saying what to change.
 */
let busPolls = 0;
let reserved = 0;

/** Pipelines whose bus poll still occupies a libuv threadpool thread. */
export function activeGstPipelines(): number {
  return busPolls;
}

/** Threadpool threads reserved by running pipelines (readers and cameras). */
export function reservedGstThreads(): number {
  return reserved;
}

/**
 * Reserves `threads` threadpool threads, or throws an Error with `refusal(pool, reserved)`
 * when that would leave none free. Returns the release function (idempotent).
 */
export function reserveGstThreads(threads: number, refusal: (pool: number, reservedNow: number) => string): () => void {
  const pool = threadpoolSize();
  if (reserved + threads > pool - 1) throw new Error(refusal(pool, reserved));
  reserved += threads;
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    reserved -= threads;
  };
}

/** A bus error as one line: element, GError text, and the debug detail when there is one. */
export function describeBusError(msg: GstBusMessage): string {
  const element = msg._src_element_name ?? "pipeline";
  let text = `GStreamer error in ${element}: ${msg.message ?? "unknown error"}`;
  // The debug string's first line is the C source location; a second line, when present,
  // carries the useful detail ("No such file ...").
  const lines = (msg.debug ?? "").split("\n").filter((l) => l.trim() !== "");
  if (lines.length > 1) text += ` (${lines[lines.length - 1].trim()})`;
  return text;
}

export function parseFramerate(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (m === null) return null;
  const num = Number(m[1]);
  const den = Number(m[2]);
  return num > 0 && den > 0 ? num / den : null;
}

/**
 * Packed RGB from an appsink buffer. GStreamer pads RGB rows to a multiple of 4 bytes (odd
 * widths) and the binding drops the stride, so it is recovered from the size and rows are
 * repacked only when padded. With `ownBuffer`, the result is guaranteed to be the sole view
 * of its ArrayBuffer, so it can be transferred to a worker thread without detaching
 * anything else: the binding's buffers already are (Nan::CopyBuffer allocates one backing
 * store per sample, checked here), so the copy only happens for padded rows or if a future
 * binding hands out slices of a pool.
 */
export function packRgb(buf: Buffer, width: number, height: number, where: string, ownBuffer = false): Uint8Array {
  const row = width * 3;
  const stride = buf.length / height;
  if (!Number.isInteger(stride) || stride < row || stride > row + 3) {
    throw new Error(`${where}: ${buf.length} bytes do not fit a ${width}x${height} RGB frame`);
  }
  if (stride === row) {
    const whole = buf.byteOffset === 0 && buf.buffer.byteLength === buf.length && buf.buffer instanceof ArrayBuffer;
    if (!ownBuffer || whole) return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    return new Uint8Array(buf);
  }
  const data = new Uint8Array(row * height);
  for (let y = 0; y < height; y++) data.set(buf.subarray(y * stride, y * stride + row), y * row);
  return data;
}

export interface RunnerSample {
  buf: Buffer;
  caps: GstStructureObject;
}

export interface RunnerEvents {
  onEos(): void;
  /** The pipeline is already in NULL when this is called; pending pulls return null. */
  onError(text: string): void;
}

/** pipeline.seek exists in the binding (Pipeline.cpp) but binding.ts does not declare it. */
interface SeekablePipeline extends GstPipelineHandle {
  seek(seconds: number, flags: number): boolean;
}

function isSeekable(p: GstPipelineHandle): p is SeekablePipeline {
  return typeof (p as { seek?: unknown }).seek === "function";
}

/*
 * After stop(), the bus poll parked in gst_bus_timed_pop returns only if it pops one of the
 * state-change messages posted on the way down. GStreamer (1.22 here, auto-flush-bus off or
 * not) flushes the pipeline's bus at READY->NULL, at the end of the synchronous stop, and
 * flushing discards what is queued without waking the poll: when the poll thread was not
 * scheduled during those few hundred microseconds (a loaded machine, about 1 stop in 100
 * here), it stays parked for good, holding its libuv thread and the event loop open. So a
 * poll not back soon after a stop is woken: pause() takes the pipeline NULL->READY, which
 * unflushes the bus and posts state changes; the callback that pops one stops the pipeline
 * again from within the dispatch, so the binding finds it in NULL and does not re-arm.
 */
const WAKE_AFTER_MS = 200;
const WAKE_ATTEMPTS = 10;

// GstSeekFlags: FLUSH drops what is queued (and the EOS), KEY_UNIT starts at a keyframe.
const SEEK_FLUSH = 1 << 0;
const SEEK_KEY_UNIT = 1 << 2;

/**
 * Builds, runs and stops one pipeline. Bus events reach the owner in a later macrotask,
 * never inside the binding's bus callback: Node drains microtasks before the binding
 * decides whether to re-arm its poll, so an owner stopping the pipeline from within that
 * dispatch (after onBus checked the state) would free the thread without onBus ever seeing
 * it, and the thread accounting would leak.
 */
export class GstRunner {
  readonly where: string;
  private readonly pipeline: GstPipelineHandle;
  readonly sink: GstAppSinkHandle;
  private events: RunnerEvents | null = null;
  /** The pipeline has been set to NULL (by stop() or after an error). */
  private halted = false;
  /** The owner has called stop(): no more events. */
  private closed = false;
  private busHeld = false;
  private pendingPulls = 0;
  private waiters: (() => void)[] = [];

  /** Throws an Error starting with `where` when the description does not parse. */
  constructor(launch: string, where: string, sinkName: string, properties: readonly PipelineProperty[] = []) {
    this.where = where;
    const gst = loadGstBinding();
    try {
      this.pipeline = new gst.Pipeline(launch);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new Error(`${where}: cannot build GStreamer pipeline: ${detail}`, { cause: err });
    }
    const sink = this.pipeline.findChild(sinkName);
    if (!isAppSink(sink)) throw new Error(`${where}: GStreamer pipeline has no appsink named ${sinkName}`);
    this.sink = sink;
    for (const p of properties) {
      const el = this.pipeline.findChild(p.element);
      if (el === undefined) throw new Error(`${where}: GStreamer pipeline has no element named ${p.element} to set ${p.name} on`);
      el[p.name] = p.value;
      // The binding silently ignores unknown properties and values of the wrong type.
      if (typeof p.value === "string" && el[p.name] !== p.value) {
        throw new Error(`${where}: could not set ${p.element}.${p.name} (binding read back ${String(el[p.name])})`);
      }
    }
    // Fewer messages are lost on the way to NULL with this off, though GStreamer still
    // flushes the bus there (see WAKE_AFTER_MS).
    this.pipeline["auto-flush-bus"] = false;
  }

  findChild(name: string): GstElementHandle | undefined {
    return this.pipeline.findChild(name);
  }

  start(events: RunnerEvents): void {
    if (this.events !== null) throw new Error(`${this.where}: pipeline started twice`);
    this.events = events;
    this.pipeline.play();
    // Sinks change state first and the appsink cannot fail to, so an appsink that did not
    // start means the pipeline failed its NULL->READY step (v4l2src with a missing device)
    // and is still in NULL. The binding's poll would then stop after the first message,
    // usually a sink's state change, and the error would never be seen.
    if (this.sink.eos === true) {
      this.drainFailedStart();
      return;
    }
    this.holdBus();
    this.pipeline.pollBus((msg) => this.onBus(msg));
  }

  /**
   * After stop() the bus holds [state changes to READY..., the error (if any), changes
   * back to NULL...], and at least the appsink's change to NULL comes last. Popping one
   * message per poll (each poll ends because the pipeline is NULL) until the error or the
   * first change to NULL therefore finds the error without ever waiting on an empty bus,
   * which would park a thread forever.
   */
  private drainFailedStart(): void {
    // The pipeline never left NULL, so its bus was never flushed: no wake-up needed.
    this.halt(false);
    this.holdBus();
    const popOne = (): void => {
      this.pipeline.pollBus((msg) => {
        if (msg.type === "error") {
          this.releaseBus();
          const text = describeBusError(msg);
          this.emit((e) => e.onError(text));
        } else if (msg.type === "state-changed" && msg["new-state"] === "GST_STATE_NULL") {
          this.releaseBus();
          this.emit((e) => e.onError("GStreamer pipeline failed to start and posted no error"));
        } else {
          popOne();
        }
      });
    };
    popOne();
  }

  private onBus(msg: GstBusMessage): void {
    if (!this.halted) {
      if (msg.type === "error") {
        const text = describeBusError(msg);
        // The streaming thread has stopped without EOS, so a pending pull would wait
        // forever; going to NULL makes the appsink return null to it.
        this.halt();
        this.emit((e) => e.onError(text));
      } else if (msg.type === "eos") {
        this.emit((e) => e.onEos());
      }
    }
    // The binding re-arms the poll after this callback only while the pipeline is not
    // NULL, so the first callback at or after halt() is the last one. Stopping again is a
    // no-op, except after a wake-up (see WAKE_AFTER_MS) left the pipeline in PAUSED.
    if (this.halted) {
      this.pipeline.stop();
      this.releaseBus();
    }
  }

  private emit(fn: (e: RunnerEvents) => void): void {
    setImmediate(() => {
      if (!this.closed && this.events !== null) fn(this.events);
    });
  }

  private holdBus(): void {
    this.busHeld = true;
    busPolls++;
  }

  private releaseBus(): void {
    if (!this.busHeld) return;
    this.busHeld = false;
    busPolls--;
    this.wake();
  }

  private wake(): void {
    if (this.busHeld || this.pendingPulls > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The next sample, or null at EOS, after an error, or once stopped. */
  pull(): Promise<RunnerSample | null> {
    this.pendingPulls++;
    return new Promise((resolve) => {
      this.sink.pull((buf, caps) => {
        this.pendingPulls--;
        resolve(buf === null ? null : { buf, caps });
        this.wake();
      });
    });
  }

  /** Back to the first frame after EOS; false when the binding or the source cannot seek. */
  seekToStart(): boolean {
    if (this.halted || !isSeekable(this.pipeline)) return false;
    return this.pipeline.seek(0, SEEK_FLUSH | SEEK_KEY_UNIT) === true;
  }

  durationSeconds(): number {
    return this.pipeline.queryDuration();
  }

  /** Ends the stream after what the sources hold (an appsrc's queue): EOS reaches the sink, then onEos. */
  endOfStream(): void {
    if (!this.halted) this.pipeline.sendEOS();
  }

  private halt(wakeBus = true): void {
    if (this.halted) return;
    this.halted = true;
    this.pipeline.stop();
    if (wakeBus) this.wakeBusIfParked(1);
  }

  /** See WAKE_AFTER_MS: wakes a bus poll that missed the messages of the stop. */
  private wakeBusIfParked(attempt: number): void {
    // Unref'd: a parked poll keeps the event loop alive by itself, and a released one must
    // not hold a finished process open for the wait.
    const timer = setTimeout(() => {
      if (!this.busHeld) return;
      if (attempt > WAKE_ATTEMPTS) {
        process.emitWarning(`${this.where}: GStreamer bus poll still parked ${WAKE_ATTEMPTS} wake-ups after stop; one libuv threadpool thread stays held`);
        return;
      }
      this.pipeline.pause();
      this.wakeBusIfParked(attempt + 1);
    }, WAKE_AFTER_MS);
    timer.unref();
  }

  /** Pipeline to NULL (synchronous) and no more events. Safe to call more than once. */
  stop(): void {
    this.closed = true;
    this.halt();
  }

  /** Resolves once the bus poll and every pull have given their threads back. */
  released(): Promise<void> {
    if (!this.busHeld && this.pendingPulls === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
