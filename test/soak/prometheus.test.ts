// Reading the daemon's /metrics from outside, as `perceptd soak` and `bench pipeline` do.
import { describe, expect, it } from "vitest";
import { histogramDelta, histogramOf, histogramQuantile, parsePrometheusText, sumSamples } from "../../src/soak/prometheus.ts";

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

