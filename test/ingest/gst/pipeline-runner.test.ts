// GstRunner's stop: every stopped pipeline gives back the libuv thread its bus poll holds.
// GStreamer flushes the bus on the way to NULL, and a poll that was not scheduled in time
// used to stay parked for good (about 1 stop in 100 on a loaded 2-core machine), which hung
// whoever awaited released() and kept the process from exiting.
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeGstPipelines, GstRunner } from "../../../src/ingest/gst/pipeline-runner.ts";
import { appSrcOf } from "../../../src/ingest/gst/appsrc.ts";

const LAUNCH =
  "appsrc name=src format=time caps=video/x-raw,format=RGB,width=64,height=48,framerate=0/1 ! " +
  "videoconvert ! videoscale ! video/x-raw,format=RGB,width=32,height=32 ! appsink name=sink sync=false";

// The lost wake-up needs the poll thread to be descheduled during the stop, so the CPUs
// are kept busy meanwhile; without the wake-up it failed 4 runs out of 4 on a 2-core VM.
let spinners: Worker[] = [];
beforeAll(() => {
  spinners = [0, 1].map(() => new Worker("for (;;) {}", { eval: true }));
});
afterAll(async () => {
  await Promise.all(spinners.map((w) => w.terminate()));
});

/** The promise's value, or "timeout" when it takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe("GstRunner.stop", () => {
  it("gives every bus poll's thread back, however the stop and the poll thread interleave", async () => {
    const stuck: number[] = [];
    const errors: string[] = [];
    for (let i = 0; i < 1000 && stuck.length === 0; i++) {
      const runner = new GstRunner(LAUNCH, `pipeline ${i}`, "sink");
      runner.start({ onEos: () => undefined, onError: (text) => errors.push(`pipeline ${i}: ${text}`) });
      appSrcOf(runner, "src").push(Buffer.alloc(64 * 48 * 3));
      // Bounded too: threads held by stuck polls would starve the pulls of a later pipeline.
      const sample = await within(runner.pull(), 5000);
      expect(sample === "timeout" || sample === null ? sample : "sample", `pipeline ${i}'s first frame`).toBe("sample");
      runner.stop();
      if ((await within(runner.released(), 5000)) === "timeout") stuck.push(i);
    }
    expect(stuck, "pipelines whose bus poll did not come back within 5 s of stop").toEqual([]);
    expect(errors, "GStreamer errors").toEqual([]);
    expect(activeGstPipelines(), "bus polls still holding a threadpool thread").toBe(0);
  });
});
