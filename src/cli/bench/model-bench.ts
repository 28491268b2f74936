// `perceptd bench model`: graph latency of every manifest model on ONNX Runtime (CPU) next to
// the original TensorFlow.js graph it was converted from, on the same decoded video frames.
//
// Only the graph runs are timed. Decoding and preprocessing happen once, up front, so the
// numbers compare runtimes and not our resize loop; the pipeline bench covers the rest.
// Runtimes are interleaved frame by frame rather than measured one after the other, so a
// burst of machine noise (another process, thermal throttling, a GC) lands on all of them
// instead of on whichever happened to be running.
import os from "node:os";
import { existsSync } from "node:fs";
import { basename, relative, resolve } from "node:path";
import * as ort from "onnxruntime-node";
import { toModelInputData, toOrtTensor, type ModelInputData, type ModelInputSpec } from "../../infer/input-tensor.ts";
import type { ProviderTuning } from "../../infer/provider-options.ts";
import { createSession } from "../../infer/session.ts";
import type { ExecutionProvider } from "../../core/providers.ts";
import { probeVideo, readVideoFrames } from "../../ingest/gst/video-file.ts";
import { fitPicture } from "../../infer/resize.ts";
import type { RgbImage } from "../../core/rgb-image.ts";
import {
  DEFAULT_MANIFEST_PATH,
  MODELS_DIR,
  readManifest,
  readVerifiedModel,
  resolveModel,
  type Manifest,
  type ModelEntry,
  type ResolvedModel,
} from "../../infer/manifest.ts";
import type { TfjsBackendInfo } from "../../model/tfjs/reference.ts";
import { formatMs, formatRatio, markdownTable, type Column } from "./table.ts";
import { machineInfo, type MachineInfo } from "../../util/machine-info.ts";

const REPO_ROOT = resolve(MODELS_DIR, "..");
export const DEFAULT_BENCH_VIDEO = resolve(REPO_ROOT, ".cache/fixtures/vtest.avi");
export const DEFAULT_FRAMES = 30;
export const DEFAULT_WARMUP = 3;

export type BenchRuntime = `onnxruntime-${ExecutionProvider}` | "tfjs-wasm";

export interface ModelBenchOptions {
  /** Timed runs per model and runtime, one per decoded frame. Default 30. */
  frames?: number;
  /** Untimed runs per model and runtime before timing. Default 3. */
  warmup?: number;
  /** ONNX Runtime intra-op threads. Default: the cores this process may use. */
  threads?: number;
  /**
   * The one execution provider the ORT rows run on. Default cpu. No fallback: a provider
   * that does not load fails the bench, since a CPU figure under a GPU label would mislead.
   */
  provider?: ExecutionProvider;
  /** TensorRT/CUDA options (config `inference` keys); reach the GPU only through a patched binding. */
  tuning?: ProviderTuning;
  /** Manifest names; default: every model in the manifest. */
  models?: readonly string[];
  /** Also run the original TF.js graphs. Default true. */
  tfjs?: boolean;
  /** Default: the repository's .cache/fixtures/vtest.avi. */
  video?: string;
  manifestPath?: string;
  /** Folder holding the TF.js model.json files; default .cache/vendor/<package>-<version>. */
  tfjsDir?: string;
  /** Recorded in the result so a table can be reproduced; default: this process's argv. */
  command?: string;
  onProgress?: (event: BenchProgress) => void;
}

export type BenchProgress =
  | { kind: "decode"; done: number; total: number }
  | { kind: "load"; group: string; what: string }
  | { kind: "run"; group: string; frame: number; frames: number; warmup: boolean }
  | { kind: "group-done"; group: string; rows: ModelBenchRow[] };

export interface LatencyStats {
  runs: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  /** Sequential, one run at a time: 1000 / meanMs. */
  runsPerSec: number;
}

export interface ModelBenchRow {
  /** Manifest name; for TF.js rows, the float model whose original graph ran. */
  model: string;
  runtime: BenchRuntime;
  /** "ORT", "ORT 1 thread", "ORT cuda" (a GPU provider) or "TF.js wasm". */
  label: string;
  threads: number;
  /** What one run is fed, e.g. "uint8 NHWC 416x416". */
  input: string;
  stats: LatencyStats;
  /** Every timed run in the order it ran (frame order), for looking at drift and outliers. */
  samplesMs: number[];
  /** TF.js p50 / this row's p50, both from this run; null where no TF.js row exists. */
  speedupVsTfjs: number | null;
  /** The TF.js row speedupVsTfjs is relative to (-u8 models compare with their parent's graph). */
  tfjsBaseline: string | null;
}

export interface SkippedRun {
  model: string;
  runtime: BenchRuntime;
  reason: string;
}

export interface ModelBenchResult {
  bench: "model";
  schemaVersion: 1;
  startedAt: string;
  command: string;
  machine: MachineInfo;
  versions: { node: string; onnxruntime: string; tfjs: string | null; tfjsBackendWasm: string | null };
  tfjsBackend: TfjsBackendInfo | null;
  settings: {
    frames: number;
    warmup: number;
    threads: number;
    provider: ExecutionProvider;
    models: string[];
    tfjs: boolean;
    video: string;
    /** Positions in the clip of the frames that were decoded, in order. */
    frameIndices: number[];
    percentiles: string;
  };
  rows: ModelBenchRow[];
  skipped: SkippedRun[];
  notes: string[];
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`benchModels: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

function nonNegativeInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`benchModels: ${name} must be a non-negative integer, got ${String(v)}`);
  return v;
}

/**
 * `n` frame positions spread evenly over a clip of `total` frames, starting at the first.
 * The last one stays total/n short of the end, which absorbs a frame count that is only an
 * estimate (duration x rate). Positions repeat when n > total and are returned once.
 */
export function spreadFrameIndices(total: number | undefined, n: number): number[] {
  positiveInt("frames", n);
  if (total === undefined || !(total > 0)) return Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const idx = Math.floor((i * total) / n);
    if (out[out.length - 1] !== idx) out.push(idx);
  }
  return out;
}

/** Linear interpolation between closest ranks (numpy's default); `sorted` ascending. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError("percentile: no samples");
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentile: p must be in [0, 1], got ${String(p)}`);
  const rank = p * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function latencyStats(samplesMs: readonly number[]): LatencyStats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return {
    runs: sorted.length,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    meanMs: mean,
    minMs: sorted[0],
    maxMs: sorted[sorted.length - 1],
    runsPerSec: 1000 / mean,
  };
}

/** A command line a POSIX shell reads back as the same argv. */
export function commandLineOf(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

function defaultCommand(): string {
  const script = process.argv[1];
  return commandLineOf(["node", ...(script ? [relative(process.cwd(), script) || script] : []), ...process.argv.slice(2)]);
}

function describeInput(input: ModelInputSpec): string {
  return `${input.dtype} ${input.layout} ${input.width}x${input.height}`;
}

/**
 * One frame as the graph wants it: fitPicture (the Detector's CPU fit), then the shared
 * input-tensor.ts step. Not Detector.preprocess itself, which needs a session per call site
 * and returns ort.Tensors, while the TF.js side needs the bare array.
 */
export function prepareInput(img: RgbImage, input: ModelInputSpec): ModelInputData {
  const { fitted } = fitPicture(img, input);
  // fitted is ours alone, so a BGR uint8 model may swap its channels in place.
  return toModelInputData(fitted, input, { consume: true, where: "bench model" });
}

/** The model at the top of `name`'s parent chain: the one converted straight from TF.js. */
function rootOf(manifest: Manifest, name: string, manifestPath: string): string {
  const seen = new Set<string>();
  let cur = name;
  for (;;) {
    if (seen.has(cur)) throw new Error(`${manifestPath}: model "${name}" has a parent cycle (${[...seen].join(" -> ")})`);
    seen.add(cur);
    const parent = manifest.models[cur].parent;
    if (parent === null) return cur;
    if (!(parent in manifest.models)) {
      throw new Error(`${manifestPath}: model "${cur}" names parent "${parent}", which is not in the manifest`);
    }
    cur = parent;
  }
}

/** Where `perceptd models build` extracted the root model's TF.js graph. */
function tfjsGraphPath(entry: ModelEntry, tfjsDir: string | undefined): string | null {
  const json = entry.source.files.find((f) => f.endsWith(".json"));
  if (json === undefined) return null;
  const pkg = entry.source.package.split("/").pop() ?? entry.source.package;
  const dir = tfjsDir ?? resolve(REPO_ROOT, ".cache", "vendor", `${pkg}-${entry.source.version}`);
  return resolve(dir, basename(json));
}

interface Runner {
  model: string;
  runtime: BenchRuntime;
  label: string;
  threads: number;
  input: string;
  samples: number[];
  /** Runs on frame `frame`; the returned promise settles when the outputs are in JS memory. */
  run(frame: number): Promise<void>;
  release(): Promise<void>;
}

/** Models measured together: the ones sharing a TF.js graph, plus that graph. */
interface Group {
  root: string;
  models: ResolvedModel[];
  tfjsGraph: string | null;
  tfjsSkip: string | null;
}

interface TfjsModule {
  info: TfjsBackendInfo;
  load(file: string): Promise<{ inputShape: number[]; run(x: Float32Array): Promise<unknown>; dispose(): void }>;
  version: string;
  wasmVersion: string;
}

async function loadTfjs(): Promise<TfjsModule> {
  // Imported on demand: TF.js takes about a second to load, for nothing under --no-tfjs.
  const [{ TfjsReference, initTfjsBackend }, tf, wasm] = await Promise.all([
    import("../../model/tfjs/reference.ts"),
    import("@tensorflow/tfjs"),
    import("@tensorflow/tfjs-backend-wasm"),
  ]);
  const info = await initTfjsBackend("wasm");
  return {
    info,
    load: (file) => TfjsReference.load(file, { backend: "wasm", threads: 1 }),
    version: tf.version.tfjs,
    wasmVersion: wasm.version_wasm,
  };
}

function elapsedMs(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Progress = (event: BenchProgress) => void;

/** The models grouped by the TF.js graph they descend from, each group with that graph or why it is left out. */
function groupByTfjsRoot(manifest: Manifest, manifestPath: string, models: readonly ResolvedModel[], wantTfjs: boolean, tfjsDir: string | undefined): Map<string, Group> {
  const groups = new Map<string, Group>();
  for (const m of models) {
    const root = rootOf(manifest, m.name, manifestPath);
    let g = groups.get(root);
    if (!g) {
      g = { root, models: [], tfjsGraph: null, tfjsSkip: null };
      const rootEntry = manifest.models[root];
      const graph = tfjsGraphPath(rootEntry, tfjsDir);
      if (!wantTfjs) g.tfjsSkip = "--no-tfjs";
      else if (rootEntry.input.dtype !== "float32") g.tfjsSkip = `root model "${root}" has ${rootEntry.input.dtype} input; TF.js graphs take float32`;
      else if (graph === null) g.tfjsSkip = `model "${root}" lists no TF.js model.json in source.files`;
      else g.tfjsGraph = graph;
      groups.set(root, g);
    }
    g.models.push(m);
  }
  return groups;
}

/** TF.js, loaded only when some group has its graph on disk; the groups whose graph is missing are skipped. */
async function loadTfjsForGroups(groups: Map<string, Group>): Promise<{ tfjs: TfjsModule | null; skipped: SkippedRun[] }> {
  let tfjs: TfjsModule | null = null;
  for (const g of groups.values()) {
    if (g.tfjsGraph !== null && !existsSync(g.tfjsGraph)) {
      g.tfjsSkip = `${g.tfjsGraph} not found (\`perceptd models build\` extracts it)`;
      g.tfjsGraph = null;
    }
  }
  if ([...groups.values()].some((g) => g.tfjsGraph !== null)) tfjs = await loadTfjs();
  const skipped: SkippedRun[] = [];
  for (const g of groups.values()) {
    if (g.tfjsSkip !== null) skipped.push({ model: g.root, runtime: "tfjs-wasm", reason: g.tfjsSkip });
  }
  return { tfjs, skipped };
}

/**
 * Decodes the frames spread over the video and prepares each model's input from them once,
 * before any timing; TF.js groups get their root's float input too.
 */
async function prepareInputs(
  video: string,
  frames: number,
  manifest: Manifest,
  groups: Map<string, Group>,
  progress: Progress,
): Promise<{ inputs: Map<string, ModelInputData[]>; frameIndices: number[]; notes: string[] }> {
  const inputSpecs = new Map<string, ModelInputSpec>();
  for (const g of groups.values()) {
    for (const m of g.models) inputSpecs.set(m.name, m.entry.input);
    if (g.tfjsGraph !== null) inputSpecs.set(g.root, manifest.models[g.root].input);
  }
  const info = await probeVideo(video);
  const wanted = spreadFrameIndices(info.frames, frames);
  const wantedSet = new Set(wanted);
  const inputs = new Map<string, ModelInputData[]>([...inputSpecs.keys()].map((k) => [k, []]));
  const frameIndices: number[] = [];
  progress({ kind: "decode", done: 0, total: wanted.length });
  for await (const f of readVideoFrames(video, { select: (i) => wantedSet.has(i), maxFrames: wanted.length })) {
    // Preprocessed right away: the decoded frame is a view on GStreamer's buffer, and keeping
    // only model inputs bounds memory to what the timed loop needs.
    for (const [name, spec] of inputSpecs) inputs.get(name)?.push(prepareInput(f.image, spec));
    frameIndices.push(f.index);
    progress({ kind: "decode", done: frameIndices.length, total: wanted.length });
  }
  if (frameIndices.length === 0) throw new Error(`${video}: no frames decoded`);
  const notes: string[] = [];
  if (frameIndices.length < frames) {
    notes.push(
      `${video} gave ${frameIndices.length} distinct frames of the ${frames} asked for; they are reused in turn ` +
        `so every runtime still runs ${frames} times`,
    );
  }
  return { inputs, frameIndices, notes };
}

/** One ONNX Runtime session on `provider` per model and thread count, each running the prepared inputs in turn. */
async function ortRunners(
  g: Group,
  inputs: Map<string, ModelInputData[]>,
  ortOptions: { provider: ExecutionProvider; tuning: ProviderTuning | undefined; threads: number },
  progress: Progress,
  into: Runner[],
): Promise<void> {
  const { provider, tuning, threads } = ortOptions;
  // A GPU provider's figure does not depend on the CPU threads ORT keeps beside it.
  const threadConfigs = threads === 1 || provider !== "cpu" ? [threads] : [threads, 1];
  const ortLabel = provider === "cpu" ? "ORT" : `ORT ${provider}`;
  for (const m of g.models) {
    const bytes = await readVerifiedModel(m);
    const tensors = (inputs.get(m.name) ?? []).map((d) => toOrtTensor(d, m.entry.input));
    for (const t of threadConfigs) {
      progress({ kind: "load", group: g.root, what: `${m.name} on ORT, ${t} thread${t === 1 ? "" : "s"}` });
      const created = await createSession(bytes, {
        executionProviders: [provider],
        tuning,
        intraOpThreads: t,
        // ORT's default sequential execution never uses inter-op threads; pinning them to
        // one leaves intra-op as the only thread count in play, the one the table shows.
        interOpThreads: 1,
        source: m.path,
      });
      const session = created.session;
      const inputName = m.entry.input.name;
      into.push({
        model: m.name,
        runtime: `onnxruntime-${provider}`,
        label: t === threads ? ortLabel : `${ortLabel} 1 thread`,
        threads: t,
        input: describeInput(m.entry.input),
        samples: [],
        run: async (frame) => {
          await session.run({ [inputName]: tensors[frame % tensors.length] });
        },
        release: () => session.release(),
      });
    }
  }
}

/** The group's TF.js graph on the wasm backend, checked against the manifest's input shape. */
async function tfjsRunner(g: Group & { tfjsGraph: string }, tfjs: TfjsModule, manifest: Manifest, manifestPath: string, inputs: Map<string, ModelInputData[]>, progress: Progress): Promise<Runner> {
  progress({ kind: "load", group: g.root, what: `${g.root} on TF.js wasm (${relative(process.cwd(), g.tfjsGraph)})` });
  const ref = await tfjs.load(g.tfjsGraph);
  const rootInput = manifest.models[g.root].input;
  if (ref.inputShape.join(",") !== rootInput.shape.join(",")) {
    ref.dispose();
    throw new Error(
      `${g.tfjsGraph}: TF.js graph input is [${ref.inputShape.join(", ")}], but model "${g.root}" in ${manifestPath} ` +
        `says [${rootInput.shape.join(", ")}]; the manifest and the vendored graph disagree`,
    );
  }
  const frameInputs = (inputs.get(g.root) ?? []).map((d) => {
    // Checked when grouping (the root's input is float32); a failure here is a bug.
    if (d.dtype !== "float32") throw new Error(`bench model: TF.js input for "${g.root}" is not float32`);
    return d.data;
  });
  return {
    model: g.root,
    runtime: "tfjs-wasm",
    label: "TF.js wasm",
    threads: tfjs.info.threads,
    input: describeInput(rootInput),
    samples: [],
    run: async (frame) => {
      await ref.run(frameInputs[frame % frameInputs.length]);
    },
    release: async () => ref.dispose(),
  };
}

/** Warm-up runs, then the timed ones, the runners alternating frame by frame; samples land in each runner. */
async function timeRunners(root: string, runners: readonly Runner[], frames: number, warmup: number, progress: Progress): Promise<void> {
  const runOne = async (r: Runner, frame: number): Promise<number> => {
    const t0 = process.hrtime.bigint();
    try {
      await r.run(frame);
    } catch (err) {
      throw new Error(`bench model: ${r.model} on ${r.label} (${r.threads} thread(s)), frame ${frame}: ${errorText(err)}`, {
        cause: err,
      });
    }
    return elapsedMs(t0);
  };
  for (let w = 0; w < warmup; w++) {
    progress({ kind: "run", group: root, frame: w + 1, frames: warmup, warmup: true });
    for (const r of runners) await runOne(r, w);
  }
  for (let f = 0; f < frames; f++) {
    progress({ kind: "run", group: root, frame: f + 1, frames, warmup: false });
    // The start rotates each frame so no runner always follows the same one: ORT's
    // worker threads spin for a while after a run, and whoever runs next pays for it.
    for (let k = 0; k < runners.length; k++) {
      const r = runners[(f + k) % runners.length];
      r.samples.push(await runOne(r, f));
    }
  }
}

/** A group's rows, each with its speed-up against the group's TF.js run when there is one. */
function groupRows(runners: readonly Runner[]): ModelBenchRow[] {
  const tfjsRow = runners.find((r) => r.runtime === "tfjs-wasm");
  const tfjsP50 = tfjsRow ? latencyStats(tfjsRow.samples).p50Ms : null;
  return runners.map((r): ModelBenchRow => {
    const stats = latencyStats(r.samples);
    return {
      model: r.model,
      runtime: r.runtime,
      label: r.label,
      threads: r.threads,
      input: r.input,
      stats,
      samplesMs: r.samples,
      speedupVsTfjs: tfjsP50 === null ? null : tfjsP50 / stats.p50Ms,
      tfjsBaseline: tfjsRow ? tfjsRow.model : null,
    };
  });
}

/** What the table measured and how to read it. */
function benchNotes(rows: readonly ModelBenchRow[], manifest: Manifest, threads: number): string[] {
  const notes: string[] = [];
  const hasTfjs = rows.some((r) => r.runtime === "tfjs-wasm");
  notes.push(
    "Timed: the graph run alone (ORT: await session.run" +
      (hasTfjs ? "; TF.js: upload the input, execute, read every output back" : "") +
      "). Decoding, resizing and normalisation happen once per frame before timing.",
  );
  if (hasTfjs) {
    notes.push(
      "TF.js wasm runs single-threaded with SIMD under Node (tfjs-backend-wasm turns its threads off there); that is " +
        "the setup compared against" +
        (threads === 1 ? "." : ", so the ORT 1 thread rows are the like-for-like comparison."),
    );
    if (rows.some((r) => r.runtime === "onnxruntime-cpu" && manifest.models[r.model].input.dtype === "uint8")) {
      notes.push(
        "-u8 models take uint8 pixels and normalise inside the graph (so their time includes it); the TF.js graph " +
          "they are compared with gets float input normalised beforehand, untimed.",
      );
    }
  }
  notes.push(
    "Runtimes alternate frame by frame on the same frames, starting with a different one each frame. runs/s is " +
      "sequential single-stream throughput (1000 / mean)." +
      (hasTfjs ? " speedup = TF.js p50 / row p50, against the same TF.js graph, both from this run." : ""),
  );
  return notes;
}

/**
 * Times every model's graph on ONNX Runtime (all cores and one thread, or one GPU provider) and, where its TF.js
 * ancestor is vendored, that graph on TF.js wasm, on the same frames: group the models, load
 * TF.js if needed, prepare the inputs once, then per group load, time and release.
 */
export async function benchModels(opts: ModelBenchOptions = {}): Promise<ModelBenchResult> {
  const startedAt = new Date().toISOString();
  const frames = positiveInt("frames", opts.frames ?? DEFAULT_FRAMES);
  const warmup = nonNegativeInt("warmup", opts.warmup ?? DEFAULT_WARMUP);
  const threads = positiveInt("threads", opts.threads ?? os.availableParallelism());
  const provider = opts.provider ?? "cpu";
  const wantTfjs = opts.tfjs ?? true;
  const video = resolve(opts.video ?? DEFAULT_BENCH_VIDEO);
  const manifestPath = opts.manifestPath ?? DEFAULT_MANIFEST_PATH;
  const progress = opts.onProgress ?? (() => undefined);

  const manifest = await readManifest(manifestPath);
  const names = [...new Set(opts.models ?? Object.keys(manifest.models))];
  if (names.length === 0) throw new RangeError("benchModels: models is empty; name at least one manifest model or leave it out");
  const groups = groupByTfjsRoot(manifest, manifestPath, names.map((n) => resolveModel(manifest, manifestPath, n)), wantTfjs, opts.tfjsDir);
  const { tfjs, skipped } = await loadTfjsForGroups(groups);
  const { inputs, frameIndices, notes } = await prepareInputs(video, frames, manifest, groups, progress);

  const rows: ModelBenchRow[] = [];
  for (const g of groups.values()) {
    const runners: Runner[] = [];
    try {
      await ortRunners(g, inputs, { provider, tuning: opts.tuning, threads }, progress, runners);
      if (g.tfjsGraph !== null && tfjs !== null) runners.push(await tfjsRunner({ ...g, tfjsGraph: g.tfjsGraph }, tfjs, manifest, manifestPath, inputs, progress));
      await timeRunners(g.root, runners, frames, warmup, progress);
    } finally {
      for (const r of runners) await r.release();
    }
    const done = groupRows(runners);
    progress({ kind: "group-done", group: g.root, rows: done });
    rows.push(...done);
  }
  notes.push(...benchNotes(rows, manifest, threads));

  return {
    bench: "model",
    schemaVersion: 1,
    startedAt,
    command: opts.command ?? defaultCommand(),
    machine: machineInfo(),
    versions: {
      node: process.version,
      onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
      tfjs: tfjs?.version ?? null,
      tfjsBackendWasm: tfjs?.wasmVersion ?? null,
    },
    tfjsBackend: tfjs?.info ?? null,
    settings: {
      frames,
      warmup,
      threads,
      provider,
      models: names,
      tfjs: wantTfjs,
      video,
      frameIndices,
      percentiles: "linear interpolation between closest ranks",
    },
    rows,
    skipped,
    notes,
  };
}

const TABLE_COLUMNS: Column[] = [
  { header: "model" },
  { header: "runtime" },
  { header: "threads", align: "right" },
  { header: "p50 ms", align: "right" },
  { header: "p99 ms", align: "right" },
  { header: "mean ms", align: "right" },
  { header: "runs/s", align: "right" },
  { header: "speedup vs TF.js", align: "right" },
];

export function modelBenchTable(result: ModelBenchResult): string {
  return markdownTable(
    TABLE_COLUMNS,
    result.rows.map((r) => [
      r.model,
      r.label,
      String(r.threads),
      formatMs(r.stats.p50Ms),
      formatMs(r.stats.p99Ms),
      formatMs(r.stats.meanMs),
      r.stats.runsPerSec.toFixed(1),
      formatRatio(r.speedupVsTfjs),
    ]),
  );
}

/** The human-readable report: setup, the table, notes, and how to reproduce it. */
export function renderModelBench(result: ModelBenchResult): string {
  const { machine: m, versions: v, settings: s } = result;
  const backend = result.tfjsBackend;
  const lines = [
    `machine:     ${m.cpu}, ${m.cores} cores (${m.availableParallelism} usable), ${m.arch}, ${m.platform}, ${m.totalMemoryGiB} GiB`,
    `node:        ${v.node}`,
    `onnxruntime: onnxruntime-node ${v.onnxruntime}, CPU execution provider`,
    v.tfjs === null || backend === null
      ? "tfjs:        not run"
      : `tfjs:        @tensorflow/tfjs ${v.tfjs}, backend ${backend.backend} ${v.tfjsBackendWasm ?? ""}` +
        `${backend.backend === "wasm" ? ` (SIMD ${backend.simd ? "on" : "off"}, ${backend.threads} thread)` : ""}`,
    `threads:     ORT intra-op ${s.threads}${s.threads === 1 || s.provider !== "cpu" ? "" : " (plus an ORT 1 thread row per model)"}; TF.js ${backend?.threads ?? "-"}`,
    `provider:    ${s.provider}`,
    `frames:      ${s.frames} timed + ${s.warmup} warm-up per row; ${s.frameIndices.length} frames of ${relative(process.cwd(), s.video) || s.video} ` +
      `(frames ${s.frameIndices.join(",")})`,
    "",
    modelBenchTable(result),
    "",
    ...result.notes.map((n) => `- ${n}`),
    ...result.skipped.map((k) => `- skipped ${k.model} on ${k.runtime}: ${k.reason}`),
    "",
    `command: ${result.command}`,
  ];
  return lines.join("\n") + "\n";
}
