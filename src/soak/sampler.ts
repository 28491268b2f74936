// The soak's sampler: every few seconds, the daemon's /metrics (counters and stage
// histograms), its memory, CPU, threads and open files, the soak process's own CPU, the
// thermal zones and tegrastats. Each sample keeps only the figures the windows and the
// report use, so hours of samples stay small.
import { loadavg } from "node:os";
import { FRAME_DROP_REASONS, STAGES, type Stage } from "../metrics/metrics.ts";
import { TOPIC_NAMES } from "../bus/topics.ts";
import { readThermalZones, sampleProcess, startTegrastats, type ProcessSample, type TegraSample } from "./machine-probes.ts";
import { histogramOf, parsePrometheusText, scrapeMetricsText, sumSamples, type HistogramSnapshot, type PromSample } from "./prometheus.ts";

/** The figures of one /metrics scrape that a soak uses. */
export interface MetricsSnapshot {
  framesIngested: number;
  framesProcessed: number;
  /** frames dropped so far, by reason */
  dropped: Record<string, number>;
  cameraRestarts: number;
  busSent: Record<string, number>;
  busDropped: Record<string, number>;
  workerReplacements: number;
  /** V8 heap of the daemon's main thread (nodejs_heap_size_used_bytes), when process metrics are on */
  heapUsedBytes: number | null;
  /** every camera summed, per stage */
  stages: Record<Stage, HistogramSnapshot>;
  /** perceptd_model_info's labels */
  model: string | null;
  executionProvider: string | null;
}

export interface Sample {
  /** performance.now() of the soak process */
  at: number;
  daemon: ProcessSample | null;
  /** the soak process itself: what measuring cost */
  soak: ProcessSample | null;
  metrics: MetricsSnapshot | null;
  /** why metrics is null, when it is */
  metricsError?: string;
  thermalC: Record<string, number>;
  tegra: TegraSample | null;
  loadavg1: number;
}

export function metricsSnapshot(samples: readonly PromSample[]): MetricsSnapshot {
  const by = (name: string, label: string, keys: readonly string[]): Record<string, number> =>
    Object.fromEntries(keys.map((k) => [k, sumSamples(samples, name, { [label]: k })]));
  const heap = samples.find((s) => s.name === "nodejs_heap_size_used_bytes");
  const info = samples.find((s) => s.name === "perceptd_model_info");
  return {
    framesIngested: sumSamples(samples, "perceptd_frames_ingested_total"),
    framesProcessed: sumSamples(samples, "perceptd_frames_processed_total"),
    dropped: by("perceptd_frames_dropped_total", "reason", FRAME_DROP_REASONS),
    cameraRestarts: sumSamples(samples, "perceptd_camera_restarts_total"),
    busSent: by("perceptd_bus_messages_sent_total", "topic", TOPIC_NAMES),
    busDropped: by("perceptd_bus_messages_dropped_total", "topic", TOPIC_NAMES),
    workerReplacements: sumSamples(samples, "perceptd_inference_worker_replacements_total"),
    heapUsedBytes: heap?.value ?? null,
    stages: Object.fromEntries(STAGES.map((st) => [st, histogramOf(samples, "perceptd_stage_latency_seconds", { stage: st })])) as Record<Stage, HistogramSnapshot>,
    model: info?.labels.model ?? null,
    executionProvider: info?.labels.execution_provider ?? null,
  };
}

export interface SamplerOptions {
  pid: number;
  /** the daemon's metrics base URL; null: metrics off, no scrape */
  metricsUrl: string | null;
  intervalMs: number;
}

export class Sampler {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly tegra;
  private inFlight: Promise<void> | null = null;

  constructor(private readonly opts: SamplerOptions) {
    this.tegra = startTegrastats(opts.intervalMs);
  }

  /** Whether tegrastats is running (a Jetson). */
  get hasTegrastats(): boolean {
    return this.tegra !== null;
  }

  start(): void {
    void this.sampleNow();
    this.timer = setInterval(() => void this.sampleNow(), this.opts.intervalMs);
  }

  /** Takes a sample now (a scrape in flight is awaited instead of a second one). */
  sampleNow(): Promise<void> {
    this.inFlight ??= this.take().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
    this.tegra?.stop();
  }

  private async take(): Promise<void> {
    const at = performance.now();
    const daemon = sampleProcess(this.opts.pid);
    const soak = sampleProcess(process.pid);
    let metrics: MetricsSnapshot | null = null;
    let metricsError: string | undefined;
    if (this.opts.metricsUrl !== null) {
      try {
        metrics = metricsSnapshot(parsePrometheusText(await scrapeMetricsText(this.opts.metricsUrl)));
      } catch (e) {
        metricsError = e instanceof Error ? e.message : String(e);
      }
    } else {
      metricsError = "metrics are off in the config (metrics.enabled: false)";
    }
    this.samples.push({ at, daemon, soak, metrics, metricsError, thermalC: readThermalZones(), tegra: this.tegra?.latest() ?? null, loadavg1: loadavg()[0] });
  }
}
