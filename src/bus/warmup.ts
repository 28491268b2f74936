// Gets V8 to optimise the per-frame publishing path before the first frame needs it.
//
// A fresh process runs its JavaScript unoptimised at first: V8 optimises a function only
// after it has run a while, so code that runs once per frame gets there after a few
// thousand frames, the first minutes at camera rates, and until then the optimiser's work
// lands on some messages as milliseconds of extra latency. The publisher's encoding, its
// queue and zeromq.js's send are all per-message code, so this publishes through a
// throwaway publisher before the daemon reports ready: it costs start-up time, never a
// frame's. Measured with and without (the first 300 messages' publish times, the cost at
// start): docs/pipeline-latency.md.
import { randomBytes } from "node:crypto";
import type { PublishedDetection } from "./codec.ts";
import { BusPublisher } from "./publisher.ts";

/** Messages per warm-up: enough for V8 to have optimised every function on the path (see above). */
export const BUS_WARMUP_MESSAGES = 2000;

/** Messages queued between waits for the send loop, well inside the publisher's queue. */
const BATCH = 32;

export interface BusWarmup {
  messages: number;
  /** handed to zeromq.js's send; fewer than `messages` would mean the warm-up outran the publisher's queue */
  sent: number;
  /** wall time spent, ms */
  ms: number;
}

/** A busy frame: every field a published detection can carry, so every branch runs. */
function sampleDetections(): PublishedDetection[] {
  return Array.from({ length: 8 }, (_, i) => ({
    box: [12.5 + 90 * i, 100.25 + 4 * i, 60.75 + 90 * i, 280.5 + 4 * i],
    score: 0.95 - 0.07 * i,
    classId: i % 3 === 0 ? 0 : 2,
    label: i % 3 === 0 ? "person" : "car",
    ...(i % 2 === 0 ? { trackId: BigInt(i + 1), rangeM: 4.5 + i, ttcS: 2.25 + i, inCorridor: i < 4 } : {}),
  }));
}

/**
 * Publishes `messages` detections messages through a throwaway BusPublisher that nobody
 * can subscribe to: on Linux an abstract Unix socket with a random name (no file, no port),
 * elsewhere a loopback TCP port. The real publisher's counters do not move and no metric
 * counts them. Call it before the first frame; the daemon does before it binds its bus.
 */
export async function warmUpBus(messages: number = BUS_WARMUP_MESSAGES): Promise<BusWarmup> {
  if (!(Number.isInteger(messages) && messages >= 1)) throw new RangeError(`bus warm-up: messages must be an integer >= 1, got ${String(messages)}`);
  const endpoint = process.platform === "linux" ? `ipc://@perceptd-warmup-${process.pid}-${randomBytes(6).toString("hex")}` : "tcp://127.0.0.1:0";
  const t0 = performance.now();
  const bus = await BusPublisher.bind([endpoint], { sendHighWaterMark: 1000, lingerMs: 0 });
  let sent: number;
  try {
    const body = { model: "warm-up", frameWidthPx: 768, frameHeightPx: 576, detections: sampleDetections() };
    for (let i = 0; i < messages; i++) {
      bus.publishMessage("detections", body, { cameraId: "warm-up", frameSeq: i, tIngestMonoNs: process.hrtime.bigint() });
      if ((i + 1) % BATCH === 0) await bus.flush(1000);
    }
    await bus.flush(1000);
    sent = bus.stats().sent;
  } finally {
    await bus.close();
  }
  return { messages, sent, ms: performance.now() - t0 };
}
