// `perceptd detect <image|video>`: the detector run offline on one file, for checking a
// model on real footage and for scripts (--json). Images are decoded in JS; everything
// that is not a JPEG/PNG goes to GStreamer, so any container it can play works.
import { open, stat } from "node:fs/promises";
import { dirname, extname } from "node:path";
import type { Command } from "commander";
import * as ort from "onnxruntime-node";
import { Detector } from "../../infer/detector.ts";
import { EXECUTION_PROVIDERS, type ExecutionProvider } from "../../core/providers.ts";
import type { Detection } from "../../core/types.ts";
import { probeVideo, readVideoFrames } from "../../ingest/gst/video-file.ts";
import { readImageFile, writePng } from "../../ingest/image-file.ts";
import type { RgbImage } from "../../core/rgb-image.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../infer/manifest.ts";
import { isVideoPath } from "../../ingest/gst/video-writer.ts";
import { drawDetections } from "../../view/overlay.ts";
import { AnnotatedVideo, annotateFromBus } from "../annotated-video.ts";
import { loadConfig } from "../../config/load.ts";
import { corridorDrawing } from "../../daemon/view-stage.ts";

// ---------------------------------------------------------------------------------------
// --frames

interface FrameRange {
  first: number;
  /** Inclusive; Infinity for an open range ("10-"). */
  last: number;
  step: number;
}

export interface FrameSelection {
  spec: string;
  ranges: readonly FrameRange[];
  /** Highest selectable index; Infinity when a range is open, so the video is read to its end. */
  last: number;
  has(index: number): boolean;
}

const FRAME_ITEM = /^(\d+)(?:-(\d*)(?::(\d+))?)?$/;

/**
 * Parses N, A-B (inclusive), A-B:S (every S-th frame from A up to B), A- and A-:S (to the
 * end), comma-separated: "0-40:10" is 0, 10, 20, 30, 40. Frame numbers count from 0.
 */
export function parseFrameSpec(spec: string): FrameSelection {
  const bad = (why: string): Error => new Error(`bad --frames spec ${JSON.stringify(spec)}: ${why}`);
  const items = spec.split(",").map((s) => s.trim());
  const ranges: FrameRange[] = [];
  for (const item of items) {
    if (item === "") throw bad("empty item; expected e.g. 5, 0-40, 0-40:10 or 100-");
    const m = FRAME_ITEM.exec(item);
    if (m === null) {
      throw bad(`${JSON.stringify(item)} is not N, A-B, A-B:STEP or A- (frame numbers are integers from 0)`);
    }
    const first = Number(m[1]);
    const isRange = item.includes("-");
    const last = !isRange ? first : m[2] === "" ? Number.POSITIVE_INFINITY : Number(m[2]);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    if (!Number.isSafeInteger(first) || (Number.isFinite(last) && !Number.isSafeInteger(last))) {
      throw bad(`${JSON.stringify(item)}: frame number too large`);
    }
    if (last < first) throw bad(`${JSON.stringify(item)}: range ends before it starts`);
    if (!Number.isSafeInteger(step) || step < 1) throw bad(`${JSON.stringify(item)}: step must be at least 1`);
    ranges.push({ first, last, step });
  }
  return {
    spec,
    ranges,
    last: Math.max(...ranges.map((r) => r.last)),
    has: (i) => ranges.some((r) => i >= r.first && i <= r.last && (i - r.first) % r.step === 0),
  };
}

// ---------------------------------------------------------------------------------------
// Other option values

interface DetectFlags {
  model?: string;
  manifest?: string;
  json?: boolean;
  out?: string;
  scoreThreshold?: string;
  classes?: string;
  frames?: string;
  providers: string;
  fromBus?: string;
  camera?: string;
  busTimeout?: string;
  config?: string;
}

interface DetectSettings {
  input: string;
  modelName?: string;
  manifestPath: string;
  json: boolean;
  out?: string;
  /** out is a video (.mp4, .mkv) rather than a PNG */
  outVideo: boolean;
  fromBus?: { endpoint: string; camera?: string; silenceMs: number; config?: string };
  scoreThreshold?: number;
  classes?: string[];
  frames?: FrameSelection;
  providers: ExecutionProvider[];
}

// Number() alone accepts "", " ", "0x1" and "Infinity"; a threshold is a plain decimal.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function parseScoreThreshold(text: string): number {
  const v = DECIMAL.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!(v >= 0 && v <= 1)) {
    throw new Error(`--score-threshold must be a number in [0, 1], got ${JSON.stringify(text)}`);
  }
  return v;
}

function parseList(flag: string, text: string): string[] {
  const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw new Error(`${flag} needs a comma-separated list, got ${JSON.stringify(text)}`);
  return items;
}

function parseProviders(text: string): ExecutionProvider[] {
  const known: readonly string[] = EXECUTION_PROVIDERS;
  return parseList("--providers", text).map((p) => {
    if (!known.includes(p)) {
      throw new Error(`--providers: unknown execution provider ${JSON.stringify(p)}; known: ${known.join(", ")}`);
    }
    return p as ExecutionProvider;
  });
}

function settingsFrom(input: string, flags: DetectFlags): DetectSettings {
  const s: DetectSettings = {
    input,
    modelName: flags.model,
    manifestPath: flags.manifest ?? DEFAULT_MANIFEST_PATH,
    json: flags.json === true,
    outVideo: false,
    providers: parseProviders(flags.providers),
  };
  if (flags.scoreThreshold !== undefined) s.scoreThreshold = parseScoreThreshold(flags.scoreThreshold);
  if (flags.classes !== undefined) s.classes = parseList("--classes", flags.classes);
  if (flags.frames !== undefined) s.frames = parseFrameSpec(flags.frames);
  if (flags.out !== undefined) {
    // The name says the format: a .jpg name would hold PNG bytes and confuse every viewer.
    s.outVideo = isVideoPath(flags.out);
    if (extname(flags.out).toLowerCase() !== ".png" && !s.outVideo) {
      throw new Error(`--out writes a PNG image (.png) or an annotated video (.mp4, .mkv), got ${JSON.stringify(flags.out)}`);
    }
    s.out = flags.out;
  }
  if (flags.fromBus !== undefined) {
    if (!/^(tcp|ipc):\/\//.test(flags.fromBus)) throw new Error(`--from-bus must be a bus endpoint, tcp://host:port or ipc://path, got ${JSON.stringify(flags.fromBus)}`);
    if (!s.outVideo) throw new Error("--from-bus draws a recording with a daemon's detections: it needs --out NAME.mp4 or NAME.mkv");
    const timeout = flags.busTimeout === undefined ? 5 : Number(flags.busTimeout);
    if (!(timeout > 0 && timeout <= 3600)) throw new Error(`--bus-timeout must be seconds in (0, 3600], got ${JSON.stringify(flags.busTimeout)}`);
    s.fromBus = { endpoint: flags.fromBus, camera: flags.camera, silenceMs: timeout * 1000, config: flags.config };
  } else if (flags.camera !== undefined || flags.busTimeout !== undefined || flags.config !== undefined) {
    throw new Error("--camera, --bus-timeout and --config go with --from-bus");
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// Input checks

type InputKind = "image" | "video";

async function classifyInput(path: string): Promise<InputKind> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error(`${path}: no such file`);
    throw new Error(`${path}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (info.isDirectory()) throw new Error(`${path}: is a directory, expected an image or video file`);
  if (info.size === 0) throw new Error(`${path}: empty file, expected an image or video`);
  const head = Buffer.alloc(8);
  const fh = await open(path, "r");
  try {
    await fh.read(head, 0, 8, 0);
  } finally {
    await fh.close();
  }
  // The same signatures readImageFile sniffs; anything else is GStreamer's to recognise.
  const jpeg = head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
  const png = head.equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  return jpeg || png ? "image" : "video";
}

async function checkOutDir(out: string): Promise<void> {
  const dir = dirname(out);
  const info = await stat(dir).catch(() => null);
  if (info === null || !info.isDirectory()) throw new Error(`--out ${out}: folder ${dir} does not exist`);
}

// ---------------------------------------------------------------------------------------
// Output

const round1 = (v: number): number => Math.round(v * 10) / 10;
const round4 = (v: number): number => Math.round(v * 1e4) / 1e4;

function jsonLine(file: string, frame: number, d: Detection): string {
  return JSON.stringify({ file, frame, class: d.label, score: round4(d.score), box: d.box.map(round1) });
}

/** `w` is the class column width, fixed per model so frames line up with each other. */
function tableLines(frame: number, dets: readonly Detection[], w: number): string[] {
  const lines: string[] = [];
  if (dets.length > 0) {
    lines.push(`${"frame".padStart(6)}  ${"class".padEnd(w)}   score  box x1, y1, x2, y2`);
    for (const d of dets) {
      const box = d.box.map((v) => round1(v).toFixed(1).padStart(6)).join(", ");
      lines.push(`${String(frame).padStart(6)}  ${d.label.padEnd(w)}  ${d.score.toFixed(4)}  ${box}`);
    }
  }
  lines.push(`frame ${frame}: ${summarise(dets)}`);
  return lines;
}

function summarise(dets: readonly Detection[]): string {
  if (dets.length === 0) return "no detections";
  const counts = new Map<string, number>();
  for (const d of dets) counts.set(d.label, (counts.get(d.label) ?? 0) + 1);
  const byClass = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const n = dets.length;
  return `${n} detection${n === 1 ? "" : "s"} (${byClass.map(([l, c]) => `${l} ${c}`).join(", ")})`;
}

/** A one-line status on stderr, kept out of the way of stdout lines on the same terminal. */
class Progress {
  private shown = false;
  private lastDraw = 0;
  constructor(readonly enabled: boolean) {}

  update(text: string): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    process.stderr.write(`\r\x1b[K${text}`);
    this.shown = true;
  }

  clear(): void {
    if (!this.shown) return;
    process.stderr.write("\r\x1b[K");
    this.shown = false;
    // Redraw on the next update rather than waiting out the throttle.
    this.lastDraw = 0;
  }
}

// ---------------------------------------------------------------------------------------
// The run

interface FrameResult {
  index: number;
  image: RgbImage;
  detections: Detection[];
}

async function runDetect(settings: DetectSettings): Promise<void> {
  const kind = await classifyInput(settings.input);
  if (kind === "image" && settings.frames !== undefined && !settings.frames.has(0)) {
    throw new Error(`--frames ${JSON.stringify(settings.frames.spec)} selects no frame of ${settings.input}: an image has only frame 0`);
  }
  if (settings.out !== undefined) await checkOutDir(settings.out);
  if (kind === "image" && settings.outVideo) throw new Error(`--out ${settings.out}: an annotated video needs a video input; ${settings.input} is an image (use a .png name)`);
  if (settings.fromBus !== undefined) {
    await runFromBus(settings, settings.fromBus);
    return;
  }

  const manifest = await readManifest(settings.manifestPath);
  const model = resolveModel(manifest, settings.manifestPath, settings.modelName);
  // Providers that are not installed make ORT log an error line of its own before we fall
  // back; the summary reports each failed provider, so only fatal native logs get through.
  ort.env.logLevel = "fatal";
  const detector = await Detector.create(model, {
    scoreThreshold: settings.scoreThreshold,
    classFilter: settings.classes,
    executionProviders: settings.providers,
  });

  let stdoutClosed = false;
  let stdoutFailure: Error | null = null;
  const onStdoutError = (err: NodeJS.ErrnoException): void => {
    // `perceptd detect ... --json | head` closes the pipe early: that ends the run, quietly.
    // Anything else is reported once the run has wound down (a throw here would be uncaught).
    stdoutClosed = true;
    if (err.code !== "EPIPE") stdoutFailure = err;
  };
  process.stdout.on("error", onStdoutError);

  const progress = new Progress(kind === "video" && !settings.json && process.stderr.isTTY === true);
  const print = (lines: readonly string[]): void => {
    if (stdoutClosed || lines.length === 0) return;
    // Only a shared terminal needs the status line out of the way; redirected output doesn't.
    if (process.stdout.isTTY === true) progress.clear();
    process.stdout.write(lines.join("\n") + "\n");
  };

  const classWidth = Math.max(5, ...model.entry.labels.map((l) => l.length));
  let frames = 0;
  let sumPre = 0;
  let sumInfer = 0;
  let sumDecode = 0;
  let lastFrame: FrameResult | null = null;
  const video = settings.outVideo && settings.out !== undefined ? new AnnotatedVideo(settings.out, (await probeVideo(settings.input)).fps ?? 10) : null;
  const handle = async (index: number, image: RgbImage): Promise<void> => {
    const { detections, timings } = await detector.detect(image);
    // Drawn after the table line's data is taken: drawing changes the image in place.
    if (video !== null) await video.write(image, { objects: detections, caption: `frame ${index}` });
    frames++;
    sumPre += timings.preprocessMs;
    sumInfer += timings.inferenceMs;
    sumDecode += timings.decodeMs;
    lastFrame = { index, image, detections };
    if (settings.json) print(detections.map((d) => jsonLine(settings.input, index, d)));
    else print([...(frames > 1 ? [""] : []), ...tableLines(index, detections, classWidth)]);
  };

  let written: Awaited<ReturnType<AnnotatedVideo["finish"]>> = null;
  try {
    if (kind === "image") {
      await handle(0, await readImageFile(settings.input));
    } else {
      await runVideo(settings, progress, handle, () => stdoutClosed);
    }
    written = (await video?.finish()) ?? null;
  } catch (e) {
    await video?.abort();
    throw e;
  } finally {
    progress.clear();
    process.stdout.off("error", onStdoutError);
    await detector.close();
  }

  // TS cannot see the assignments inside the callbacks.
  const failure = stdoutFailure as Error | null;
  if (failure !== null) throw new Error(`cannot write to stdout: ${failure.message}`, { cause: failure });
  const last = lastFrame as FrameResult | null;
  if (settings.out !== undefined && !settings.outVideo && last !== null) {
    await writePng(settings.out, drawDetections(last.image, last.detections));
  }
  if (!settings.json) {
    const lines = [
      "",
      `model ${model.name} (${model.entry.architecture}, ${model.entry.input.width}x${model.entry.input.height} ` +
        `${model.entry.input.dtype}), execution provider ${detector.provider}, ${frames} frame${frames === 1 ? "" : "s"}, ` +
        `mean inference ${(sumInfer / frames).toFixed(1)} ms ` +
        `(preprocess ${(sumPre / frames).toFixed(1)} ms, decode+nms ${(sumDecode / frames).toFixed(1)} ms)`,
    ];
    const failed = detector.providerAttempts.filter((a) => a.error !== undefined);
    if (failed.length > 0) lines.push(`providers not available: ${failed.map((a) => `${a.provider}: ${a.error}`).join("; ")}`);
    for (const w of detector.warnings) lines.push(`warning: ${w}`);
    if (written !== null) lines.push(`annotated video written to ${settings.out}: ${written.frames} frames, H.264, ${(written.bytes / 1e6).toFixed(1)} MB`);
    else if (settings.out !== undefined && last !== null) {
      lines.push(`annotated ${kind === "video" ? `frame ${last.index}` : "image"} written to ${settings.out}`);
    }
    print(lines);
  }
}

/** --from-bus: the recording drawn with a running daemon's detections; no model runs here. */
async function runFromBus(settings: DetectSettings, bus: NonNullable<DetectSettings["fromBus"]>): Promise<void> {
  const progress = new Progress(process.stderr.isTTY === true);
  const sel = settings.frames;
  const corridors = bus.config === undefined ? undefined : await corridorsOf(bus.config);
  let summary;
  try {
    summary = await annotateFromBus({
      ...bus,
      input: settings.input,
      out: settings.out!,
      select: sel?.has,
      last: sel !== undefined && Number.isFinite(sel.last) ? sel.last : undefined,
      progress: (t) => progress.update(t),
      corridor: corridors,
    });
  } finally {
    progress.clear();
  }
  const n = summary.frames;
  process.stdout.write(
    `annotated video written to ${settings.out}: ${n} frames, H.264, ${(summary.bytes / 1e6).toFixed(1)} MB, camera ${summary.camera ?? "?"} from ${bus.endpoint}\n` +
      `  ${summary.exact} frames with their own detections, ${summary.held} dropped by the daemon (drawn with the last detections before them), ` +
      `${summary.bare} with none (before the first published frame or after the bus went quiet)\n`,
  );
}

/** The corridors of the cameras in a daemon config, to draw them as the live view does. */
async function corridorsOf(path: string): Promise<(camera: string, width: number, height: number) => [number, number][] | null> {
  let config;
  try {
    config = (await loadConfig(path)).config;
  } catch (e) {
    throw new Error(`--config ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const byId = new Map(config.cameras.map((c) => [c.id, corridorDrawing(c)]));
  return (camera, width, height) => byId.get(camera)?.(width, height) ?? null;
}

async function runVideo(
  settings: DetectSettings,
  progress: Progress,
  handle: (index: number, image: RgbImage) => Promise<void>,
  stop: () => boolean,
): Promise<void> {
  const { input, frames: selection } = settings;
  let total: number | undefined;
  if (progress.enabled && !(selection !== undefined && Number.isFinite(selection.last))) {
    // Only for the progress line's "of ~N"; a failure here is reported by the real read below.
    total = await probeVideo(input).then((i) => i.frames, () => undefined);
  }
  const started = performance.now();
  let handled = 0;
  try {
    for await (const frame of readVideoFrames(input, { select: selection?.has })) {
      await handle(frame.index, frame.image);
      handled++;
      const fps = handled / ((performance.now() - started) / 1000);
      const end =
        selection !== undefined && Number.isFinite(selection.last) ? `/${selection.last}` : total === undefined ? "" : `/~${total}`;
      progress.update(`${input}: frame ${frame.index}${end}, ${fps.toFixed(1)} frames/s`);
      // Past the last selected frame nothing more can match; stop decoding the rest.
      if (stop() || (selection !== undefined && frame.index >= selection.last)) break;
    }
  } catch (err) {
    if (handled > 0) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    // GStreamer's message already starts with the path; say what we tried first.
    const why = detail.startsWith(`${input}: `) ? detail.slice(input.length + 2) : detail;
    throw new Error(`${input}: not a JPEG/PNG image, and GStreamer could not decode it as video: ${why}`, { cause: err });
  }
  if (handled === 0) {
    throw new Error(
      selection === undefined
        ? `${input}: GStreamer decoded no video frames from it`
        : `--frames ${JSON.stringify(selection.spec)} selects no frame of ${input} (it ends before the first selected frame)`,
    );
  }
}

// ---------------------------------------------------------------------------------------

const HELP_AFTER = `
Input is told apart by content, not by name: JPEG and PNG files are images (frame 0);
everything else is decoded as video through GStreamer (AVI, MP4, MKV, ...).

--frames selects video frames by 0-based index, comma-separated:
  5          frame 5
  0-40       frames 0 to 40
  0-40:10    every 10th frame from 0 to 40 (0, 10, 20, 30, 40)
  100-       frame 100 to the end;  0-:25  every 25th frame
Default: every frame. Decoding stops after the last selected frame.

--out NAME.png writes the annotated image as PNG; for a video it is the last selected
frame, e.g. frame 40 for --frames 0-40:10. --out NAME.mp4 or NAME.mkv writes every
selected frame of a video annotated, as H.264 at the input's frame rate (GStreamer's
openh264enc). Either way the file appears only when complete (a temp file, renamed).

--from-bus ENDPOINT draws a recording with what a running perceptd published for it
instead of running a model here: its detections (with track ids, distances, time to
collision) and alerts, matched to the recording's frames by frame sequence number. Start
it before the daemon replays the same file; frames the daemon dropped are drawn with
the last detections before them. Sequence numbers count the frames the daemon received,
so they match the file's frames when the daemon replays it with realtime: false (every
frame); paced replays can skip frames under load and shift the match. --camera picks a
camera (default: the first heard); --bus-timeout (seconds, default 5) is how long the bus
may stay quiet before the rest of the video is drawn bare; --config (the daemon's
configuration) draws the camera's corridor as well.

--json prints one JSON object per detection per line, and nothing else, on stdout:
  {"file":"in.avi","frame":10,"class":"person","score":0.8123,"box":[x1,y1,x2,y2]}
Boxes are in source pixels rounded to 0.1, scores to 4 decimals.

Exit status: 0 ok, 1 bad input/model/option value, 2 bad command line.

Examples:
  perceptd detect street.jpg --out street-annotated.png
  perceptd detect vtest.avi --frames 0-40:10 --classes person
  perceptd detect vtest.avi --json --model nanodet | jq .score
  perceptd detect vtest.avi --out vtest-annotated.mp4
  perceptd detect vtest.avi --out seen.mkv --from-bus tcp://127.0.0.1:5555`;

export function register(program: Command): void {
  program
    .command("detect")
    .description("run an object detector on an image or a video file and print what it finds")
    .argument("<input>", "image (JPEG/PNG) or video file (anything GStreamer decodes)")
    .option("-m, --model <name>", "model name from the manifest (default: the manifest's default model)")
    .option("--manifest <path>", "model manifest (default: models/manifest.json of this perceptd)")
    .option("--json", "JSON lines, one per detection (see below)")
    .option("-o, --out <file>", "write the annotated image as .png (video: the last selected frame), or the annotated video as .mp4 or .mkv")
    .option("-s, --score-threshold <x>", "drop detections scoring at or below x, in [0, 1] (default 0.35)")
    .option("-c, --classes <list>", "only these class labels, comma-separated, e.g. person,car")
    .option("-f, --frames <spec>", "video frames to run on, e.g. 0-40:10, 5 or 0,12,30 (default: all)")
    .option("--providers <list>", "execution providers to try in order", EXECUTION_PROVIDERS.join(","))
    .option("--from-bus <endpoint>", "draw the video with the detections a running daemon publishes at this bus endpoint (needs --out .mp4/.mkv)")
    .option("--camera <id>", "with --from-bus: the daemon's camera to take (default: the first heard)")
    .option("--bus-timeout <s>", "with --from-bus: seconds the bus may stay quiet before the rest is drawn without detections (default 5)")
    .option("--config <path>", "with --from-bus: the daemon's configuration, to draw its cameras' corridors too")
    .addHelpText("after", HELP_AFTER)
    .action(async (input: string, flags: DetectFlags) => {
      await runDetect(settingsFrom(input, flags));
    });
}
