// The publisher of `perceptd bench pipeline`'s (c2) and (c3), as a child process.
//
//   (c2) the bus alone: detections messages through the daemon's own BusPublisher and
//        encoder at a fixed rate, with no camera, no model and no worker thread, so the
//        bench's subscriber times what ZeroMQ over loopback TCP and two processes waking up
//        cost on this machine, side by side with the daemon's (c) at the same rate.
//   (c3) the model and the bus: the same, with one `session.run` of the bench's raw loop
//        (raw-model.ts: pre-decoded frames, the daemon's session options, outputs freed)
//        on this process's main thread before each message. The least any design of the
//        daemon could do per frame on this machine, with nothing of the daemon between the
//        model and the bus: no GStreamer, no worker thread, no decode, no hazard stage.
//
//   node --import tsx src/cli/bench/bus-floor-publisher.ts <fps> [<model-json>]
//   (daemon-process.ts: BUS_FLOOR_PUBLISHER; <model-json>: ModelRunSchema below)
//
// It warms up its publishing path first, as the daemon does (src/bus/warmup.ts), and with a
// model decodes its frames and runs the model `warmup` times before it binds.
//
// Writes JSON log lines on stdout like the daemon: one {"msg": BUS_FLOOR_BOUND_MSG,
// "endpoints": [...]} once bound, then publishes until SIGTERM or SIGINT, when it flushes,
// closes and exits 0; its last line, "bus floor stopped", carries with a model every run's
// `session.run` time in ms, indexed by the messages' frame seq (`runsMs`). Each message's
// tIngestMonoNs is taken as its tick runs, where the daemon takes a frame from the appsink,
// so receipt minus it is the bus's own latency, or the model's and the bus's.
import { BusPublisher } from "../../bus/publisher.ts";
import { warmUpBus } from "../../bus/warmup.ts";
import type { PublishedDetection } from "../../bus/codec.ts";
import { z } from "zod";
import { formatZodIssues } from "../../model/manifest.ts";
import { BUS_FLOOR_BOUND_MSG } from "./daemon-process.ts";
import { createRawSession, decodeRawFrames, loadRawModel } from "./raw-model.ts";
import { timedRun } from "./timed-run.ts";

/** The camera id the messages carry. */
const CAMERA = "bench";

/**
 * A frame's worth of detections like the daemon's on vtest.avi (a few people walking), so
 * the payload is the size the daemon sends.
 */
function sampleDetections(): PublishedDetection[] {
  return Array.from({ length: 6 }, (_, i) => ({
    box: [40 + 110 * i, 120 + 8 * i, 90 + 110 * i, 260 + 8 * i],
    score: 0.9 - 0.05 * i,
    classId: 0,
    label: "person",
    trackId: BigInt(i + 1),
  }));
}

function log(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: Date.now(), ...fields })}\n`);
}

function parseFps(arg: string | undefined): number {
  const fps = Number(arg);
  if (arg === undefined || !Number.isFinite(fps) || fps <= 0 || fps > 1000) {
    throw new RangeError(`bus-floor-publisher: rate must be frames/s in (0, 1000], got ${JSON.stringify(arg)}`);
  }
  return fps;
}

/** (c3)'s model, as the bench's raw loop runs it. */
export const ModelRunSchema = z
  .object({
    video: z.string().min(1),
    manifestPath: z.string().min(1),
    /** the manifest's default when absent */
    model: z.string().min(1).optional(),
    /** frames decoded up front, run in turn */
    frames: z.number().int().positive(),
    /** untimed runs before the bind */
    warmup: z.number().int().nonnegative(),
    threads: z.number().int().nonnegative(),
    spinning: z.boolean(),
  })
  .strict();
export type ModelRun = z.infer<typeof ModelRunSchema>;

function parseModelRun(arg: string | undefined): ModelRun | null {
  if (arg === undefined) return null;
  let json: unknown;
  try {
    json = JSON.parse(arg);
  } catch (err) {
    throw new SyntaxError(`bus-floor-publisher: the model argument is not JSON (${(err as Error).message}): ${arg}`, { cause: err });
  }
  const parsed = ModelRunSchema.safeParse(json);
  if (!parsed.success) throw new RangeError(formatZodIssues("bus-floor-publisher: the model argument", parsed.error));
  return parsed.data;
}

/** (c3)'s model step: `next()` runs the model once on the next frame; `runsMs` holds every run's time, in order. */
interface ModelStep {
  name: string;
  next: () => Promise<void>;
  runsMs: number[];
  release: () => Promise<void>;
}

async function prepareModel(run: ModelRun): Promise<ModelStep> {
  const model = await loadRawModel(run.manifestPath, run.model);
  const tensors = await decodeRawFrames(run.video, run.frames, model.input);
  const session = await createRawSession(model, run);
  for (let w = 0; w < run.warmup; w++) await timedRun(session, model.input.name, tensors[w % tensors.length]);
  const runsMs: number[] = [];
  return {
    name: model.name,
    runsMs,
    next: async () => {
      runsMs.push(await timedRun(session, model.input.name, tensors[runsMs.length % tensors.length]));
    },
    release: () => session.release(),
  };
}

async function main(argv: string[]): Promise<void> {
  const fps = parseFps(argv[0]);
  const modelRun = parseModelRun(argv[1]);
  const periodNs = BigInt(Math.round(1e9 / fps));
  const model = modelRun === null ? null : await prepareModel(modelRun);
  // As the daemon does before its first frame (src/daemon/daemon.ts).
  await warmUpBus();
  const bus = await BusPublisher.bind(["tcp://127.0.0.1:0"], { sendHighWaterMark: 1000 });
  log({ level: "info", msg: BUS_FLOOR_BOUND_MSG, endpoints: bus.endpoints, fps, model: model?.name ?? null });

  const detections = sampleDetections();
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  /** the tick running now, if any: a stop waits for its run to end before the session goes */
  let running: Promise<void> = Promise.resolve();
  let fail: (err: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  let seq = 0n;
  const start = process.hrtime.bigint();
  // Ticks on an absolute schedule, as a camera's frames come: a late timer or a slow run
  // does not push the following ticks back (a late one fires at once).
  const tick = async (): Promise<void> => {
    const tIngestMonoNs = process.hrtime.bigint();
    if (model !== null) await model.next();
    // Published even when a stop came during the run, as the daemon finishes its frame in flight.
    bus.publishMessage(
      "detections",
      { model: model?.name ?? "bus-floor", frameWidthPx: 768, frameHeightPx: 576, detections },
      { cameraId: CAMERA, frameSeq: seq, tIngestMonoNs },
    );
    seq++;
    if (stopping) return;
    const waitNs = start + seq * periodNs - process.hrtime.bigint();
    timer = setTimeout(startTick, Math.max(0, Math.ceil(Number(waitNs) / 1e6)));
  };
  const startTick = (): void => {
    running = tick();
    running.catch(fail);
  };
  startTick();

  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  try {
    await Promise.race([stopped, failed]);
  } finally {
    stopping = true;
    clearTimeout(timer);
    await running.catch(() => undefined);
    await bus.close();
    await model?.release();
  }
  log({ level: "info", msg: "bus floor stopped", published: Number(seq), ...(model === null ? {} : { runsMs: model.runsMs }) });
}

main(process.argv.slice(2)).catch((err: unknown) => {
  log({ level: "fatal", msg: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
});
