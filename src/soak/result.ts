// soak.json: everything a soak found, in one document that the report is drawn from and that
// a later soak's --baseline reads back. Time series are kept at plot resolution (about a
// hundred latency bins, one point per sample), so hours of soak stay a small file.
import type { TopicName } from "../bus/topics.ts";
import type { SoakConfig } from "../config/schema.ts";
import type { BudgetResult, SoakEnd } from "./budgets.ts";
import type { FaultOutcome } from "./fault-plan.ts";
import { percentiles } from "./stats.ts";
import type { SoakVersions } from "./versions.ts";
import { nearestSample, type SoakRecording, type SoakWindow } from "./windows.ts";

export const SOAK_SCHEMA = "perceptd-soak/1";

export interface LatencyBin {
  /** bin start, seconds since the start of the measurement */
  tS: number;
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  busP99: number;
}

export interface SamplePoint {
  tS: number;
  rssMB: number | null;
  heapMB: number | null;
  /** % of one core since the previous sample */
  cpuPct: number | null;
  cpuByGroupPct: Record<string, number>;
  soakCpuPct: number | null;
  fds: number | null;
  thermalC: Record<string, number>;
  gpuPct: number | null;
  /** since the previous sample, per second */
  ingestFps: number | null;
  processedFps: number | null;
  droppedPerS: number | null;
  loadavg1: number;
}

export interface HealthPoint {
  tS: number;
  state: string;
  reasons: string[];
}

export interface SoakResult {
  schema: typeof SOAK_SCHEMA;
  command: string;
  configPath: string;
  startedAt: string;
  durationS: number;
  measuredS: number;
  windowS: number;
  end: SoakEnd;
  warmup: {
    /** daemon start -> READY=1 (model load, engine build), seconds */
    readyAfterS: number | null;
    /** seconds after READY=1 left out (soak.warmupS) */
    settleS: number;
    messages: number;
    e2eP99Ms: number | null;
  };
  versions: SoakVersions;
  budgets: SoakConfig;
  verdict: { pass: boolean; results: BudgetResult[] };
  windows: SoakWindow[];
  faults: FaultOutcome[];
  totals: { messages: Record<TopicName, number>; detections: number; e2e: { p50: number; p99: number; max: number } | null };
  conditions: { loadavg1Mean: number | null; soakCpuPctMean: number | null; tegrastats: boolean; thermalZones: number; cpuCores: number };
  series: { latency: LatencyBin[]; samples: SamplePoint[]; health: HealthPoint[]; rssFit: { mbPerHour: number; interceptMB: number } | null };
  baseline?: { dir: string; startedAt: string; model: string; commit: string | null };
}

/** About a hundred latency bins over the measured span, never shorter than a second nor longer than a window. */
export function latencyBins(r: SoakRecording): LatencyBin[] {
  const span = r.tEnd - r.t0;
  const d = r.detections;
  // About a hundred bins, each with enough messages (~40) for its p99 to mean more than its max.
  const perMs = d.at.filter((t) => t >= r.t0 && t < r.tEnd).length / Math.max(span, 1);
  const binMs = Math.min(r.windowMs, Math.max(1000, Math.round(span / 100), perMs > 0 ? Math.round(40 / perMs / 1000) * 1000 : 0));
  const bins: LatencyBin[] = [];
  let i = 0;
  while (i < d.at.length && d.at[i] < r.t0) i++;
  for (let a = r.t0; a < r.tEnd; a += binMs) {
    const e2e: number[] = [];
    const bus: number[] = [];
    while (i < d.at.length && d.at[i] < a + binMs && d.at[i] < r.tEnd) {
      e2e.push(d.e2eMs[i]);
      bus.push(d.busMs[i]);
      i++;
    }
    const p = percentiles(e2e);
    const b = percentiles(bus);
    bins.push({ tS: (a - r.t0) / 1000, count: e2e.length, p50: p?.p50 ?? NaN, p90: p?.p90 ?? NaN, p99: p?.p99 ?? NaN, max: p?.max ?? NaN, busP99: b?.p99 ?? NaN });
  }
  return bins;
}

/** Rates and CPU are taken over at least this long: the extra samples at window boundaries come close after a periodic one, and a rate over a few ms is noise. */
const MIN_RATE_SPAN_MS = 1000;

export function samplePoints(r: SoakRecording): SamplePoint[] {
  const inside = r.samples.filter((s) => s.at >= r.t0 - 1 && s.at <= r.tEnd + 1);
  const MB = 1024 * 1024;
  return inside.map((s) => {
    const prev = nearestSample(
      r.samples.filter((x) => x.at <= s.at - MIN_RATE_SPAN_MS),
      s.at,
    );
    const dt = prev ? (s.at - prev.at) / 1000 : 0;
    const rate = (pick: (m: NonNullable<typeof s.metrics>) => number): number | null =>
      prev?.metrics && s.metrics && dt > 0 ? (pick(s.metrics) - pick(prev.metrics)) / dt : null;
    const cpu = (a: number | undefined, b: number | undefined): number | null => (a !== undefined && b !== undefined && dt > 0 ? ((b - a) / 1e9 / dt) * 100 : null);
    const groups: Record<string, number> = {};
    for (const [g, ns] of Object.entries(s.daemon?.groupCpuNs ?? {})) {
      const v = cpu(prev?.daemon?.groupCpuNs[g] ?? 0, ns);
      if (v !== null) groups[g] = v;
    }
    const dropped = (m: NonNullable<typeof s.metrics>): number => Object.entries(m.dropped).reduce((a, [k, v]) => (k === "shutdown" ? a : a + v), 0);
    return {
      tS: (s.at - r.t0) / 1000,
      rssMB: s.daemon && Number.isFinite(s.daemon.rssBytes) ? s.daemon.rssBytes / MB : null,
      heapMB: s.metrics?.heapUsedBytes != null ? s.metrics.heapUsedBytes / MB : null,
      cpuPct: cpu(prev?.daemon?.cpuNs, s.daemon?.cpuNs),
      cpuByGroupPct: groups,
      soakCpuPct: cpu(prev?.soak?.cpuNs, s.soak?.cpuNs),
      fds: s.daemon?.fds ?? null,
      thermalC: s.thermalC,
      gpuPct: s.tegra?.gpuPct ?? null,
      ingestFps: rate((m) => m.framesIngested),
      processedFps: rate((m) => m.framesProcessed),
      droppedPerS: rate(dropped),
      loadavg1: s.loadavg1,
    };
  });
}

/** Health state changes over the measured span (the first message, then every change). */
export function healthPoints(r: SoakRecording): HealthPoint[] {
  const out: HealthPoint[] = [];
  let prev: string | undefined;
  for (const h of r.health) {
    if (h.at < r.t0 || h.at > r.tEnd) continue;
    if (h.state !== prev) out.push({ tS: (h.at - r.t0) / 1000, state: h.state, reasons: h.reasons });
    prev = h.state;
  }
  return out;
}
