// The publisher of `bench pipeline`'s (c2) and, with a model, (c3), as the bench runs it: a
// real child process, a real ZeroMQ subscriber, the real default model. What it sends and
// how it starts and stops; never how fast.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import type { ModelRun } from "../../../src/cli/bench/bus-floor-publisher.ts";
import { BUS_FLOOR_BOUND_MSG, BUS_FLOOR_PUBLISHER, collectDetections, runNodeProcess } from "../../../src/cli/bench/daemon-process.ts";
import type { DetectionsMessage } from "../../../src/bus/detections-message.ts";
import { DEFAULT_MANIFEST_PATH, readManifest } from "../../../src/model/manifest.ts";

const VTEST = resolve(".cache/fixtures/vtest.avi");
const HAVE_VTEST = existsSync(VTEST);
if (!HAVE_VTEST) console.warn(`skipping the (c3) publisher's run: ${VTEST} is missing (run \`npm run setup\` to fetch it)`);

function start(rate: string, ...more: string[]) {
  return runNodeProcess("bus floor publisher", ["--import", "tsx", BUS_FLOOR_PUBLISHER, rate, ...more]);
}

/** The first `n` messages on `endpoint` within `withinMs`, every one decoded cleanly. */
async function firstMessages(endpoint: string, n: number, withinMs: number): Promise<DetectionsMessage[]> {
  const sub = await collectDetections(endpoint);
  const deadline = Date.now() + withinMs;
  while (sub.messages.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  sub.close();
  expect(sub.error(), "every message decoded (CRC, schema, data id)").toBeNull();
  const got = sub.messages.slice(0, n);
  expect(got, `${n} messages within ${withinMs} ms`).toHaveLength(n);
  return got;
}

const MODEL_RUN: ModelRun = { video: VTEST, manifestPath: DEFAULT_MANIFEST_PATH, frames: 4, warmup: 1, threads: 0, spinning: false };

describe("bus-floor-publisher", () => {
  it("publishes detections messages the daemon's way, in sequence, and exits 0 on SIGTERM", async () => {
    const proc = start("50");
    try {
      const bound = await proc.waitForLog((l) => l.msg === BUS_FLOOR_BOUND_MSG, 30_000);
      const endpoints = bound.endpoints as string[];
      expect(endpoints, "the bound line names a tcp endpoint with the port picked").toEqual([expect.stringMatching(/^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/)]);
      const got = await firstMessages(endpoints[0], 10, 20_000);
      for (const [i, m] of got.entries()) {
        expect(m).toMatchObject({ camera: "bench", model: "bus-floor", width: 768, height: 576, valid: true });
        expect(m.detections.map((d) => d.label), "six people, like a vtest.avi frame").toEqual(Array(6).fill("person"));
        expect(m.tIngestNs > 0n && m.tIngestNs <= m.tPublishNs, "tIngestNs <= tPublishNs").toBe(true);
        // A late joiner misses the first few; from there on nothing is skipped.
        if (i > 0) expect(m.seq - got[i - 1].seq, `frame seq step at message ${i}`).toBe(1);
        if (i > 0) expect(m.counter - got[i - 1].counter, `counter step at message ${i}`).toBe(1n);
      }
      expect(await proc.stop(), "exit status after SIGTERM").toBe(0);
      expect(proc.logs.find((l) => l.msg === "bus floor stopped")?.published, "the stop line counts what was published").toBeGreaterThanOrEqual(10);
    } finally {
      proc.kill();
    }
  }, 60_000);

  it("refuses a rate that is not frames per second in (0, 1000], naming it", async () => {
    for (const bad of ["abc", "0", "-5", "1001"]) {
      const proc = start(bad);
      expect(await proc.exited, `exit status for rate ${bad}`).toBe(1);
      const fatal = proc.logs.find((l) => l.level === "fatal");
      expect(fatal?.msg, `the fatal line for rate ${bad}`).toBe(`bus-floor-publisher: rate must be frames/s in (0, 1000], got "${bad}"`);
    }
  }, 60_000);

  it.skipIf(!HAVE_VTEST)("with a model, runs it once per message and logs every run's time by frame seq", async () => {
    const proc = start("20", JSON.stringify(MODEL_RUN));
    try {
      const bound = await proc.waitForLog((l) => l.msg === BUS_FLOOR_BOUND_MSG, 60_000);
      const model = (await readManifest()).default;
      expect(bound.model, "the bound line names the manifest's default model").toBe(model);
      const got = await firstMessages((bound.endpoints as string[])[0], 5, 30_000);
      for (const m of got) expect(m).toMatchObject({ camera: "bench", model, valid: true });
      expect(await proc.stop(), "exit status after SIGTERM").toBe(0);
      const stopped = proc.logs.find((l) => l.msg === "bus floor stopped");
      const runsMs = stopped?.runsMs as number[] | undefined;
      expect(runsMs, "one session.run per message published").toHaveLength(stopped?.published as number);
      for (const m of got) {
        const ms = runsMs?.[m.seq];
        expect(ms !== undefined && ms > 0, `a positive run time for frame seq ${m.seq}`).toBe(true);
        // The message's tick came before its run, and its publish after it.
        expect(Number(m.tPublishNs - m.tIngestNs) / 1e6, `tick->publish of seq ${m.seq} holds its run`).toBeGreaterThanOrEqual(ms!);
      }
    } finally {
      proc.kill();
    }
  }, 120_000);

  it("refuses a model argument that is not JSON or not a model run, naming what is wrong", async () => {
    const cases: [string, RegExp][] = [
      ["{frames: 3", /^bus-floor-publisher: the model argument is not JSON \(.+\): \{frames: 3$/],
      [JSON.stringify({ ...MODEL_RUN, frames: 0 }), /^bus-floor-publisher: the model argument is invalid:\n {2}- frames: /],
      [JSON.stringify({ ...MODEL_RUN, colour: "red" }), /^bus-floor-publisher: the model argument is invalid:\n {2}- .*colour/],
    ];
    for (const [arg, want] of cases) {
      const proc = start("20", arg);
      expect(await proc.exited, `exit status for ${arg}`).toBe(1);
      expect(proc.logs.find((l) => l.level === "fatal")?.msg, `the fatal line for ${arg}`).toMatch(want);
    }
  }, 60_000);
});
