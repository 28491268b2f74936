// `perceptd bench pipeline`: the whole daemon against a raw ONNX Runtime loop, on the same
// video, model and session settings, in one run, one table:
//
//   raw loop             session.run back to back on frames decoded beforehand: the model's
//                        own throughput and latency, the ceiling for one frame at a time
//   daemon, unpaced      the file replayed as fast as the daemon takes it (backpressure, the
//                        replay's sessions side by side): the daemon's throughput
//   daemon, paced        the file played like a camera at a fraction of the raw rate: the
//                        latency a live camera sees when the detector keeps up
//   daemon, overloaded   a camera faster than the detector: latest-wins keeps latency bounded
//                        while frames are dropped
//
// Daemon figures come from outside, as an integrator sees them: e2e is GStreamer's hand-over
// (the header's ingest time) to the receipt at a ZeroMQ subscriber in this process; drops and
// the daemon's own inference time come from its /metrics. Timings depend on the machine and
// on whatever else runs on it; compare rows of one run, not runs of different days.
import { resolve } from "node:path";
import { MAX_REPLAY_WORKERS } from "../../infer/worker-protocol.ts";
import { framerateFraction } from "../../ingest/pipeline-description.ts";
import { DEFAULT_MANIFEST_PATH } from "../../infer/manifest.ts";
import { collectDetections, removeConfig, runDaemon, writeConfig } from "../../soak/daemon-process.ts";
import { histogramDelta, histogramOf, histogramQuantile, parsePrometheusText, scrapeMetricsText, sumSamples, type PromSample } from "../../soak/prometheus.ts";
import { machineInfo, type MachineInfo } from "../../util/machine-info.ts";
import { commandLineOf, DEFAULT_BENCH_VIDEO, latencyStats } from "./model-bench.ts";
import { DEFAULT_OVERLOAD_FACTOR, DEFAULT_PACED_FRACTION, DEFAULT_PIPELINE_FRAMES, DEFAULT_PIPELINE_WARMUP } from "./pipeline-defaults.ts";
import { createRawSession, decodeRawFrames, loadRawModel } from "./raw-model.ts";
import { formatFixed, formatMs, formatRatio, markdownTable, MISSING } from "./table.ts";
import { timedRun } from "./timed-run.ts";

const CAMERA = "cam0";
const FIRST_MESSAGE_TIMEOUT_MS = 120_000;
const STALL_TIMEOUT_MS = 30_000;

export type ScenarioId = "raw-loop" | "daemon-unpaced" | "daemon-paced" | "daemon-overloaded";

export interface PipelineBenchOptions {
  video?: string;
  /** timed frames per scenario */
  frames?: number;
  /** untimed runs of the raw loop, messages discarded before a daemon's are timed */
  warmup?: number;
  model?: string;
  manifestPath?: string;
  /** ORT intra-op threads, raw loop and daemon alike (0: ORT's default) */
  threads?: number;
  spinning?: boolean;
  /** inference.replayWorkers for the unpaced replay */
  replayWorkers?: number;
  onProgress?: (text: string) => void;
}

export interface ScenarioResult {
  id: ScenarioId;
  /** what the scenario does, for the table */
  label: string;
  /** frames offered per second; null: as fast as taken */
  inputFps: number | null;
  frames: number;
  processedPerSec: number;
  /** ingest -> receipt at the subscriber, ms; null for the raw loop */
  e2e: { p50Ms: number; p99Ms: number } | null;
  /** raw loop: each session.run timed; daemon: from its inference histogram (bucketed) */
  inference: { p50Ms: number; p99Ms: number; fromHistogram: boolean } | null;
  dropped: { frames: number; ofIngested: number } | null;
}

export interface PipelineBenchResult {
  command: string;
  machine: MachineInfo;
  model: string;
  video: string;
  settings: { frames: number; warmup: number; threads: number; spinning: boolean; replayWorkers: number; pacedFraction: number; overloadFactor: number };
  scenarios: ScenarioResult[];
}

function positiveInt(name: string, v: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new RangeError(`bench pipeline: ${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`}, got ${v}`);
  return v;
}

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

async function runRawLoop(video: string, o: Required<Omit<PipelineBenchOptions, "onProgress" | "model">> & { model?: string }, say: (t: string) => void): Promise<{ result: ScenarioResult; model: string }> {
  const model = await loadRawModel(o.manifestPath, o.model);
  say(`raw loop: decoding ${o.frames} frames of ${video}`);
  const tensors = await decodeRawFrames(video, o.frames, model.input);
  const session = await createRawSession(model, { threads: o.threads, spinning: o.spinning });
  try {
    const run = (i: number): Promise<number> => timedRun(session, model.input.name, tensors[i % tensors.length]);
    for (let i = 0; i < o.warmup; i++) await run(i);
    say(`raw loop: ${o.frames} runs of ${model.name}`);
    const samples: number[] = [];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < o.frames; i++) samples.push(await run(i));
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const st = latencyStats(samples);
    return {
      model: model.name,
      result: {
        id: "raw-loop",
        label: "raw loop: session.run back to back, frames decoded beforehand",
        inputFps: null,
        frames: samples.length,
        processedPerSec: samples.length / s,
        e2e: null,
        inference: { p50Ms: st.p50Ms, p99Ms: st.p99Ms, fromHistogram: false },
        dropped: null,
      },
    };
  } finally {
    await session.release();
  }
}

interface DaemonSpec {
  id: Exclude<ScenarioId, "raw-loop">;
  label: string;
  source: Record<string, unknown>;
  inputFps: number | null;
}

async function scrape(url: string | null): Promise<PromSample[] | null> {
  return url === null ? null : parsePrometheusText(await scrapeMetricsText(url));
}

async function runDaemonScenario(spec: DaemonSpec, o: Required<Omit<PipelineBenchOptions, "onProgress" | "model">>, model: string, say: (t: string) => void): Promise<ScenarioResult> {
  const config = await writeConfig({
    log: { level: "warn", format: "json" },
    model: { name: model, ...(o.manifestPath === DEFAULT_MANIFEST_PATH ? {} : { manifest: o.manifestPath }) },
    cameras: [{ id: CAMERA, source: spec.source, restart: { initialBackoffMs: 10, maxBackoffMs: 1000, jitter: 0 } }],
    bus: { endpoints: ["tcp://127.0.0.1:0"] },
    metrics: { enabled: true, host: "127.0.0.1", port: 0 },
    inference: { executionProviders: ["cpu"], intraOpThreads: o.threads, interOpThreads: 1, allowSpinning: o.spinning, replayWorkers: o.replayWorkers },
    status: { mode: "off" },
  });
  const daemon = runDaemon(["run", "--config", config]);
  const wanted = o.warmup + o.frames;
  try {
    say(`${spec.id}: starting the daemon`);
    const ready = await daemon.ready();
    let before: PromSample[] | null = null;
    let beforeTaken: Promise<void> | null = null;
    let lastAt = performance.now();
    const sub = await collectDetections(ready.endpoints[0], {
      onMessage: (_m, _t, i) => {
        lastAt = performance.now();
        // The window opens after the warm-up messages: scrape once, right then.
        if (i === o.warmup - 1) beforeTaken = scrape(ready.metricsUrl).then((s) => void (before = s));
      },
    });
    try {
      const started = performance.now();
      while (sub.messages.length < wanted) {
        const err = sub.error();
        if (err) throw err;
        const now = performance.now();
        if (sub.messages.length === 0 && now - started > FIRST_MESSAGE_TIMEOUT_MS) throw new Error(`${spec.id}: no detections within ${FIRST_MESSAGE_TIMEOUT_MS / 1000} s`);
        if (sub.messages.length > 0 && now - lastAt > STALL_TIMEOUT_MS) throw new Error(`${spec.id}: no detections for ${STALL_TIMEOUT_MS / 1000} s after ${sub.messages.length}`);
        if (daemon.child.exitCode !== null) throw new Error(`${spec.id}: the daemon exited (${daemon.child.exitCode}) after ${sub.messages.length} messages; stderr: ${daemon.stderr().slice(-1000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const after = await scrape(ready.metricsUrl);
      await beforeTaken;
      const msgs = sub.messages.slice(o.warmup, wanted);
      const received = sub.receivedNs.slice(o.warmup, wanted);
      const e2e = latencyStats(msgs.map((m, i) => Number(received[i] - m.tIngestNs) / 1e6));
      const spanS = Number(received[received.length - 1] - sub.receivedNs[o.warmup - 1]) / 1e9;
      let inference: ScenarioResult["inference"] = null;
      let dropped: ScenarioResult["dropped"] = null;
      if (before !== null && after !== null) {
        const h = histogramDelta(histogramOf(after, "perceptd_stage_latency_seconds", { stage: "inference" }), histogramOf(before, "perceptd_stage_latency_seconds", { stage: "inference" }));
        inference = { p50Ms: histogramQuantile(h, 0.5) * 1000, p99Ms: histogramQuantile(h, 0.99) * 1000, fromHistogram: true };
        const delta = (name: string, labels: Record<string, string> = {}): number => sumSamples(after as PromSample[], name, labels) - sumSamples(before as PromSample[], name, labels);
        dropped = { frames: delta("perceptd_frames_dropped_total", { reason: "replaced" }), ofIngested: delta("perceptd_frames_ingested_total") };
      }
      return { id: spec.id, label: spec.label, inputFps: spec.inputFps, frames: msgs.length, processedPerSec: msgs.length / spanS, e2e: { p50Ms: e2e.p50Ms, p99Ms: e2e.p99Ms }, inference, dropped };
    } finally {
      sub.close();
    }
  } finally {
    await daemon.stop(5000);
    await removeConfig(config);
  }
}

export async function benchPipeline(opts: PipelineBenchOptions = {}): Promise<PipelineBenchResult> {
  const video = resolve(opts.video ?? DEFAULT_BENCH_VIDEO);
  const o = {
    video,
    frames: positiveInt("frames", opts.frames ?? DEFAULT_PIPELINE_FRAMES, 2),
    warmup: positiveInt("warmup", opts.warmup ?? DEFAULT_PIPELINE_WARMUP),
    manifestPath: opts.manifestPath ?? DEFAULT_MANIFEST_PATH,
    model: opts.model,
    threads: positiveInt("threads", opts.threads ?? 0, 0),
    spinning: opts.spinning ?? false,
    replayWorkers: positiveInt("replayWorkers", opts.replayWorkers ?? 0, 0, MAX_REPLAY_WORKERS),
  };
  const say = opts.onProgress ?? (() => undefined);
  const raw = await runRawLoop(video, o, say);
  const rawFps = raw.result.processedPerSec;
  const paced = Math.round(rawFps * DEFAULT_PACED_FRACTION * 10) / 10;
  const overloaded = Math.round(rawFps * DEFAULT_OVERLOAD_FACTOR * 10) / 10;
  const specs: DaemonSpec[] = [
    { id: "daemon-unpaced", label: "daemon: the file replayed as fast as the daemon takes it", source: { type: "file", path: video, realtime: false, loop: true }, inputFps: null },
    { id: "daemon-paced", label: `daemon: a camera at ${Math.round(DEFAULT_PACED_FRACTION * 100)} % of the raw rate`, source: pacedFileSource(video, paced), inputFps: paced },
    { id: "daemon-overloaded", label: `daemon: a camera at ${DEFAULT_OVERLOAD_FACTOR}x the raw rate`, source: pacedFileSource(video, overloaded), inputFps: overloaded },
  ];
  const scenarios = [raw.result];
  for (const s of specs) {
    const r = await runDaemonScenario(s, o, raw.model, say);
    say(`${s.id}: ${r.processedPerSec.toFixed(1)} frames/s, e2e p99 ${formatMs(r.e2e?.p99Ms)} ms`);
    scenarios.push(r);
  }
  return {
    command: commandLineOf(["perceptd", ...process.argv.slice(2)]),
    machine: machineInfo(),
    model: raw.model,
    video,
    settings: { frames: o.frames, warmup: o.warmup, threads: o.threads, spinning: o.spinning, replayWorkers: o.replayWorkers, pacedFraction: DEFAULT_PACED_FRACTION, overloadFactor: DEFAULT_OVERLOAD_FACTOR },
    scenarios,
  };
}

export function renderPipelineBench(r: PipelineBenchResult): string {
  const raw = r.scenarios.find((s) => s.id === "raw-loop");
  const table = markdownTable(
    [
      { header: "scenario" },
      { header: "input frames/s", align: "right" },
      { header: "processed/s", align: "right" },
      { header: "vs raw loop", align: "right" },
      { header: "e2e p50 ms", align: "right" },
      { header: "e2e p99 ms", align: "right" },
      { header: "inference p99 ms", align: "right" },
      { header: "dropped", align: "right" },
    ],
    r.scenarios.map((s) => [
      s.label,
      s.id === "raw-loop" ? "decoded first" : s.inputFps === null ? "as taken" : formatFixed(s.inputFps, 1),
      formatFixed(s.processedPerSec, 1),
      raw ? formatRatio(s.processedPerSec / raw.processedPerSec) : MISSING,
      formatMs(s.e2e?.p50Ms),
      formatMs(s.e2e?.p99Ms),
      s.inference ? `${s.inference.fromHistogram ? "~" : ""}${formatMs(s.inference.p99Ms)}` : MISSING,
      s.dropped ? `${s.dropped.frames} of ${s.dropped.ofIngested}` : MISSING,
    ]),
  );
  const m = r.machine;
  const st = r.settings;
  return [
    `machine: ${m.cpu}, ${m.cores} cores, ${m.platform}`,
    `model:   ${r.model}; ORT intra-op threads ${st.threads === 0 ? "default (one per core)" : st.threads}, spinning ${st.spinning ? "on" : "off"}; ${st.frames} timed frames per scenario after ${st.warmup} untimed`,
    "",
    table,
    "",
    "- e2e: GStreamer's hand-over of the frame (the message header's ingest time) to the detections message's receipt at a ZeroMQ subscriber in this process.",
    "- inference p99: the raw loop times each session.run; a daemon's (~) is read from its /metrics histogram, within a bucket's width.",
    "- dropped: frames a newer one replaced before the detector was free (latest-wins), of the frames ingested in the window.",
    `- command: ${r.command}`,
    "",
  ].join("\n");
}
