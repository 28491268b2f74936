// The publisher of `perceptd bench pipeline`'s (c2): the bus alone, as a child process.
// It publishes detections messages through the daemon's own BusPublisher and encoder at a
// fixed rate, with no camera, no model and no worker thread, so the bench's subscriber
// times what ZeroMQ over loopback TCP and two processes waking up cost on this machine,
// side by side with the daemon's (c) at the same rate.
//
//   node --import tsx src/cli/bench/bus-floor-publisher.ts <fps>   (daemon-process.ts: BUS_FLOOR_PUBLISHER)
//
// It warms up its publishing path first, as the daemon does (src/bus/warmup.ts).
//
// Writes JSON log lines on stdout like the daemon: one {"msg": BUS_FLOOR_BOUND_MSG,
// "endpoints": [...]} once bound, then publishes until SIGTERM or SIGINT, when it flushes,
// closes and exits 0. Each message's tIngestMonoNs is taken as its tick runs, where the
// daemon takes a frame from the appsink, so receipt minus it is the bus's own latency.
import { BusPublisher } from "../../bus/publisher.ts";
import { warmUpBus } from "../../bus/warmup.ts";
import type { PublishedDetection } from "../../bus/codec.ts";
import { BUS_FLOOR_BOUND_MSG } from "./daemon-process.ts";

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

async function main(argv: string[]): Promise<void> {
  const fps = parseFps(argv[0]);
  const periodNs = BigInt(Math.round(1e9 / fps));
  // As the daemon does before its first frame (src/daemon/daemon.ts).
  await warmUpBus();
  const bus = await BusPublisher.bind(["tcp://127.0.0.1:0"], { sendHighWaterMark: 1000 });
  log({ level: "info", msg: BUS_FLOOR_BOUND_MSG, endpoints: bus.endpoints, fps });

  const detections = sampleDetections();
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let seq = 0n;
  const start = process.hrtime.bigint();
  // Ticks on an absolute schedule, as a camera's frames come: a late timer does not push the
  // following ticks back.
  const tick = (): void => {
    if (stopping) return;
    bus.publishMessage(
      "detections",
      { model: "bus-floor", frameWidthPx: 768, frameHeightPx: 576, detections },
      { cameraId: CAMERA, frameSeq: seq, tIngestMonoNs: process.hrtime.bigint() },
    );
    seq++;
    const waitNs = start + seq * periodNs - process.hrtime.bigint();
    timer = setTimeout(tick, Math.max(0, Math.ceil(Number(waitNs) / 1e6)));
  };
  tick();

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      stopping = true;
      clearTimeout(timer);
      resolve();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await bus.close();
  log({ level: "info", msg: "bus floor stopped", published: Number(seq) });
}

main(process.argv.slice(2)).catch((err: unknown) => {
  log({ level: "fatal", msg: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
});
