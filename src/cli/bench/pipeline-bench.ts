// `perceptd bench pipeline`: what the whole daemon delivers next to what ONNX Runtime alone
// can do, on the same video and model, in one run on one machine:
//
//   (a) raw: N frames decoded and resized up front (untimed), then sequential
//       `await session.run` in this process's main thread. The ceiling for one frame at a
//       time.
//   (a2) raw side by side: the same frames through as many sessions as the daemon runs for
//       an unpaced replay (inference.replayWorkers), each in a worker thread with its share
//       of the cores (raw-sessions.ts). The ceiling for that arrangement; only when it has
//       more than one session.
//   (a3) raw paced: (a)'s loop and session at (c)'s rate, idle between runs as the daemon's
//       worker is. What pacing alone does to ORT's tail on this machine, beside (c).
//   (b) unpaced: the daemon on the file with realtime: false. Unpaced file sources deliver
//       every decoded frame (appsink drop=false) and decoding waits until the camera's
//       waiting slot is free (backpressure), so processed/s is the daemon's throughput.
//   (c) paced: the same file at a fraction of (a)'s throughput, below saturation: latency
//       with (almost) no queueing.
//   (c2) the bus alone at (c)'s rate: detections messages from a child process through the
//       daemon's own publisher (bus-floor-publisher.ts), no camera, no model. What ZeroMQ
//       over loopback and two processes waking up cost here, beside (c).
//   (c3) the model and the bus at (c)'s rate: a child process runs (a)'s loop paced as (c)
//       and publishes a message through the daemon's publisher after each run
//       (bus-floor-publisher.ts with a model). The least any design of the daemon could do
//       per frame, with nothing of the daemon between the model and the bus: what (c)'s
//       target asks of the daemon, measured on this machine without the daemon.
//   (d) overloaded: the same file at a multiple of (a)'s throughput: latency and drops
//       when input outruns inference.
//
// (b)-(d) start the real daemon as a child process (daemon-process.ts) and time it from a
// ZeroMQ subscriber here, so the numbers include everything an integrator pays: GStreamer,
// the hop to the inference worker, decode + NMS, message encoding and the bus.
//
// Paced input is the same file through `videorate ! video/x-raw,framerate=R ! clocksync` as
// an expert `pipeline` source: clocksync releases buffers on the pipeline clock like a
// camera, videorate drops or repeats frames to make R, and the content still advances at
// its own speed. (The file source's realtime mode can only play at the file's 10 fps.)
//
// End-to-end latency is the subscriber's receipt time minus the message's tIngestNs. Both
// are process.hrtime.bigint(), i.e. libuv's uv_hrtime(), which on Linux reads
// clock_gettime(CLOCK_MONOTONIC): one clock per boot of the machine, shared by all its
// processes, not a per-process counter. The bench does not take that on trust: it checks it
// at start (checkMonotonicClock: a child's reading must lie between the parent's readings
// around the spawn) and on every message (daemon spawn <= ingest <= publish <= receipt).
import os from "node:os";
import { spawn } from "node:child_process";
import { get as httpGet } from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import * as ort from "onnxruntime-node";
import { framerateFraction } from "../../ingest/pipeline-description.ts";
import { DEFAULT_MANIFEST_PATH } from "../../model/manifest.ts";
import type { DetectionsMessage } from "../../bus/detections-message.ts";
import {
  BUS_BOUND_MSG,
  BUS_FLOOR_BOUND_MSG,
  BUS_FLOOR_PUBLISHER,
  collectDetections,
  killAllDaemons,
  removeConfig,
  runDaemon,
  runNodeProcess,
  waitForEndpoint,
  writeConfig,
  type DetectionsSubscription,
  type LogLine,
  type RunningDaemon,
} from "./daemon-process.ts";
import { runSessionsSideBySide } from "./raw-sessions.ts";
import { resolveReplayWorkers, threadsPerSession } from "../../infer/inference-pool.ts";
import { MAX_REPLAY_WORKERS } from "../../config/schema.ts";
import { commandLineOf, DEFAULT_BENCH_VIDEO, latencyStats, type LatencyStats } from "./model-bench.ts";
import { machineInfo, type MachineInfo } from "../../util/machine-info.ts";
import { formatMs, formatRatio, formatSignedMs, markdownTable, MISSING, type Column } from "./table.ts";
import { LATENCY_BUCKETS_SECONDS, type Stage } from "../../metrics/metrics.ts";
import { DEFAULT_OVERLOAD_FACTOR, DEFAULT_PACED_FRACTION, DEFAULT_PIPELINE_FRAMES, DEFAULT_PIPELINE_WARMUP } from "./pipeline-defaults.ts";
import { interruptTimeAccounting, systemCpuNs, type InterruptTimeAccounting, type SystemCpuNs } from "../../util/system-cpu.ts";
import { collectGarbage } from "./collect-garbage.ts";
import type { ModelRun } from "./bus-floor-publisher.ts";
import { createRawSession, decodeRawFrames, loadRawModel } from "./raw-model.ts";
import { timedRun } from "./timed-run.ts";
import { renderFrameTrace, traceFrames, type FrameTrace } from "./frame-trace.ts";

/** The targets the table judges against; printed, never asserted. */
export const TARGETS = {
  /** (b) processed/s >= this x (a) frames/s */
  throughputRatio: 0.95,
  /** (c) e2e p99 <= (a) inference p99 + this */
  pacedSlackMs: 5,
  /** (d) e2e p99 < this x (a) inference p99 */
  overloadRatio: 2.5,
} as const;

const CAMERA = "cam0";
/** How long the daemon may take from spawn to its first message: model load, warm-up, pipeline preroll. */
const FIRST_MESSAGE_TIMEOUT_MS = 120_000;
/** No message for this long once they flow: the daemon is stuck or the source died. */
const STALL_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5000;

export type ScenarioId = "raw" | "raw-parallel" | "raw-paced" | "unpaced" | "paced" | "bus-paced" | "model-bus-paced" | "overloaded";
/** In the order of the report's rows. */
export const SCENARIO_IDS: readonly ScenarioId[] = ["raw", "raw-parallel", "raw-paced", "unpaced", "paced", "bus-paced", "model-bus-paced", "overloaded"];

/** Scenarios timed in this process on pre-decoded frames, without a daemon. */
function isRaw(id: ScenarioId): boolean {
  return id === "raw" || id === "raw-parallel" || id === "raw-paced";
}

/** Reference rows: measured for comparison, judged against no target. */
function isReference(id: ScenarioId): boolean {
  return isRaw(id) || id === "bus-paced" || id === "model-bus-paced";
}

/** (c)'s input rate for (a)'s throughput: also the rate of (a3), (c2) and (c3). */
export function pacedRate(rawFps: number, fraction: number): number {
  return round1(Math.max(0.5, fraction * rawFps));
}

export interface PipelineBenchOptions {
  /** Default: the repository's .cache/fixtures/vtest.avi. */
  video?: string;
  /** Timed frames per scenario: session runs for (a)-(a3), messages for (b)-(d), (c2) and (c3). Default 300. */
  frames?: number;
  /** Untimed runs / discarded messages before each scenario's timed frames. Default 5, at least 1. */
  warmup?: number;
  /** Manifest model; default: the manifest's default. */
  model?: string;
  /** ONNX Runtime intra-op threads for (a) and the daemon alike; default 0 (ORT decides, as the daemon's config). */
  threads?: number;
  /** ORT threads busy-wait between operators, for (a) and the daemon alike; default false (the daemon's default, inference.allowSpinning). */
  spinning?: boolean;
  /** The daemon's inference.replayWorkers for (b), and (a2)'s sessions; default 0 (the daemon's automatic choice). */
  replayWorkers?: number;
  manifestPath?: string;
  /** (c)'s input rate as a fraction of (a)'s throughput. Default 0.6. */
  pacedFraction?: number;
  /** (d)'s input rate as a multiple of (a)'s throughput. Default 3. */
  overloadFactor?: number;
  /** Recorded in the result; default: this process's command line. */
  command?: string;
  /** Added to the daemons' environment, e.g. NODE_OPTIONS to preload an experiment. */
  daemonEnv?: NodeJS.ProcessEnv;
  /**
   * Runs the daemons at log level trace, so that each writes its per-frame timings
   * (src/daemon/frame-timings.ts), and takes each daemon scenario's slowest frames apart
   * (frame-trace.ts). Default false: the extra log line per frame is work the daemon
   * otherwise does not do.
   */
  frameTrace?: boolean;
  onProgress?: (event: PipelineBenchProgress) => void;
}

export type PipelineBenchProgress =
  | { kind: "step"; scenario: ScenarioId | null; text: string }
  | { kind: "decode"; done: number; total: number }
  | { kind: "frames"; scenario: ScenarioId; done: number; total: number; warmup: boolean }
  | { kind: "scenario-done"; result: ScenarioResult };

export interface ClockSample {
  parentBeforeNs: string;
  childNs: string;
  parentAfterNs: string;
}

export interface ClockCheck {
  /** Every child reading lay between the parent's readings before the spawn and after its output. */
  ok: boolean;
  samples: ClockSample[];
  /** Messages checked for daemon spawn <= tIngest <= tPublish <= receipt, and how many broke it. */
  messagesChecked: number;
  messageViolations: number;
}

export interface InferenceFigures {
  /** "measured": every run timed here; "histogram": estimated from the daemon's /metrics buckets. */
  source: "measured" | "histogram";
  runs: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

/** One figure per daemon stage over the measured window, from its perceptd_stage_latency_seconds histograms. */
export interface StageTimes {
  ingestToWorkerMs: number | null;
  preprocessMs: number | null;
  inferenceMs: number | null;
  decodeMs: number | null;
  /** the worker's result reaching the main thread */
  workerToMainMs: number | null;
  publishMs: number | null;
  /** the daemon's own end-to-end: ingest -> handed to the bus */
  endToEndMs: number | null;
}

/** Each StageTimes field and the perceptd_stage_latency_seconds stage it reads. */
const STAGE_OF: Record<keyof StageTimes, Stage> = {
  ingestToWorkerMs: "ingest_to_worker",
  preprocessMs: "preprocess",
  inferenceMs: "inference",
  decodeMs: "decode",
  workerToMainMs: "worker_to_main",
  publishMs: "publish",
  endToEndMs: "end_to_end",
};

/** Means (exact: sum / count) and p99s (read from the buckets: estimates, see histogramQuantile). */
export interface StageFigures {
  mean: StageTimes;
  p99: StageTimes;
}

export interface DropFigures {
  /** perceptd_frames_dropped_total, all reasons, scraped at the end (before the daemon stops) */
  droppedTotal: number;
  /** perceptd_frames_ingested_total at the same scrape */
  ingestedTotal: number;
  /** both counters' growth between the scrapes around the measured window */
  droppedWindow: number;
  ingestedWindow: number;
  /** sequence numbers within the window that never reached the subscriber */
  seqGaps: number;
}

export interface CpuGroup {
  /** "main thread", "GStreamer streaming", "libuv pool", "other (inference worker, ONNX Runtime, V8)" */
  name: string;
  threads: number;
  /** CPU time over the window, % of one core (this machine's total is cores x 100) */
  cpuPct: number;
  /** time runnable but waiting for a core, % of the window: CPU contention */
  waitPct: number;
}

/** Per-thread CPU of the process that ran the scenario, over its window, from /proc (Linux). */
export interface CpuFigures {
  pid: number;
  totalPct: number;
  /** the bench process itself (the subscriber) while a daemon runs; null for (a), where it is `totalPct` */
  benchProcessPct: number | null;
  /**
   * The machine's busy time (/proc/stat) less the processes above and the kernel's
   * interrupt time: other work competing for the same cores (a build, a test run), which
   * makes every figure of the window suspect.
   */
  otherProcessesPct: number | null;
  /**
   * The kernel's interrupt and softirq time over the window (system-cpu.ts): no process's,
   * and the scenario itself can raise it, so it is shown beside the others rather than
   * counted as other work. Where the kernel samples it at the tick
   * (machine.interruptTimeAccounting), it can be mostly idle time.
   */
  interruptPct: number | null;
  groups: CpuGroup[];
  /** the busiest threads, for a closer look */
  top: { tid: number; name: string; cpuPct: number; waitPct: number }[];
}

export interface ScenarioInput {
  description: string;
  /** the rate asked for; null: as fast as it decodes (or pre-decoded) */
  targetFps: number | null;
  /** frames ingested per second over the window, from seq and tIngestNs; null for (a) */
  measuredFps: number | null;
}

export interface ScenarioResult {
  id: ScenarioId;
  label: string;
  input: ScenarioInput;
  /** timed frames: session runs for (a)-(a3), messages for (b)-(d), (c2) and (c3) */
  frames: number;
  /** (a)-(a3): the timed loop; (b)-(d), (c2), (c3): first to last message of the window */
  durationS: number;
  processedPerSec: number;
  /** receipt - tIngestNs; null for (a)-(a3) */
  e2e: LatencyStats | null;
  /**
   * e2e split at the message's tPublishNs, per message: inside the daemon (queueing,
   * worker hop, inference, decode + NMS, back to the main thread) and after it (encoding,
   * ZeroMQ, loopback TCP, the subscriber waking up). Exact, unlike the histogram figures.
   */
  split: { ingestToPublish: LatencyStats; publishToReceipt: LatencyStats } | null;
  inference: InferenceFigures | null;
  drops: DropFigures | null;
  stages: StageFigures | null;
  /** (a)-(a3): this process; (b)-(d): the daemon; (c2), (c3): the publisher. null where /proc/<pid>/task/<tid>/schedstat is missing */
  cpu: CpuFigures | null;
  /** (b)-(d): the camera source the daemon ran, its exit status, warnings it logged; (c2), (c3): the publisher's exit status */
  daemon: { source: Record<string, unknown>; exit: number | string | null; warnings: string[] } | null;
  /** (a)-(a3): inference per run; (b)-(d), (c2), (c3): e2e per message, in arrival order */
  samplesMs: number[];
  /** (b)-(d) with --frame-trace: each frame taken apart; null if the daemon logged no timings */
  frameTrace?: FrameTrace | null;
}

export type TargetId = "throughput" | "paced-latency" | "overload-latency";

export interface TargetResult {
  id: TargetId;
  scenario: ScenarioId;
  /** e.g. "processed/s >= 0.95x raw" */
  description: string;
  measured: number;
  /** the bound `measured` is compared with, in the same unit */
  limit: number;
  /** measured / (a)'s figure it is judged against */
  ratio: number;
  pass: boolean;
  /** what the table prints before PASS/FAIL */
  text: string;
}

export interface PipelineBenchResult {
  bench: "pipeline";
  schemaVersion: 1;
  startedAt: string;
  command: string;
  machine: MachineInfo & {
    /** 1/5/15-minute load averages: anything else running skews every figure */
    loadAvgStart: number[];
    loadAvgEnd: number[];
    /** how /proc/stat's interrupt time (CpuFigures.interruptPct) was counted; null: unknown */
    interruptTimeAccounting: InterruptTimeAccounting | null;
  };
  versions: { node: string; onnxruntime: string };
  settings: {
    video: string;
    model: string;
    input: string;
    frames: number;
    warmup: number;
    /** intra-op threads as configured (0: ORT's default) */
    threads: number;
    interOpThreads: number;
    /** inference.allowSpinning, raw loop and daemon alike */
    allowSpinning: boolean;
    /** inference.replayWorkers as configured (0: automatic) and as it resolved: (b)'s sessions, and (a2)'s */
    replayWorkers: { configured: number; sessions: number; threadsEach: number };
    pacedFraction: number;
    overloadFactor: number;
    rawLoop: "main thread";
    percentiles: string;
  };
  clock: ClockCheck;
  scenarios: ScenarioResult[];
  targets: TargetResult[];
  notes: string[];
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`bench pipeline: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

function positiveNumber(name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`bench pipeline: ${name} must be a positive number, got ${String(v)}`);
  return v;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function msBetween(a: bigint, b: bigint): number {
  return Number(b - a) / 1e6;
}

function defaultCommand(): string {
  const script = process.argv[1];
  return commandLineOf(["node", ...(script ? [relative(process.cwd(), script) || script] : []), ...process.argv.slice(2)]);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

// ---------------------------------------------------------------------------------------
// Clock

async function childHrtime(): Promise<ClockSample> {
  const parentBefore = process.hrtime.bigint();
  const child = spawn(process.execPath, ["-e", "process.stdout.write(String(process.hrtime.bigint()))"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((res, rej) => {
    child.on("error", rej);
    child.on("exit", (c) => res(c));
  });
  const parentAfter = process.hrtime.bigint();
  if (code !== 0 || !/^\d+$/.test(out)) throw new Error(`clock check: child exited ${String(code)} printing ${JSON.stringify(out)}`);
  return { parentBeforeNs: parentBefore.toString(), childNs: out, parentAfterNs: parentAfter.toString() };
}

/**
 * Verifies that process.hrtime.bigint() is one clock across processes: a child spawned now
 * must read a value between this process's readings before the spawn and after the child's
 * output. A per-process clock (one starting at 0 at process start, say) would read far below.
 */
export async function checkMonotonicClock(tries = 3): Promise<Pick<ClockCheck, "ok" | "samples">> {
  const samples: ClockSample[] = [];
  for (let i = 0; i < tries; i++) samples.push(await childHrtime());
  const ok = samples.every((s) => BigInt(s.parentBeforeNs) <= BigInt(s.childNs) && BigInt(s.childNs) <= BigInt(s.parentAfterNs));
  return { ok, samples };
}

// ---------------------------------------------------------------------------------------
// Prometheus text

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments and blank lines skipped). */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

function matches(s: PromSample, name: string, labels: Record<string, string>): boolean {
  return s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
}

/** Sum of every sample of `name` whose labels include `labels`. */
export function sumSamples(samples: readonly PromSample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => matches(s, name, labels)).reduce((a, s) => a + s.value, 0);
}

export interface HistogramSnapshot {
  /** cumulative counts by upper bound, ascending, +Inf last */
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

export function histogramOf(samples: readonly PromSample[], name: string, labels: Record<string, string>): HistogramSnapshot {
  const buckets = samples
    .filter((s) => matches(s, `${name}_bucket`, labels))
    .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
  return { buckets, sum: sumSamples(samples, `${name}_sum`, labels), count: sumSamples(samples, `${name}_count`, labels) };
}

/** after - before, bucket by bucket: the observations made in between. */
export function histogramDelta(after: HistogramSnapshot, before: HistogramSnapshot): HistogramSnapshot {
  const prev = new Map(before.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (prev.get(b.le) ?? 0) })),
    sum: after.sum - before.sum,
    count: after.count - before.count,
  };
}

/**
 * Prometheus' histogram_quantile: linear interpolation inside the bucket the rank falls in,
 * from 0 for the first bucket; a rank in the +Inf bucket gives the highest finite bound.
 * An estimate: it can be off by up to the width of that bucket. NaN without observations.
 */
export function histogramQuantile(h: HistogramSnapshot, q: number): number {
  const total = h.buckets.length > 0 ? h.buckets[h.buckets.length - 1].count : 0;
  if (!(total > 0)) return NaN;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerLe;
      const inBucket = b.count - lowerCount;
      return inBucket > 0 ? lowerLe + ((b.le - lowerLe) * (rank - lowerCount)) / inBucket : b.le;
    }
    lowerLe = b.le;
    lowerCount = b.count;
  }
  return lowerLe;
}

/**
 * GET `${url}/metrics`, the body unparsed. node:http, not fetch(): the bench shares the
 * daemon's cores, and a process's first fetch() loads and compiles undici, 70-100 ms of CPU
 * on the 2-core build VM against 15-25 ms for a first node:http GET (later ones 4-11 ms
 * against 1-3 ms). The window-start scrape's text is parsed after the window for the same
 * reason.
 */
function scrapeMetricsText(url: string): Promise<string> {
  return new Promise((resolveText, reject) => {
    const req = httpGet(`${url}/metrics`, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", (err) => reject(new Error(`${url}/metrics: ${err.message}`)));
      res.on("end", () => {
        if (res.statusCode === 200) resolveText(Buffer.concat(chunks).toString("utf8"));
        else reject(new Error(`${url}/metrics answered ${String(res.statusCode)}`));
      });
    });
    req.on("error", (err) => reject(new Error(`${url}/metrics: ${err.message}`)));
  });
}

// ---------------------------------------------------------------------------------------
// CPU per thread

interface ThreadSample {
  name: string;
  /** on a core, ns */
  cpuNs: number;
  /** runnable, waiting for a core, ns */
  waitNs: number;
}

interface CpuSnapshot {
  pid: number;
  atNs: bigint;
  threads: Map<number, ThreadSample>;
}

/**
 * /proc/<pid>/task/<tid>/schedstat: ns on a core, ns waiting on a run queue, timeslices.
 * Chosen over /proc/.../stat's ticks for its nanoseconds and for the wait time, which shows
 * oversubscription directly. null where it does not exist (not Linux, no CONFIG_SCHED_INFO).
 */
export function sampleThreads(pid: number): CpuSnapshot | null {
  const atNs = process.hrtime.bigint();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const threads = new Map<number, ThreadSample>();
  for (const tid of tids) {
    try {
      const [cpu, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").trim().split(/\s+/).map(Number);
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      if (Number.isFinite(cpu) && Number.isFinite(wait)) threads.set(Number(tid), { name, cpuNs: cpu, waitNs: wait });
    } catch {
      // The thread ended between readdir and read.
    }
  }
  return threads.size > 0 ? { pid, atNs, threads } : null;
}

/**
 * Thread names are all the grouping there is: GStreamer names its streaming threads
 * "<element>:<pad>", libuv its pool "libuv-worker"; Node's worker, ONNX Runtime's pool and
 * V8's helpers all stay "node", so they share a group.
 */
function groupOf(pid: number, tid: number, name: string): string {
  if (tid === pid) return "main thread";
  if (name.includes(":")) return "GStreamer streaming";
  if (name.startsWith("libuv")) return "libuv pool";
  return "other (inference worker, ONNX Runtime, V8)";
}

interface CpuWindowStart {
  target: CpuSnapshot | null;
  /** the bench process, when the target is another process */
  bench: CpuSnapshot | null;
  system: SystemCpuNs | null;
}

function totalCpuNs(a: CpuSnapshot, b: CpuSnapshot): number {
  let total = 0;
  for (const [tid, t] of b.threads) total += t.cpuNs - (a.threads.get(tid)?.cpuNs ?? 0);
  return total;
}

/** Opens a CPU window on process `pid` (the bench itself or a daemon). */
export function startCpuWindow(pid: number): CpuWindowStart {
  return {
    system: systemCpuNs(),
    bench: pid === process.pid ? null : sampleThreads(process.pid),
    target: sampleThreads(pid),
  };
}

/** Closes a window opened by startCpuWindow; null where /proc could not be read. */
export function endCpuWindow(start: CpuWindowStart, pid: number): CpuFigures | null {
  const target = sampleThreads(pid);
  const bench = pid === process.pid ? null : sampleThreads(process.pid);
  const system = systemCpuNs();
  const a = start.target;
  if (a === null || target === null || a.pid !== target.pid) return null;
  const windowNs = Number(target.atNs - a.atNs);
  if (!(windowNs > 0)) return null;
  const pct = (ns: number): number => (ns / windowNs) * 100;
  const groups = new Map<string, CpuGroup>();
  const top: CpuFigures["top"] = [];
  for (const [tid, t] of target.threads) {
    // A thread born inside the window counts from 0.
    const before = a.threads.get(tid);
    const cpu = t.cpuNs - (before?.cpuNs ?? 0);
    const wait = t.waitNs - (before?.waitNs ?? 0);
    const name = groupOf(target.pid, tid, t.name);
    const g = groups.get(name) ?? { name, threads: 0, cpuPct: 0, waitPct: 0 };
    g.threads++;
    g.cpuPct += pct(cpu);
    g.waitPct += pct(wait);
    groups.set(name, g);
    top.push({ tid, name: t.name, cpuPct: pct(cpu), waitPct: pct(wait) });
  }
  top.sort((x, y) => y.cpuPct - x.cpuPct);
  const targetNs = totalCpuNs(a, target);
  const benchNs = start.bench !== null && bench !== null ? totalCpuNs(start.bench, bench) : null;
  const ours = targetNs + (benchNs ?? 0);
  const busyNs = start.system === null || system === null ? null : system.busyNs - start.system.busyNs;
  const interruptNs = start.system === null || system === null ? null : system.interruptNs - start.system.interruptNs;
  return {
    pid: target.pid,
    totalPct: pct(targetNs),
    benchProcessPct: benchNs === null ? null : pct(benchNs),
    // Tick-granular (10 ms), so small negatives are rounding; clamped to 0.
    otherProcessesPct: busyNs === null || interruptNs === null ? null : Math.max(0, pct(busyNs - interruptNs - ours)),
    interruptPct: interruptNs === null ? null : pct(interruptNs),
    groups: [...groups.values()].sort((x, y) => y.cpuPct - x.cpuPct),
    top: top.slice(0, 8),
  };
}

// ---------------------------------------------------------------------------------------
// (a) raw loop

interface RawOutcome {
  result: ScenarioResult;
  /** (a2), when the daemon runs more than one session for a replay */
  parallel: ScenarioResult | null;
  /** (a3) */
  paced: ScenarioResult;
  modelName: string;
  input: string;
}

/** (a2)'s arrangement: sessions side by side, intra-op threads each (0: ORT's default). */
interface SideBySide {
  sessions: number;
  threadsEach: number;
}

async function runRawLoop(
  video: string,
  frames: number,
  warmup: number,
  threads: number,
  spinning: boolean,
  manifestPath: string,
  modelName: string | undefined,
  sideBySide: SideBySide | null,
  pacedFraction: number,
  progress: (e: PipelineBenchProgress) => void,
): Promise<RawOutcome> {
  const model = await loadRawModel(manifestPath, modelName);
  const spec = model.input;
  let tensors = await decodeRawFrames(video, frames, spec, (done, total) => progress({ kind: "decode", done, total }));

  progress({ kind: "step", scenario: "raw", text: `ONNX Runtime session for ${model.name}, main thread` });
  const session = await createRawSession(model, { threads, spinning });
  const samples: number[] = [];
  let loopS: number;
  let cpuStart: CpuWindowStart | undefined;
  let cpu: CpuFigures | null = null;
  let paced: ScenarioResult;
  try {
    const run = (i: number): Promise<number> => timedRun(session, spec.name, tensors[i % tensors.length]);
    for (let w = 0; w < warmup; w++) {
      progress({ kind: "frames", scenario: "raw", done: w + 1, total: warmup, warmup: true });
      await run(w);
    }
    collectGarbage();
    cpuStart = startCpuWindow(process.pid);
    const start = process.hrtime.bigint();
    for (let i = 0; i < frames; i++) {
      samples.push(await run(i));
      progress({ kind: "frames", scenario: "raw", done: i + 1, total: frames, warmup: false });
    }
    loopS = msBetween(start, process.hrtime.bigint()) / 1e3;
    cpu = endCpuWindow(cpuStart, process.pid);

    // (a3): the same session, already warm, at (c)'s rate.
    const fps = pacedRate(frames / loopS, pacedFraction);
    progress({ kind: "step", scenario: "raw-paced", text: `the same loop paced at ${fps} runs/s, as (c)` });
    const periodNs = BigInt(Math.round(1e9 / fps));
    const pacedSamples: number[] = [];
    collectGarbage();
    const pacedCpuStart = startCpuWindow(process.pid);
    const pacedStart = process.hrtime.bigint();
    for (let i = 0; i < frames; i++) {
      // An absolute schedule, like a camera's: a slow run does not push the next ones back.
      const waitMs = Number(pacedStart + BigInt(i) * periodNs - process.hrtime.bigint()) / 1e6;
      if (waitMs > 0) await new Promise((r) => setTimeout(r, Math.ceil(waitMs)));
      pacedSamples.push(await run(i));
      progress({ kind: "frames", scenario: "raw-paced", done: i + 1, total: frames, warmup: false });
    }
    const pacedS = msBetween(pacedStart, process.hrtime.bigint()) / 1e3;
    paced = rawScenario(
      "raw-paced",
      "(a3) raw ORT loop, paced as (c)",
      `${pacedSamples.length} runs of (a), paced at ${fps}/s`,
      pacedSamples,
      pacedS,
      endCpuWindow(pacedCpuStart, process.pid),
      fps,
    );
  } finally {
    await session.release();
  }
  let parallel: ScenarioResult | null = null;
  try {
    if (sideBySide !== null) {
      progress({ kind: "step", scenario: "raw-parallel", text: `${sideBySide.sessions} sessions side by side, one worker thread each` });
      parallel = await runSideBySide(model.bytes, spec.name, tensors, sideBySide, warmup, frames, spinning);
    }
  } finally {
    // Released before the daemon scenarios, so this process holds no ORT threads or frames meanwhile.
    tensors = [];
  }
  const result = rawScenario("raw", "(a) raw ORT loop, main thread", `${samples.length} frames pre-decoded and resized (untimed)`, samples, loopS, cpu);
  return { result, parallel, paced, modelName: model.name, input: `${spec.dtype} ${spec.layout} ${spec.width}x${spec.height}` };
}

/** A scenario timed here on pre-decoded frames: every run's time, no daemon, no bus. `targetFps`: paced at that rate. */
function rawScenario(
  id: ScenarioId,
  label: string,
  description: string,
  samplesMs: number[],
  durationS: number,
  cpu: CpuFigures | null,
  targetFps: number | null = null,
): ScenarioResult {
  const stats = latencyStats(samplesMs);
  return {
    id,
    label,
    input: { description, targetFps, measuredFps: targetFps === null ? null : samplesMs.length / durationS },
    frames: samplesMs.length,
    durationS,
    processedPerSec: samplesMs.length / durationS,
    e2e: null,
    split: null,
    inference: { source: "measured", runs: stats.runs, p50Ms: stats.p50Ms, p99Ms: stats.p99Ms, meanMs: stats.meanMs },
    drops: null,
    stages: null,
    cpu,
    daemon: null,
    samplesMs,
  };
}

/** "2 sessions × 1 thread": the label of (a2) and its note. */
function sideBySideText(a: SideBySide): string {
  const each = a.threadsEach === 0 ? "ORT's default threads" : `${a.threadsEach} thread${a.threadsEach === 1 ? "" : "s"}`;
  return `${a.sessions} sessions × ${each}`;
}

async function runSideBySide(
  model: Uint8Array,
  inputName: string,
  tensors: readonly ort.Tensor[],
  arrangement: SideBySide,
  warmup: number,
  frames: number,
  spinning: boolean,
): Promise<ScenarioResult> {
  let cpuStart: CpuWindowStart | undefined;
  let cpu: CpuFigures | null = null;
  const run = await runSessionsSideBySide({
    model,
    inputName,
    tensors,
    sessions: arrangement.sessions,
    session: { executionProviders: ["cpu"], intraOpThreads: arrangement.threadsEach, interOpThreads: 1, allowSpinning: spinning },
    warmup,
    runs: frames,
    onStart: () => (cpuStart = startCpuWindow(process.pid)),
    // Before the threads end: a thread gone from /proc takes its CPU time with it.
    onEnd: () => (cpu = cpuStart === undefined ? null : endCpuWindow(cpuStart, process.pid)),
  });
  return rawScenario(
    "raw-parallel",
    `(a2) raw ORT, ${sideBySideText(arrangement)}`,
    `${run.runs} runs over the same pre-decoded frames, split between the sessions`,
    run.samplesMs,
    run.durationS,
    cpu,
  );
}

// ---------------------------------------------------------------------------------------
// (b)-(d) the daemon

/** A GStreamer double-quoted string: backslash and quote escaped, so no path can change the pipeline. */
function gstQuoted(s: string): string {
  if (/[\n\r]/.test(s)) throw new Error(`bench pipeline: video path ${JSON.stringify(s)} contains a line break`);
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The file played at `fps` on the pipeline clock, as a camera would deliver it. */
export function pacedFileSource(path: string, fps: number): Record<string, unknown> {
  return {
    type: "pipeline",
    pipeline: `filesrc location=${gstQuoted(resolve(path))} ! decodebin ! videorate ! video/x-raw,framerate=${framerateFraction(fps)} ! clocksync`,
    // live: the appsink keeps only the newest frame, as for a camera; EOS restarts it.
    live: true,
  };
}

interface DaemonScenarioSpec {
  id: Exclude<ScenarioId, "raw">;
  label: string;
  source: Record<string, unknown>;
  input: Omit<ScenarioInput, "measuredFps">;
}

interface DaemonContext {
  frames: number;
  warmup: number;
  threads: number;
  spinning: boolean;
  replayWorkers: number;
  modelName: string;
  manifestPath: string;
  progress: (e: PipelineBenchProgress) => void;
  clock: { checked: number; violations: number };
  env: NodeJS.ProcessEnv;
  frameTrace: boolean;
}

function daemonConfig(spec: DaemonScenarioSpec, ctx: DaemonContext): Record<string, unknown> {
  return {
    log: { level: ctx.frameTrace ? "trace" : "info", format: "json" },
    model: { name: ctx.modelName, ...(ctx.manifestPath === DEFAULT_MANIFEST_PATH ? {} : { manifest: ctx.manifestPath }) },
    // A live source that reaches the end restarts after the backoff; short, so a long run
    // loses little time at the end of the clip.
    cameras: [{ id: CAMERA, source: spec.source, restart: { initialBackoffMs: 10, maxBackoffMs: 1000, jitter: 0 } }],
    // Port 0: the daemon binds a free port and logs it, so no other process can take it first.
    bus: { endpoints: ["tcp://127.0.0.1:0"] },
    metrics: { enabled: true, host: "127.0.0.1", port: 0 },
    inference: { executionProviders: ["cpu"], intraOpThreads: ctx.threads, interOpThreads: 1, allowSpinning: ctx.spinning, replayWorkers: ctx.replayWorkers },
    status: { mode: "off" },
  };
}

function stageMean(delta: HistogramSnapshot): number | null {
  return delta.count > 0 ? (delta.sum / delta.count) * 1e3 : null;
}

/** The stage histograms' bucket bounds up to `maxSeconds`, in ms, for the report's notes. */
function bucketBoundsText(maxSeconds: number): string {
  return LATENCY_BUCKETS_SECONDS.filter((b) => b <= maxSeconds)
    .map((b) => String(+(b * 1e3).toFixed(1)))
    .join(", ");
}

function stageP99(delta: HistogramSnapshot): number | null {
  return delta.count > 0 ? histogramQuantile(delta, 0.99) * 1e3 : null;
}

/** `read` applied to every stage's histogram. */
function stageTimes(hist: (stage: Stage) => HistogramSnapshot, read: (h: HistogramSnapshot) => number | null): StageTimes {
  const at = (k: keyof StageTimes): number | null => read(hist(STAGE_OF[k]));
  return {
    ingestToWorkerMs: at("ingestToWorkerMs"),
    preprocessMs: at("preprocessMs"),
    inferenceMs: at("inferenceMs"),
    decodeMs: at("decodeMs"),
    workerToMainMs: at("workerToMainMs"),
    publishMs: at("publishMs"),
    endToEndMs: at("endToEndMs"),
  };
}

function warningsOf(logs: readonly LogLine[]): string[] {
  return logs
    .filter((l) => l.level === "warn" || l.level === "error" || l.level === "fatal" || (typeof l.level === "number" && l.level >= 40))
    .slice(0, 5)
    .map((l) => String(l.msg));
}

interface MessageWindow {
  /** the measured window's messages (after the warm-up) and their receipt times */
  msgs: DetectionsMessage[];
  recv: bigint[];
  /** the publishing process's threads over the window */
  cpu: CpuFigures | null;
}

/**
 * Subscribes to `endpoint` and waits for ctx.warmup + ctx.frames messages from `proc`, the
 * daemon or the bus floor publisher. The window opens once the warm-up is in: the CPU
 * window of `proc` and `onWindowStart` start then. Fails on a subscriber error, on no
 * message for too long, or when `proc` exits first. Checks every message against the one
 * clock (spawn <= ingest <= publish <= receipt); always unsubscribes.
 */
async function collectWindow(
  id: ScenarioId,
  proc: RunningDaemon,
  endpoint: string,
  spawnNs: bigint,
  ctx: DaemonContext,
  onWindowStart: () => void,
): Promise<MessageWindow> {
  const want = ctx.warmup + ctx.frames;
  let sub: DetectionsSubscription | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  try {
    let cpuStart: CpuWindowStart | undefined;
    const pid = proc.child.pid;
    let lastMessageAt = Date.now();
    let firstSeen = false;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    sub = await collectDetections(endpoint, {
      onMessage: (_m, _t, i) => {
        lastMessageAt = Date.now();
        firstSeen = true;
        const warm = i < ctx.warmup;
        ctx.progress({ kind: "frames", scenario: id, done: warm ? i + 1 : i + 1 - ctx.warmup, total: warm ? ctx.warmup : ctx.frames, warmup: warm });
        if (i === ctx.warmup - 1) {
          onWindowStart();
          if (pid !== undefined) cpuStart = startCpuWindow(pid);
        }
        if (i + 1 === want) resolveDone();
      },
    });
    const s = sub;
    const failed = new Promise<never>((_, reject) => {
      watchdog = setInterval(() => {
        const err = s.error();
        const idle = Date.now() - lastMessageAt;
        const limit = firstSeen ? STALL_TIMEOUT_MS : FIRST_MESSAGE_TIMEOUT_MS;
        if (err !== null) reject(new Error(`subscriber failed after ${s.messages.length} messages: ${err.message}`));
        else if (idle > limit) {
          reject(new Error(`no detections message for ${limit} ms (${s.messages.length} of ${want} received); stderr: ${proc.stderr().slice(-1500)}`));
        }
      }, 250);
      void proc.exited.then((code) =>
        reject(new Error(`exited (${code}) after ${s.messages.length} of ${want} messages; stderr: ${proc.stderr().slice(-1500)}`)),
      );
    });
    await Promise.race([done, failed]);
    const cpu = pid === undefined || cpuStart === undefined ? null : endCpuWindow(cpuStart, pid);
    for (let i = 0; i < s.messages.length; i++) {
      const m = s.messages[i];
      ctx.clock.checked++;
      if (!(spawnNs <= m.tIngestNs && m.tIngestNs <= m.tPublishNs && m.tPublishNs <= s.receivedNs[i])) ctx.clock.violations++;
    }
    return { msgs: s.messages.slice(ctx.warmup, want), recv: s.receivedNs.slice(ctx.warmup, want), cpu };
  } finally {
    clearInterval(watchdog);
    sub?.close();
  }
}

/** The figures every bus-timed scenario has, from its window's messages. */
function busTimedFigures(w: MessageWindow): Pick<ScenarioResult, "frames" | "durationS" | "processedPerSec" | "e2e" | "split" | "cpu" | "samplesMs"> & {
  /** frames ingested per second, for the scenario's input (seq / tIngestNs) */
  measuredFps: number | null;
} {
  const { msgs, recv } = w;
  const e2eSamples = msgs.map((m, i) => msBetween(m.tIngestNs, recv[i]));
  const first = msgs[0];
  const last = msgs[msgs.length - 1];
  const durationS = msBetween(recv[0], recv[recv.length - 1]) / 1e3;
  const ingestS = msBetween(first.tIngestNs, last.tIngestNs) / 1e3;
  return {
    measuredFps: ingestS > 0 ? (last.seq - first.seq) / ingestS : null,
    frames: msgs.length,
    durationS,
    // Intervals, not messages: n messages span n - 1 frame times.
    processedPerSec: durationS > 0 ? (msgs.length - 1) / durationS : NaN,
    e2e: latencyStats(e2eSamples),
    split: {
      ingestToPublish: latencyStats(msgs.map((m) => msBetween(m.tIngestNs, m.tPublishNs))),
      publishToReceipt: latencyStats(msgs.map((m, i) => msBetween(m.tPublishNs, recv[i]))),
    },
    cpu: w.cpu,
    samplesMs: e2eSamples,
  };
}

async function runDaemonScenario(spec: DaemonScenarioSpec, ctx: DaemonContext): Promise<ScenarioResult> {
  const cfgPath = await writeConfig(daemonConfig(spec, ctx));
  let d: RunningDaemon | undefined;
  try {
    ctx.progress({ kind: "step", scenario: spec.id, text: `starting the daemon: ${spec.input.description}` });
    // Before the process starts, not at the window: the collection blocks this thread, and
    // the subscriber is on it (collect-garbage.ts says why it runs at all).
    collectGarbage();
    const spawnNs = process.hrtime.bigint();
    const daemon = runDaemon(["run", "--config", cfgPath], ctx.env);
    d = daemon;
    const bound = await daemon.waitForLog((l) => l.msg === BUS_BOUND_MSG, FIRST_MESSAGE_TIMEOUT_MS);
    const endpoints = bound.endpoints;
    const metricsUrl = bound.metrics;
    if (!Array.isArray(endpoints) || typeof endpoints[0] !== "string" || typeof metricsUrl !== "string" || !metricsUrl.startsWith("http")) {
      throw new Error(`daemon log line "${BUS_BOUND_MSG}" lacks endpoints or a metrics URL: ${JSON.stringify(bound)}`);
    }

    let windowStart: Promise<string> | undefined;
    // Connected right after the bind; the cameras start only once the model is warm, so the
    // subscription is in place before the first frame (no slow-joiner loss to speak of).
    const window = await collectWindow(spec.id, daemon, endpoints[0], spawnNs, ctx, () => {
      // The scrape that opens the window: the window's histograms are the difference to it.
      const scrape = scrapeMetricsText(metricsUrl);
      // Awaited once the window is complete; handled now so a failure cannot surface as an unhandled rejection meanwhile.
      scrape.catch(() => undefined);
      windowStart = scrape;
    });
    const beforeText = await (windowStart ?? Promise.reject(new Error("no window-start scrape")));
    const after = parsePrometheusText(await scrapeMetricsText(metricsUrl));
    const before = parsePrometheusText(beforeText);
    const exit = await daemon.stop(STOP_TIMEOUT_MS);

    const { measuredFps, ...figures } = busTimedFigures(window);
    const { msgs } = window;
    const hist = (stage: Stage): HistogramSnapshot => {
      const labels = { stage, camera: CAMERA };
      return histogramDelta(histogramOf(after, "perceptd_stage_latency_seconds", labels), histogramOf(before, "perceptd_stage_latency_seconds", labels));
    };
    const inf = hist("inference");
    const cam = { camera: CAMERA };
    const dropped = (samples: PromSample[]): number => sumSamples(samples, "perceptd_frames_dropped_total", cam);
    const ingested = (samples: PromSample[]): number => sumSamples(samples, "perceptd_frames_ingested_total", cam);
    const result: ScenarioResult = {
      ...figures,
      id: spec.id,
      label: spec.label,
      input: { ...spec.input, measuredFps },
      inference: { source: "histogram", runs: inf.count, p50Ms: histogramQuantile(inf, 0.5) * 1e3, p99Ms: histogramQuantile(inf, 0.99) * 1e3, meanMs: (stageMean(inf) ?? NaN) },
      drops: {
        droppedTotal: dropped(after),
        ingestedTotal: ingested(after),
        droppedWindow: dropped(after) - dropped(before),
        ingestedWindow: ingested(after) - ingested(before),
        seqGaps: msgs[msgs.length - 1].seq - msgs[0].seq + 1 - msgs.length,
      },
      stages: { mean: stageTimes(hist, stageMean), p99: stageTimes(hist, stageP99) },
      daemon: { source: spec.source, exit, warnings: warningsOf(daemon.logs) },
    };
    if (ctx.frameTrace) result.frameTrace = traceFrames(daemon.logs, CAMERA, msgs, window.recv);
    ctx.progress({ kind: "scenario-done", result });
    return result;
  } finally {
    // Normally stopped above already; on any error it must not outlive the bench.
    if (d !== undefined) {
      d.kill();
      await d.exited;
    }
    await removeConfig(cfgPath);
  }
}

const BUS_FLOOR_LABEL = "(c2) bus alone, paced as (c)";
const MODEL_BUS_FLOOR_LABEL = "(c3) model + bus, no daemon, paced as (c)";

/**
 * (c2), or with `model` (c3): bus-floor-publisher.ts in a child process at `fps`, timed by
 * the same subscriber as (c).
 */
async function runBusFloorScenario(fps: number, ctx: DaemonContext, model: ModelRun | null): Promise<ScenarioResult> {
  const id: ScenarioId = model === null ? "bus-paced" : "model-bus-paced";
  const name = model === null ? "bus floor publisher" : "model + bus publisher";
  let p: RunningDaemon | undefined;
  try {
    ctx.progress({ kind: "step", scenario: id, text: `starting the ${name} at ${fps} messages/s` });
    // Before the process starts, not at the window: the collection blocks this thread, and
    // the subscriber is on it (collect-garbage.ts says why it runs at all).
    collectGarbage();
    const spawnNs = process.hrtime.bigint();
    const args = ["--import", "tsx", BUS_FLOOR_PUBLISHER, String(fps), ...(model === null ? [] : [JSON.stringify(model)])];
    const proc = runNodeProcess(name, args, ctx.env);
    p = proc;
    const endpoint = await waitForEndpoint(proc, BUS_FLOOR_BOUND_MSG, FIRST_MESSAGE_TIMEOUT_MS);
    // It publishes from the start; the first messages are lost to the slow joiner or
    // discarded as warm-up.
    const window = await collectWindow(id, proc, endpoint, spawnNs, ctx, () => undefined);
    const exit = await proc.stop(STOP_TIMEOUT_MS);
    const { measuredFps, ...figures } = busTimedFigures(window);
    const result: ScenarioResult = {
      ...figures,
      id,
      label: model === null ? BUS_FLOOR_LABEL : MODEL_BUS_FLOOR_LABEL,
      input: {
        description: model === null ? `messages published at ${fps}/s` : `one run of (a)'s loop and one message at ${fps}/s`,
        targetFps: fps,
        measuredFps,
      },
      inference: model === null ? null : windowRuns(proc.logs, window.msgs),
      drops: null,
      stages: null,
      daemon: { source: { type: name, fps }, exit, warnings: warningsOf(proc.logs) },
    };
    ctx.progress({ kind: "scenario-done", result });
    return result;
  } finally {
    if (p !== undefined) {
      p.kill();
      await p.exited;
    }
  }
}

/** (c3)'s own session.run times for the window's messages, from the publisher's stop line (runsMs, by frame seq). */
function windowRuns(logs: readonly LogLine[], msgs: readonly DetectionsMessage[]): InferenceFigures {
  const runsMs = logs.find((l) => l.msg === "bus floor stopped")?.runsMs;
  if (!Array.isArray(runsMs) || !runsMs.every((v) => typeof v === "number")) {
    throw new Error(`the model + bus publisher's "bus floor stopped" line lacks runsMs: ${JSON.stringify(logs.at(-1))}`);
  }
  const samples = msgs.map((m) => {
    const ms = (runsMs as number[])[m.seq];
    if (ms === undefined) throw new Error(`the model + bus publisher logged ${runsMs.length} runs, but message seq ${m.seq} was received`);
    return ms;
  });
  const stats = latencyStats(samples);
  return { source: "measured", runs: stats.runs, p50Ms: stats.p50Ms, p99Ms: stats.p99Ms, meanMs: stats.meanMs };
}

// ---------------------------------------------------------------------------------------
// Targets

function judge(scenarios: readonly ScenarioResult[]): TargetResult[] {
  const by = (id: ScenarioId): ScenarioResult | undefined => scenarios.find((s) => s.id === id);
  const raw = by("raw");
  const rawP99 = raw?.inference?.p99Ms ?? NaN;
  const out: TargetResult[] = [];
  const unpaced = by("unpaced");
  if (raw && unpaced) {
    const ratio = unpaced.processedPerSec / raw.processedPerSec;
    out.push({
      id: "throughput",
      scenario: "unpaced",
      description: `processed/s >= ${TARGETS.throughputRatio}x raw`,
      measured: unpaced.processedPerSec,
      limit: TARGETS.throughputRatio * raw.processedPerSec,
      ratio,
      pass: ratio >= TARGETS.throughputRatio,
      text: formatRatio(ratio),
    });
  }
  const paced = by("paced");
  if (raw && paced?.e2e) {
    const p99 = paced.e2e.p99Ms;
    const limit = rawP99 + TARGETS.pacedSlackMs;
    const over = p99 - rawP99;
    out.push({
      id: "paced-latency",
      scenario: "paced",
      description: `e2e p99 <= raw inf p99 + ${TARGETS.pacedSlackMs} ms`,
      measured: p99,
      limit,
      ratio: p99 / rawP99,
      pass: p99 <= limit,
      text: `${formatSignedMs(over)} ms (${formatRatio(p99 / rawP99)})`,
    });
  }
  const overloaded = by("overloaded");
  if (raw && overloaded?.e2e) {
    const ratio = overloaded.e2e.p99Ms / rawP99;
    out.push({
      id: "overload-latency",
      scenario: "overloaded",
      description: `e2e p99 < ${TARGETS.overloadRatio}x raw inf p99`,
      measured: overloaded.e2e.p99Ms,
      limit: TARGETS.overloadRatio * rawP99,
      ratio,
      pass: ratio < TARGETS.overloadRatio,
      text: formatRatio(ratio),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The bench

/**
 * Runs (a)-(d) in order and returns every figure. Daemons are always stopped: SIGTERM when
 * a scenario completes, SIGKILL in a finally on any error, and on SIGINT/SIGTERM/SIGHUP to
 * this process while the bench runs (the signal is then re-raised).
 */
export async function benchPipeline(opts: PipelineBenchOptions = {}): Promise<PipelineBenchResult> {
  const startedAt = new Date().toISOString();
  const loadAvgStart = os.loadavg();
  const video = resolve(opts.video ?? DEFAULT_BENCH_VIDEO);
  const frames = positiveInt("frames", opts.frames ?? DEFAULT_PIPELINE_FRAMES);
  // Rates are intervals between frames: one frame has none.
  if (frames < 2) throw new RangeError(`bench pipeline: frames must be at least 2, got ${frames}`);
  const warmup = positiveInt("warmup", opts.warmup ?? DEFAULT_PIPELINE_WARMUP);
  const threads = opts.threads ?? 0;
  if (!(Number.isInteger(threads) && threads >= 0)) throw new RangeError(`bench pipeline: threads must be a non-negative integer, got ${String(threads)}`);
  const spinning = opts.spinning ?? false;
  const replayWorkers = opts.replayWorkers ?? 0;
  if (!(Number.isInteger(replayWorkers) && replayWorkers >= 0 && replayWorkers <= MAX_REPLAY_WORKERS)) {
    throw new RangeError(`bench pipeline: replayWorkers must be an integer in [0, ${MAX_REPLAY_WORKERS}], got ${String(replayWorkers)}`);
  }
  // As the daemon's pool resolves them for a one-camera unpaced replay.
  const replaySessions = resolveReplayWorkers(replayWorkers, ["cpu"]);
  const replay = { configured: replayWorkers, sessions: replaySessions, threadsEach: threadsPerSession(threads, replaySessions) };
  const pacedFraction = positiveNumber("pacedFraction", opts.pacedFraction ?? DEFAULT_PACED_FRACTION);
  const overloadFactor = positiveNumber("overloadFactor", opts.overloadFactor ?? DEFAULT_OVERLOAD_FACTOR);
  const manifestPath = resolve(opts.manifestPath ?? DEFAULT_MANIFEST_PATH);
  const progress = (e: PipelineBenchProgress): void => opts.onProgress?.(e);

  const onSignal = (sig: NodeJS.Signals): void => {
    killAllDaemons();
    removeSignalHandlers();
    process.kill(process.pid, sig);
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const removeSignalHandlers = (): void => {
    for (const s of signals) process.off(s, onSignal);
  };
  for (const s of signals) process.on(s, onSignal);

  try {
    progress({ kind: "step", scenario: null, text: "checking that process.hrtime is one clock across processes" });
    const clockCheck = await checkMonotonicClock();
    if (!clockCheck.ok) {
      throw new Error(
        `bench pipeline: process.hrtime.bigint() in a child process is not between the parent's readings around ` +
          `its spawn (${JSON.stringify(clockCheck.samples)}); end-to-end latency across processes cannot be measured here`,
      );
    }

    const sideBySide = replay.sessions > 1 ? { sessions: replay.sessions, threadsEach: replay.threadsEach } : null;
    const raw = await runRawLoop(video, frames, warmup, threads, spinning, manifestPath, opts.model, sideBySide, pacedFraction, progress);
    progress({ kind: "scenario-done", result: raw.result });
    progress({ kind: "scenario-done", result: raw.paced });
    if (raw.parallel !== null) progress({ kind: "scenario-done", result: raw.parallel });
    const rawFps = raw.result.processedPerSec;
    const pacedFps = pacedRate(rawFps, pacedFraction);
    const overloadFps = round1(Math.min(1000, overloadFactor * rawFps));

    const ctx: DaemonContext = { frames, warmup, threads, spinning, replayWorkers, modelName: raw.modelName, manifestPath, progress, clock: { checked: 0, violations: 0 }, env: opts.daemonEnv ?? {}, frameTrace: opts.frameTrace === true };
    const specs: DaemonScenarioSpec[] = [
      {
        id: "unpaced",
        label: "(b) daemon, unpaced file",
        // loop: an unpaced run decodes far faster than it infers and would reach the end
        // of a short clip before `frames` messages.
        source: { type: "file", path: video, realtime: false, loop: true },
        input: { description: "file, realtime: false, loop", targetFps: null },
      },
      {
        id: "paced",
        label: `(c) daemon, paced ${Math.round(pacedFraction * 100)}% of (a)`,
        source: pacedFileSource(video, pacedFps),
        input: { description: `file paced at ${pacedFps} fps`, targetFps: pacedFps },
      },
      {
        id: "overloaded",
        label: `(d) daemon, overloaded ${overloadFactor}× (a)`,
        source: pacedFileSource(video, overloadFps),
        input: { description: `file paced at ${overloadFps} fps`, targetFps: overloadFps },
      },
    ];
    const scenarios: ScenarioResult[] = [raw.result, ...(raw.parallel === null ? [] : [raw.parallel]), raw.paced];
    for (const spec of specs) {
      try {
        scenarios.push(await runDaemonScenario(spec, ctx));
      } catch (err) {
        throw new Error(`bench pipeline: ${spec.label}: ${errorText(err)}`, { cause: err });
      }
      // (c2) and (c3) right after (c), so that they see the machine in much the same state.
      if (spec.id === "paced") {
        const modelRun: ModelRun = { video, manifestPath, model: raw.modelName, frames, warmup, threads, spinning };
        for (const model of [null, modelRun]) {
          try {
            scenarios.push(await runBusFloorScenario(pacedFps, ctx, model));
          } catch (err) {
            throw new Error(`bench pipeline: ${model === null ? BUS_FLOOR_LABEL : MODEL_BUS_FLOOR_LABEL}: ${errorText(err)}`, { cause: err });
          }
        }
      }
    }

    const clock: ClockCheck = { ...clockCheck, messagesChecked: ctx.clock.checked, messageViolations: ctx.clock.violations };
    const notes = buildNotes(warmup, clock, scenarios, sideBySide);
    return {
      bench: "pipeline",
      schemaVersion: 1,
      startedAt,
      command: opts.command ?? defaultCommand(),
      machine: {
        ...machineInfo(),
        loadAvgStart,
        loadAvgEnd: os.loadavg(),
        interruptTimeAccounting: interruptTimeAccounting(),
      },
      versions: { node: process.version, onnxruntime: ort.env.versions.node ?? ort.env.versions.common },
      settings: {
        video,
        model: raw.modelName,
        input: raw.input,
        frames,
        warmup,
        threads,
        interOpThreads: 1,
        allowSpinning: spinning,
        replayWorkers: replay,
        pacedFraction,
        overloadFactor,
        rawLoop: "main thread",
        percentiles: "linear interpolation between closest ranks; daemon inference: Prometheus-style bucket interpolation",
      },
      clock,
      scenarios,
      targets: judge(scenarios),
      notes,
    };
  } finally {
    removeSignalHandlers();
    killAllDaemons();
  }
}

function buildNotes(warmup: number, clock: ClockCheck, scenarios: readonly ScenarioResult[], sideBySide: SideBySide | null): string[] {
  const parallel = scenarios.find((s) => s.id === "raw-parallel");
  const unpaced = scenarios.find((s) => s.id === "unpaced");
  return [
    ...(parallel === undefined || sideBySide === null
      ? []
      : [
          `(a2) runs the daemon's arrangement for an unpaced replay without the daemon: the same pre-decoded frames through ` +
            `${sideBySideText(sideBySide)}, each session in its own worker thread on one frame in every ${sideBySide.sessions}, all started together; ` +
            `processed/s = runs / (first start to last end). (b) runs that arrangement` +
            (unpaced === undefined ? "." : `, at ${formatRatio(unpaced.processedPerSec / parallel.processedPerSec)} of (a2): the daemon's own cost in it.`) +
            ` The target compares (b) with (a), one frame at a time, as the daemon runs live cameras.`,
        ]),
    `(a) times \`await session.run\` alone, in the bench's main thread, on frames decoded by GStreamer and resized ` +
      `by resizeToModel beforehand; ${warmup} untimed runs first. Each run's outputs are freed right after it, untimed, ` +
      `as the daemon's worker frees its own, in (a2) and (a3) too. The daemon runs the same session settings in a ` +
      `worker thread, on frames GStreamer scales, and adds decode + NMS, the worker hop, message encoding and the bus.`,
    `(a3) runs (a)'s warm session again at (c)'s rate, on an absolute schedule, idle between runs as the daemon's ` +
      `worker is; it times \`await session.run\` alone, as (a) does. (c2): a child process publishes detections ` +
      `messages (six boxes each) through the daemon's BusPublisher at (c)'s rate, with no camera and no model, to the ` +
      `same subscriber; its e2e is receipt minus the moment each message was made. (c3): the same child process with ` +
      `(a)'s model, session settings and frames: at each tick one \`session.run\` on its main thread, then the message; ` +
      `its e2e is receipt minus the tick, its inference p99 its own runs in the window.`,
    ...pacedBreakdown(scenarios),
    `(b)-(d): the daemon as a child process (\`node bin/perceptd.js run\`), timed by a ZeroMQ subscriber in the bench ` +
      `process; the first ${warmup} messages of each run, (c2)'s and (c3)'s too, are discarded. processed/s = (messages - 1) / (last - first receipt). ` +
      `The bench runs a full collection of its own heap before (a), (a3) and each child process it starts, so that no ` +
      `mark-compact of earlier scenarios' garbage lands in a window.`,
    `e2e = subscriber receipt - tIngestNs (when the daemon's main thread took the frame from the appsink). Both are ` +
      `process.hrtime.bigint() (CLOCK_MONOTONIC on Linux); checked: ${clock.samples.length}/${clock.samples.length} child ` +
      `readings inside the parent's, ${clock.messagesChecked - clock.messageViolations}/${clock.messagesChecked} messages ` +
      `with spawn <= ingest <= publish <= receipt.`,
    "(c), (d): the file through `videorate ! framerate=R ! clocksync` as a live `pipeline` source: frames dropped or " +
      "repeated to make R, content at 1x speed. input rate = measured ingest rate (seq / tIngestNs), set rate beside it.",
    "inference p99 of daemon rows and the stage p99s (~): estimated from the daemon's perceptd_stage_latency_seconds " +
      `buckets over the measured window (interpolated within a bucket; bounds ${bucketBoundsText(0.1)} ... ms), so coarse. ` +
      "Targets use (a)'s measured inference p99.",
    "CPU: per-thread time on a core and time runnable but waiting for one (run-queue wait: contention), from " +
      "/proc/<pid>/task/*/schedstat over the measured window, in % of one core.",
    "dropped: perceptd_frames_dropped_total (all reasons) scraped from /metrics at the end of the run, before the " +
      "daemon stops, and its share of perceptd_frames_ingested_total.",
  ];
}

/**
 * (c)'s tail beside the references measured in the same run at its rate: how much of its
 * p99 pacing alone puts on ORT (a3) and the bus alone costs (c2). Empty when one is missing.
 */
function pacedBreakdown(scenarios: readonly ScenarioResult[]): string[] {
  const by = (id: ScenarioId): ScenarioResult | undefined => scenarios.find((s) => s.id === id);
  const raw = by("raw")?.inference;
  const rawPaced = by("raw-paced")?.inference;
  const paced = by("paced");
  const bus = by("bus-paced")?.split;
  if (raw == null || rawPaced == null || paced?.e2e == null || paced.split === null || bus == null) return [];
  return [
    `(c) beside its references, p99 in ms: (a) inference ${formatMs(raw.p99Ms)}; (a3) the same loop paced as (c) ` +
      `${formatMs(rawPaced.p99Ms)} (${formatSignedMs(rawPaced.p99Ms - raw.p99Ms)}); (c2) the bus alone, publish->receipt ` +
      `${formatMs(bus.publishToReceipt.p99Ms)}; (c) ingest->publish ${formatMs(paced.split.ingestToPublish.p99Ms)}, ` +
      `publish->receipt ${formatMs(paced.split.publishToReceipt.p99Ms)}, e2e ${formatMs(paced.e2e.p99Ms)} ` +
      `(${formatSignedMs(paced.e2e.p99Ms - raw.p99Ms)} over (a)). Tails do not add up exactly: the slowest frames of one stage are not ` +
      `those of the next.`,
    ...modelInWindow(raw, paced),
    ...outsideInference(paced),
    ...modelAndBusFloor(raw, paced, by("model-bus-paced")),
  ];
}

/**
 * (c3) against (c)'s target: whether the model and the bus alone, with nothing of the
 * daemon between them, stay within it in this run, and how far (c) is from them.
 */
function modelAndBusFloor(raw: InferenceFigures, paced: ScenarioResult, floor: ScenarioResult | undefined): string[] {
  if (floor?.e2e == null || floor.inference === null || paced.e2e === null) return [];
  const over = floor.e2e.p99Ms - raw.p99Ms;
  const within = over <= TARGETS.pacedSlackMs;
  return [
    `(c3) the model + bus without the daemon, p99 in ms: its own session.run ${formatMs(floor.inference.p99Ms)}, e2e ` +
      `${formatMs(floor.e2e.p99Ms)}, (a)'s inference p99 ${formatSignedMs(over)}: ${within ? "within" : "outside"} (c)'s ` +
      `${TARGETS.pacedSlackMs} ms in this run${within ? "" : ", with no daemon code on the path"}. (c)'s e2e p99 is ` +
      `(c3)'s ${formatSignedMs(paced.e2e.p99Ms - floor.e2e.p99Ms)}, its p50 (c3)'s ${formatSignedMs(paced.e2e.p50Ms - floor.e2e.p50Ms)}.`,
  ];
}

/**
 * (c)'s own session.run beside (a)'s: the same session settings, minutes apart. On a shared
 * machine the model's speed drifts between scenarios, and (c)'s target compares its tail
 * with (a)'s, so the drift goes into the verdict; this line shows how much.
 */
function modelInWindow(raw: InferenceFigures, paced: ScenarioResult): string[] {
  const st = paced.stages;
  if (st === null) return [];
  return [
    `(c)'s own session.run beside (a)'s, mean/p99 in ms: ${formatMs(st.mean.inferenceMs)}/~${formatMs(st.p99.inferenceMs)} ` +
      `(daemon histogram) against ${formatMs(raw.meanMs)}/${formatMs(raw.p99Ms)}. A gap here is the model itself running slower ` +
      `or faster in (c)'s window, before anything the daemon adds around it.`,
  ];
}

/**
 * Where (c)'s time outside session.run goes, median and tail per step: the steps between
 * ingest and receipt that are not the model. Empty without the daemon's stage figures.
 */
function outsideInference(paced: ScenarioResult): string[] {
  const st = paced.stages;
  if (st === null || paced.split === null) return [];
  const step = (name: string, k: keyof StageTimes): string => `${name} ${formatMs(st.mean[k])}/~${formatMs(st.p99[k])}`;
  const p2r = paced.split.publishToReceipt;
  return [
    `(c) outside session.run, mean/p99 in ms (daemon histograms; p99 read from the buckets): ` +
      `${step("ingest->worker", "ingestToWorkerMs")}, ${step("decode+NMS", "decodeMs")}, ${step("worker->main", "workerToMainMs")}, ` +
      `${step("publish", "publishMs")}; publish->receipt ${formatMs(p2r.meanMs)}/${formatMs(p2r.p99Ms)} (per message). ` +
      `Each is a hand-over between threads or a short step; a tail far above its mean is a thread waiting for a core.`,
  ];
}

// ---------------------------------------------------------------------------------------
// Report

const TABLE_COLUMNS: Column[] = [
  { header: "scenario" },
  { header: "input rate", align: "right" },
  { header: "processed/s", align: "right" },
  { header: "e2e p50 ms", align: "right" },
  { header: "e2e p99 ms", align: "right" },
  { header: "inference p99 ms", align: "right" },
  { header: "dropped", align: "right" },
  { header: "target" },
  { header: "result" },
];

function inputRateCell(s: ScenarioResult): string {
  if (isRaw(s.id) && s.input.targetFps === null) return "pre-decoded";
  const measured = s.input.measuredFps === null ? MISSING : `${s.input.measuredFps.toFixed(1)}/s`;
  return s.input.targetFps === null ? `unpaced ${measured}` : `${measured} (set ${s.input.targetFps})`;
}

function droppedCell(s: ScenarioResult): string {
  if (s.drops === null) return MISSING;
  const { droppedTotal: d, ingestedTotal: n } = s.drops;
  return n > 0 ? `${d} (${Math.round((d / n) * 100)}%)` : String(d);
}

export function pipelineBenchTable(result: PipelineBenchResult): string {
  return markdownTable(
    TABLE_COLUMNS,
    result.scenarios.map((s) => {
      const t = result.targets.find((x) => x.scenario === s.id);
      const inf = s.inference === null ? MISSING : `${s.inference.source === "histogram" ? "~" : ""}${formatMs(s.inference.p99Ms)}`;
      return [
        s.label,
        inputRateCell(s),
        s.processedPerSec.toFixed(1),
        formatMs(s.e2e?.p50Ms),
        formatMs(s.e2e?.p99Ms),
        inf,
        droppedCell(s),
        t?.description ?? (isReference(s.id) ? "(reference)" : MISSING),
        t === undefined ? MISSING : `${t.text} ${t.pass ? "PASS" : "FAIL"}`,
      ];
    }),
  );
}

function stageLine(s: ScenarioResult): string | null {
  const st = s.stages;
  const f = (v: number | null | undefined): string => formatMs(v);
  const sp = s.split;
  if (st === null) {
    return sp === null
      ? null
      : `${s.label}: per message p50/p99 (ms): tick->publish ${f(sp.ingestToPublish.p50Ms)}/${f(sp.ingestToPublish.p99Ms)}, ` +
          `publish->receipt ${f(sp.publishToReceipt.p50Ms)}/${f(sp.publishToReceipt.p99Ms)}`;
  }
  const both = (k: keyof StageTimes): string => `${f(st.mean[k])}/~${f(st.p99[k])}`;
  return (
    `${s.label}: stage mean/p99 (daemon histograms, ms; p99 read from the buckets): ingest->worker ${both("ingestToWorkerMs")}, ` +
    `preprocess ${both("preprocessMs")}, inference ${both("inferenceMs")}, decode+NMS ${both("decodeMs")}, ` +
    `worker->main ${both("workerToMainMs")}, publish ${both("publishMs")}; daemon e2e (ingest->bus) mean ` +
    `${f(st.mean.endToEndMs)} vs subscriber e2e mean ${f(s.e2e?.meanMs)}` +
    (sp === null
      ? ""
      : `; per message p50/p99: ingest->publish ${f(sp.ingestToPublish.p50Ms)}/${f(sp.ingestToPublish.p99Ms)}, ` +
        `publish->receipt ${f(sp.publishToReceipt.p50Ms)}/${f(sp.publishToReceipt.p99Ms)}`)
  );
}

function cpuLine(s: ScenarioResult, cores: number): string | null {
  const c = s.cpu;
  if (c === null) return null;
  const groups = c.groups
    .filter((g) => g.cpuPct >= 0.5 || g.waitPct >= 0.5)
    .map((g) => `${g.name} ${g.cpuPct.toFixed(0)}% (${g.threads} thr, waited ${g.waitPct.toFixed(0)}%)`);
  const around =
    (c.benchProcessPct === null ? "" : `; bench process ${c.benchProcessPct.toFixed(0)}%`) +
    (c.otherProcessesPct === null ? "" : `; other processes ${c.otherProcessesPct.toFixed(0)}%${c.otherProcessesPct >= 10 ? " (machine not idle: figures suspect)" : ""}`) +
    (c.interruptPct === null ? "" : `; kernel interrupts and softirqs ${c.interruptPct.toFixed(0)}%`);
  const whose = isRaw(s.id) ? "bench process" : s.id === "bus-paced" || s.id === "model-bus-paced" ? "publisher" : "daemon";
  return `${s.label}: CPU ${c.totalPct.toFixed(0)}% of ${cores * 100}% (${whose}): ${groups.join("; ")}${around}`;
}

/** Whether other processes competed for the cores during the scenarios. */
function quietLine(result: PipelineBenchResult): string {
  const known = result.scenarios.filter((s) => s.cpu?.otherProcessesPct != null);
  if (known.length === 0) return "unknown (no /proc/stat)";
  const busy = known.filter((s) => (s.cpu?.otherProcessesPct ?? 0) >= 10);
  const worst = Math.max(...known.map((s) => s.cpu?.otherProcessesPct ?? 0));
  const verdict =
    busy.length === 0
      ? `yes, other processes used at most ${worst.toFixed(0)}% of a core during any scenario`
      : `NO: other processes used ${busy.map((s) => `${(s.cpu?.otherProcessesPct ?? 0).toFixed(0)}% during ${s.label.split(" ")[0]}`).join(", ")}; rerun on an idle machine`;
  const irq = known.filter((s) => s.cpu?.interruptPct != null);
  if (irq.length === 0) return verdict;
  const most = irq.reduce((a, b) => ((b.cpu?.interruptPct ?? 0) > (a.cpu?.interruptPct ?? 0) ? b : a));
  const how = {
    precise: "",
    "tick-sampled": "; this kernel samples that time at the timer tick, which can charge idle time to it: scripts/softirq-ticks.ts measures it",
    unknown: "; whether this kernel times it or samples it at the tick is unknown",
  }[result.machine.interruptTimeAccounting ?? "unknown"];
  return `${verdict} (kernel interrupts and softirqs, not counted there: at most ${(most.cpu?.interruptPct ?? 0).toFixed(0)}%, during ${most.label.split(" ")[0]}${how})`;
}

/** The human-readable report: setup, the table, stage breakdown, notes, the command. */
export function renderPipelineBench(result: PipelineBenchResult): string {
  const { machine: m, versions: v, settings: s } = result;
  const la = (x: number[]): string => x.map((n) => n.toFixed(2)).join(" ");
  const lines = [
    `machine:     ${m.cpu}, ${m.cores} cores (${m.availableParallelism} usable), ${m.arch}, ${m.platform}, ${m.totalMemoryGiB} GiB; ` +
      `load average ${la(m.loadAvgStart)} at start, ${la(m.loadAvgEnd)} at end`,
    `node:        ${v.node}`,
    `onnxruntime: onnxruntime-node ${v.onnxruntime}, CPU execution provider, intra-op threads ${s.threads === 0 ? "0 (ORT default)" : s.threads}, inter-op ${s.interOpThreads}, spinning ${s.allowSpinning ? "on" : "off"}`,
    `replay:      inference.replayWorkers ${s.replayWorkers.configured}${s.replayWorkers.configured === 0 ? " (automatic)" : ""}: (b) runs ` +
      (s.replayWorkers.sessions > 1
        ? `${s.replayWorkers.sessions} sessions side by side, intra-op threads ${s.replayWorkers.threadsEach === 0 ? "0 (ORT default)" : s.replayWorkers.threadsEach} each, as (a2)`
        : "one session, as (a)"),
    `model:       ${s.model} (${s.input})`,
    `video:       ${relative(process.cwd(), s.video) || s.video}`,
    `frames:      ${s.frames} timed per scenario after ${s.warmup} warm-up; (c) at ${s.pacedFraction}x and (d) at ${s.overloadFactor}x (a)'s frames/s`,
    `clock:       process.hrtime.bigint() shared across processes: ${result.clock.ok ? "verified" : "NOT verified"}` +
      (result.clock.messageViolations > 0 ? `, but ${result.clock.messageViolations} message(s) out of order` : ""),
    `quiet:       ${quietLine(result)}`,
    "",
    pipelineBenchTable(result),
    "",
    ...result.scenarios.map(stageLine).filter((x): x is string => x !== null).map((x) => `- ${x}`),
    ...result.scenarios.flatMap((x) => (x.frameTrace == null ? [] : [`- ${renderFrameTrace(x.label, x.frameTrace)}`])),
    ...result.scenarios.map((x) => cpuLine(x, m.availableParallelism)).filter((x): x is string => x !== null).map((x) => `- ${x}`),
    ...result.notes.map((n) => `- ${n}`),
    "",
    `command: ${result.command}`,
  ];
  return lines.join("\n") + "\n";
}
