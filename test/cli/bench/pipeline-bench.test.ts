// `bench pipeline` on tiny sizes: the shape of the result, never its timings (those depend on
// the machine and on whatever else runs on it).
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { readManifest } from "../../../src/model/manifest.ts";
import {
  benchPipeline,
  checkMonotonicClock,
  endCpuWindow,
  histogramDelta,
  histogramOf,
  histogramQuantile,
  pacedFileSource,
  parsePrometheusText,
  renderPipelineBench,
  SCENARIO_IDS,
  startCpuWindow,
  sumSamples,
  type PipelineBenchProgress,
} from "../../../src/cli/bench/pipeline-bench.ts";

const VTEST = resolve(".cache/fixtures/vtest.avi");
const HAVE_VTEST = existsSync(VTEST);
if (!HAVE_VTEST) console.warn(`skipping benchPipeline run: ${VTEST} is missing (run \`npm run setup\` to fetch it)`);

const METRICS = `# HELP perceptd_frames_dropped_total Frames ingested but never processed
# TYPE perceptd_frames_dropped_total counter
perceptd_frames_dropped_total{camera="cam0",reason="replaced"} 7
perceptd_frames_dropped_total{camera="cam0",reason="shutdown"} 1
perceptd_frames_dropped_total{camera="cam1",reason="replaced"} 100
perceptd_stage_latency_seconds_bucket{le="0.01",stage="inference",camera="cam0"} 0
perceptd_stage_latency_seconds_bucket{le="0.02",stage="inference",camera="cam0"} 50
perceptd_stage_latency_seconds_bucket{le="0.04",stage="inference",camera="cam0"} 90
perceptd_stage_latency_seconds_bucket{le="+Inf",stage="inference",camera="cam0"} 100
perceptd_stage_latency_seconds_sum{stage="inference",camera="cam0"} 2.5
perceptd_stage_latency_seconds_count{stage="inference",camera="cam0"} 100
perceptd_model_info{model="a \\"quoted\\" name",execution_provider="cpu"} 1
`;

describe("metrics helpers", () => {
  it("parses samples with labels, escapes and +Inf", () => {
    const s = parsePrometheusText(METRICS);
    expect(s).toHaveLength(10);
    expect(sumSamples(s, "perceptd_frames_dropped_total", { camera: "cam0" })).toBe(8);
    expect(sumSamples(s, "perceptd_frames_dropped_total")).toBe(108);
    expect(s.find((x) => x.name === "perceptd_model_info")?.labels.model).toBe('a "quoted" name');
  });

  it("estimates quantiles from buckets as histogram_quantile does", () => {
    const h = histogramOf(parsePrometheusText(METRICS), "perceptd_stage_latency_seconds", { stage: "inference", camera: "cam0" });
    expect(h.buckets.map((b) => b.le)).toEqual([0.01, 0.02, 0.04, Infinity]);
    expect(h).toMatchObject({ sum: 2.5, count: 100 });
    // rank 50 is the top of the (0.01, 0.02] bucket
    expect(histogramQuantile(h, 0.5)).toBeCloseTo(0.02, 12);
    // rank 70: half-way through (0.02, 0.04]
    expect(histogramQuantile(h, 0.7)).toBeCloseTo(0.03, 12);
    // rank 99 falls in +Inf: the highest finite bound
    expect(histogramQuantile(h, 0.99)).toBe(0.04);
    const none = histogramDelta(h, h);
    expect(none.count).toBe(0);
    expect(Number.isNaN(histogramQuantile(none, 0.5))).toBe(true);
  });
});

describe("helpers", () => {
  it("quotes the video path so it cannot change the pipeline", () => {
    const src = pacedFileSource('/tmp/a "b" \\ ! c.avi', 24.3);
    expect(src).toMatchObject({ type: "pipeline", live: true });
    expect(src.pipeline).toBe(
      'filesrc location="/tmp/a \\"b\\" \\\\ ! c.avi" ! decodebin ! videorate ! video/x-raw,framerate=243/10 ! clocksync',
    );
  });

  it("finds process.hrtime shared with a child process", async () => {
    const c = await checkMonotonicClock(2);
    expect(c.ok).toBe(true);
    expect(c.samples).toHaveLength(2);
  });

  it.skipIf(process.platform !== "linux")("measures this process's CPU per thread", async () => {
    const start = startCpuWindow(process.pid);
    const until = Date.now() + 50;
    while (Date.now() < until) {
      // busy on the main thread
    }
    const cpu = endCpuWindow(start, process.pid);
    expect(cpu).not.toBeNull();
    expect(cpu?.groups.find((g) => g.name === "main thread")?.cpuPct).toBeGreaterThan(0);
    expect(cpu?.benchProcessPct).toBeNull();
  });
});

describe.skipIf(!HAVE_VTEST)("benchPipeline", () => {
  it(
    "runs every scenario and reports finite positive figures",
    async () => {
      const kinds = new Set<PipelineBenchProgress["kind"]>();
      // Two replay workers whatever the core count, so the side-by-side raw loop (a2) runs too.
      const result = await benchPipeline({ frames: 20, warmup: 2, video: VTEST, replayWorkers: 2, frameTrace: true, command: "vitest", onProgress: (e) => kinds.add(e.kind) });

      expect(result.scenarios.map((s) => s.id)).toEqual(SCENARIO_IDS);
      expect(result.settings).toMatchObject({ frames: 20, warmup: 2, model: (await readManifest()).default, rawLoop: "main thread" });
      expect(result.settings.replayWorkers).toEqual({ configured: 2, sessions: 2, threadsEach: Math.max(1, Math.floor(availableParallelism() / 2)) });
      expect(result.clock.ok).toBe(true);
      expect(result.clock.messagesChecked).toBeGreaterThanOrEqual(5 * 22);
      expect(result.clock.messageViolations).toBe(0);
      expect([...kinds].sort()).toEqual(["decode", "frames", "scenario-done", "step"]);

      const positive = (v: number | null | undefined): boolean => typeof v === "number" && Number.isFinite(v) && v > 0;
      for (const s of result.scenarios) {
        expect(s.frames, s.id).toBe(20);
        expect(positive(s.processedPerSec), `${s.id} processed/s`).toBe(true);
        expect(positive(s.durationS), `${s.id} duration`).toBe(true);
        expect(s.samplesMs).toHaveLength(20);
        if (s.id === "raw" || s.id === "raw-parallel" || s.id === "raw-paced") {
          expect(positive(s.inference?.p99Ms), `${s.id} inference p99`).toBe(true);
          expect(s.e2e).toBeNull();
          expect(s.split).toBeNull();
          expect(s.inference?.source).toBe("measured");
          continue;
        }
        expect(positive(s.e2e?.p50Ms), `${s.id} e2e p50`).toBe(true);
        expect(positive(s.e2e?.p99Ms), `${s.id} e2e p99`).toBe(true);
        expect(s.e2e!.p50Ms).toBeLessThanOrEqual(s.e2e!.p99Ms);
        expect(positive(s.split?.ingestToPublish.p50Ms), `${s.id} ingest->publish`).toBe(true);
        expect(positive(s.split?.publishToReceipt.p50Ms), `${s.id} publish->receipt`).toBe(true);
        expect(positive(s.input.measuredFps), `${s.id} input rate`).toBe(true);
        const publisher = s.id === "bus-paced" || s.id === "model-bus-paced";
        expect(s.daemon?.exit, `${s.id} ${publisher ? "publisher" : "daemon"} exit`).toBe(0);
        if (s.id === "bus-paced") {
          // The bus alone: no model, so no inference and no daemon counters to scrape.
          expect(s.inference, "(c2) has no inference").toBeNull();
          expect(s.drops, "(c2) has no /metrics").toBeNull();
          continue;
        }
        if (s.id === "model-bus-paced") {
          // The model and the bus: its own runs, one per message of the window, and no /metrics.
          expect(s.inference?.source, "(c3) times its own session.run").toBe("measured");
          expect(s.inference?.runs, "(c3): one run per timed message").toBe(20);
          expect(positive(s.inference?.p99Ms), "(c3) inference p99").toBe(true);
          expect(s.drops, "(c3) has no /metrics").toBeNull();
          // tick -> publish holds the run, so its median cannot be below the run's.
          expect(s.split!.ingestToPublish.p50Ms, "(c3) tick->publish against its own session.run").toBeGreaterThanOrEqual(s.inference!.p50Ms);
          continue;
        }
        expect(positive(s.inference?.p99Ms), `${s.id} inference p99`).toBe(true);
        expect(s.inference?.source).toBe("histogram");
        expect(s.drops!.droppedTotal).toBeGreaterThanOrEqual(0);
        expect(positive(s.drops!.ingestedTotal)).toBe(true);
        // Every stage of the daemon's histograms moved in the window, the hop back from the worker too.
        for (const k of ["ingestToWorkerMs", "inferenceMs", "decodeMs", "workerToMainMs", "publishMs", "endToEndMs"] as const) {
          expect(positive(s.stages?.mean[k]), `${s.id} stage mean ${k}`).toBe(true);
          expect(positive(s.stages?.p99[k]), `${s.id} stage p99 ${k}`).toBe(true);
        }
      }
      // (a3) and (c2) are (c)'s references: the same rate, set from (a)'s throughput.
      const pacedFps = result.scenarios.find((s) => s.id === "paced")?.input.targetFps;
      expect(pacedFps).toBeGreaterThan(0);
      expect(result.scenarios.find((s) => s.id === "raw-paced")?.input.targetFps, "(a3) paced as (c)").toBe(pacedFps);
      expect(result.scenarios.find((s) => s.id === "bus-paced")?.input.targetFps, "(c2) paced as (c)").toBe(pacedFps);
      expect(result.scenarios.find((s) => s.id === "model-bus-paced")?.input.targetFps, "(c3) paced as (c)").toBe(pacedFps);

      expect(result.targets.map((t) => t.id)).toEqual(["throughput", "paced-latency", "overload-latency"]);
      for (const t of result.targets) {
        expect(positive(t.ratio), `${t.id} ratio`).toBe(true);
        expect(typeof t.pass).toBe("boolean");
      }

      const report = renderPipelineBench(result);
      const rows = report.split("\n").filter((l) => l.startsWith("| ("));
      expect(rows).toHaveLength(SCENARIO_IDS.length);
      expect(rows[1], "(a2) names its arrangement").toMatch(/^\| \(a2\) raw ORT, 2 sessions × \d+ threads? /);
      expect(report, "(b) against its own arrangement").toMatch(/\(b\) runs that arrangement, at \d+\.\d\d× of \(a2\)/);
      expect(report).toMatch(/^replay: +inference\.replayWorkers 2: \(b\) runs 2 sessions side by side/m);
      const header = report.split("\n").find((l) => l.startsWith("| scenario"));
      expect(header?.split("|").map((c) => c.trim()).filter(Boolean)).toEqual([
        "scenario",
        "input rate",
        "processed/s",
        "e2e p50 ms",
        "e2e p99 ms",
        "inference p99 ms",
        "dropped",
        "target",
        "result",
      ]);
      // Judged rows carry a verdict; the references say they are one.
      const rowOf = (id: string): string | undefined => rows.find((r) => r.startsWith(`| (${id}) `));
      for (const id of ["b", "c", "d"]) expect(rowOf(id), `row (${id})`).toMatch(/PASS|FAIL/);
      for (const id of ["a", "a2", "a3", "c2", "c3"]) expect(rowOf(id), `row (${id})`).toMatch(/\(reference\)/);
      expect(report, "(c) is set beside (a3) and (c2)").toMatch(/^- \(c\) beside its references, p99 in ms: \(a\) inference \d/m);
      expect(report, "(c)'s own session.run is set beside (a)'s").toMatch(/^- \(c\)'s own session\.run beside \(a\)'s, mean\/p99 in ms: \d+(\.\d+)?\/~\d+(\.\d+)? \(daemon histogram\) against \d/m);
      expect(report, "the quiet check should set the kernel's interrupt time apart from other processes").toMatch(
        /^quiet: +(yes|NO).*\(kernel interrupts and softirqs, not counted there: at most \d+%, during \([a-d]\d?\)(; .+)?\)$/m,
      );
      const howCounted = { precise: /during \([a-d]\d?\)\)$/m, "tick-sampled": /samples that time at the timer tick/, unknown: /times it or samples it at the tick is unknown/ };
      expect(report, `the quiet line should say how this kernel counts interrupt time (${String(result.machine.interruptTimeAccounting)})`).toMatch(
        howCounted[result.machine.interruptTimeAccounting ?? "unknown"],
      );
      for (const id of ["unpaced", "paced", "overloaded"] as const) {
        const s = result.scenarios.find((x) => x.id === id);
        expect(s?.frameTrace?.frames, `--frame-trace: every timed message of ${id} joined with the daemon's timings line`).toBe(s?.frames);
        expect(s?.frameTrace?.slowest.length).toBe(5);
      }
      expect(result.scenarios.find((x) => x.id === "bus-paced")?.frameTrace, "(c2) has no daemon to trace").toBeUndefined();
      expect(result.scenarios.find((x) => x.id === "model-bus-paced")?.frameTrace, "(c3) has no daemon to trace").toBeUndefined();
      expect(report, "(c3) is set against (c)'s target").toMatch(
        /^- \(c3\) the model \+ bus without the daemon, p99 in ms: its own session\.run \d+(\.\d+)?, e2e \d+(\.\d+)?, \(a\)'s inference p99 [+-]\d+(\.\d+)?: (within|outside) \(c\)'s 5 ms in this run/m,
      );
      expect(report, "--frame-trace takes (c)'s slowest frames apart").toMatch(/^- \(c\) daemon, paced .*, frame by frame \(--frame-trace, 20 frames\), ms: .*slowest: #\d+ /m);
      expect(report, "(c)'s steps outside the model").toMatch(/^- \(c\) outside session\.run, mean\/p99 in ms .*worker->main \d+(\.\d+)?\/~\d/m);
    },
    300_000,
  );

  it("refuses a replay worker count outside [0, 16] before starting anything", async () => {
    await expect(benchPipeline({ replayWorkers: 17, video: VTEST })).rejects.toThrow(/replayWorkers must be an integer in \[0, 16\], got 17/);
  });
});
