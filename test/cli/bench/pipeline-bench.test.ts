// `bench pipeline` on tiny sizes: the shape of the result, never its timings (those depend on
// the machine and on whatever else runs on it).
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { readManifest } from "../../../src/infer/manifest.ts";
import { benchPipeline, pacedFileSource, renderPipelineBench } from "../../../src/cli/bench/pipeline-bench.ts";

const VTEST = resolve(".cache/fixtures/vtest.avi");
const HAVE_VTEST = existsSync(VTEST);

describe("helpers", () => {
  it("quotes the video path so it cannot change the pipeline", () => {
    const src = pacedFileSource('/tmp/a "b" \\ ! c.avi', 24.3);
    expect(src).toMatchObject({ type: "pipeline", live: true });
    expect(src.pipeline).toBe(
      'filesrc location="/tmp/a \\"b\\" \\\\ ! c.avi" ! decodebin ! videorate ! video/x-raw,framerate=243/10 ! clocksync',
    );
  });
});

describe.skipIf(!HAVE_VTEST)("benchPipeline", () => {
  it(
    "runs the raw loop and the three daemon scenarios and reports finite positive figures in one table",
    async () => {
      const progress: string[] = [];
      const result = await benchPipeline({ frames: 20, warmup: 2, video: VTEST, onProgress: (t) => progress.push(t) });
      expect(result.scenarios.map((s) => s.id)).toEqual(["raw-loop", "daemon-unpaced", "daemon-paced", "daemon-overloaded"]);
      expect(result.model).toBe((await readManifest()).default);
      expect(progress.length).toBeGreaterThan(3);
      const positive = (v: number | null | undefined): boolean => typeof v === "number" && Number.isFinite(v) && v > 0;
      for (const s of result.scenarios) {
        expect(s.frames, s.id).toBe(20);
        expect(positive(s.processedPerSec), `${s.id} processed/s`).toBe(true);
        expect(positive(s.inference?.p99Ms), `${s.id} inference p99`).toBe(true);
        if (s.id === "raw-loop") {
          expect(s.e2e).toBeNull();
          expect(s.inference?.fromHistogram).toBe(false);
          continue;
        }
        expect(positive(s.e2e?.p50Ms), `${s.id} e2e p50`).toBe(true);
        expect(s.e2e!.p50Ms).toBeLessThanOrEqual(s.e2e!.p99Ms);
        expect(s.inference?.fromHistogram).toBe(true);
        expect(positive(s.dropped?.ofIngested), `${s.id} frames ingested in the window`).toBe(true);
      }
      const paced = result.scenarios.find((s) => s.id === "daemon-paced");
      const raw = result.scenarios[0];
      expect(paced?.inputFps, "paced at 60 % of the raw loop's rate").toBeCloseTo(raw.processedPerSec * 0.6, 0);

      const report = renderPipelineBench(result);
      const header = report.split("\n").find((l) => l.startsWith("| scenario"));
      expect(header?.split("|").map((c) => c.trim()).filter(Boolean)).toEqual(["scenario", "input frames/s", "processed/s", "vs raw loop", "e2e p50 ms", "e2e p99 ms", "inference p99 ms", "dropped"]);
      const rows = report.split("\n").filter((l) => l.startsWith("| raw loop") || l.startsWith("| daemon"));
      expect(rows).toHaveLength(4);
    },
    300_000,
  );

  it("refuses a replay worker count outside [0, 16] before starting anything", async () => {
    await expect(benchPipeline({ replayWorkers: 17, video: VTEST })).rejects.toThrow(/replayWorkers must be an integer in \[0, 16\], got 17/);
  });
});
