// Joining the daemon's per-frame timings lines with the subscriber's receipts (--frame-trace).
import { describe, expect, it } from "vitest";
import type { DetectionsMessage } from "../../../src/bus/detections-message.ts";
import { renderFrameTrace, traceFrames } from "../../../src/cli/bench/frame-trace.ts";
import { FRAME_TIMINGS_MSG } from "../../../src/daemon/frame-timings.ts";

const MS = 1_000_000n;

function message(seq: number, tIngestMs: number, tPublishMs: number, camera = "bench"): DetectionsMessage {
  return {
    camera,
    seq,
    counter: BigInt(seq),
    tIngestNs: BigInt(tIngestMs) * MS,
    tPublishNs: BigInt(tPublishMs) * MS,
    wallTimeMs: 0,
    valid: true,
    model: "m",
    width: 640,
    height: 480,
    detections: [],
  };
}

function timings(seq: number, inferenceMs: number, camera = "bench"): Record<string, unknown> {
  return { level: 10, msg: FRAME_TIMINGS_MSG, camera, seq, ingestToWorkerMs: 1, preprocessMs: 0, inferenceMs, decodeMs: 1, workerToMainMs: 1, publishMs: 1 };
}

describe("traceFrames", () => {
  it("takes each frame apart and ranks the slowest by end-to-end time", () => {
    // Frame i: ingest at 100 i ms, session.run 10 + i ms, published 4 ms after the model, received 1 ms later.
    const msgs = Array.from({ length: 8 }, (_, i) => message(i, 100 * i, 100 * i + 14 + i));
    const recv = msgs.map((m) => m.tPublishNs + MS);
    const logs = [{ msg: "bus bound; loading model" }, ...msgs.map((m) => timings(m.seq, 10 + m.seq))];
    const t = traceFrames(logs, "bench", msgs, recv);
    expect(t, "every message had a timings line").not.toBeNull();
    expect(t!.frames).toBe(8);
    expect(t!.slowest.map((f) => f.seq), "slowest first, five of them").toEqual([7, 6, 5, 4, 3]);
    expect(t!.slowest[0]).toMatchObject({ e2eMs: 22, inferenceMs: 17, publishToReceiptMs: 1, ingestToWorkerMs: 1 });
    // e2e - session.run is 5 ms for every frame.
    expect(t!.outsideModel.p50Ms).toBeCloseTo(5, 9);
    expect(t!.outsideModel.p99Ms).toBeCloseTo(5, 9);
    expect(renderFrameTrace("(c) daemon", t!), "the report names the slowest frame and its model time").toMatch(/^\(c\) daemon, frame by frame \(--frame-trace, 8 frames\).*#7 22\.0? = .*session\.run 17/);
  });

  it("leaves out other cameras' lines, malformed lines and frames without a line", () => {
    const msgs = [message(1, 0, 20), message(2, 100, 120), message(3, 200, 220)];
    const recv = msgs.map((m) => m.tPublishNs + MS);
    const logs = [timings(1, 15), timings(2, 15, "other"), { ...timings(3, 15), inferenceMs: "15" }];
    const t = traceFrames(logs, "bench", msgs, recv);
    expect(t?.frames, "only frame 1 has a usable line for camera bench").toBe(1);
    expect(t?.slowest.map((f) => f.seq)).toEqual([1]);
  });

  it("is null when the daemon logged no timings (not at log level trace)", () => {
    expect(traceFrames([{ msg: "stopped" }], "bench", [message(1, 0, 20)], [21n * MS])).toBeNull();
  });
});
