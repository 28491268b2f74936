// A soak's measured span cut into windows (default one minute), each summarised from what
// the subscriber saw and what the sampler read: e2e and per-stage latency, frame rate and
// drops, per-topic inter-message gaps against the topic table's rate, health transitions,
// alerts, memory, CPU, temperatures. Pure: records in, figures out.
import { nominalPeriodMs, TOPIC_NAMES, type TopicName } from "../bus/topics.ts";
import { STAGES, type Stage } from "../metrics/metrics.ts";
import { histogramDelta, histogramQuantile, type HistogramSnapshot } from "./prometheus.ts";
import type { Sample } from "./sampler.ts";
import { percentiles, type Percentiles } from "./stats.ts";
import type { AlertEvent, ContractEvent, DetectionsSeen, HealthSeen } from "./subscriber.ts";

/** Everything a soak recorded; times are performance.now() of the soak process. */
export interface SoakRecording {
  /** measurement start (after warm-up) and end */
  t0: number;
  tEnd: number;
  windowMs: number;
  detections: DetectionsSeen;
  health: HealthSeen[];
  alerts: AlertEvent[];
  contract: ContractEvent[];
  arrivals: Record<TopicName, number[]>;
  samples: Sample[];
  alertFlapMs: number;
}

export interface StageFigures {
  count: number;
  meanMs: number;
  /** from the histogram buckets (interpolated): within a bucket's width */
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** upper bound of the highest bucket with an observation (histograms keep no maximum) */
  maxLeMs: number;
}

export interface TopicFigures {
  messages: number;
  perSecond: number;
  /** from the topic table; null for per-frame topics */
  nominalHz: number | null;
  /** between consecutive messages, ms */
  gapP50Ms: number;
  gapP99Ms: number;
  gapMaxMs: number;
  /** gaps longer than 1.5 nominal periods */
  late: number;
}

export interface HealthTransition {
  /** seconds since measurement start */
  atS: number;
  from: string;
  to: string;
  reasons: string[];
}

export interface SoakWindow {
  index: number;
  /** seconds since measurement start */
  startS: number;
  endS: number;
  /** ingest -> receipt of detections, ms */
  e2e: Percentiles | null;
  /** publish -> receipt (the bus), ms */
  bus: Percentiles | null;
  stages: Partial<Record<Stage, StageFigures>>;
  framesIngested: number | null;
  framesProcessed: number | null;
  ingestFps: number | null;
  processedFps: number | null;
  /** frames dropped by reason (shutdown excluded) */
  dropped: Record<string, number>;
  droppedFraction: number | null;
  topics: Record<TopicName, TopicFigures>;
  contract: { gaps: number; repeated: number; errors: number; stale: number };
  health: {
    messages: number;
    okFraction: number | null;
    transitions: HealthTransition[];
    /** health messages carrying each reason, by the reason's name and subject ("inference_overrun (front)") */
    reasons: Record<string, number>;
  };
  alerts: { raised: number; cleared: number; flaps: number };
  cameraRestarts: number | null;
  workerReplacements: number | null;
  /** the daemon's resident memory at the window's end and its peak, MB */
  rssMB: number | null;
  rssMaxMB: number | null;
  heapUsedMB: number | null;
  fds: number | null;
  /** mean CPU of the daemon over the window, % of one core, in total and by thread group */
  cpuPct: number | null;
  cpuByGroupPct: Record<string, number>;
  /** the soak process's own CPU, % of one core */
  soakCpuPct: number | null;
  /** highest reading per thermal zone */
  tempMaxC: Record<string, number>;
  gpuPctMean: number | null;
  loadavg1Mean: number | null;
}

const MB = 1024 * 1024;

/** Window boundaries in ms since t0: whole windows, a remainder of at least half a window its own, a shorter one added to the last. */
export function windowBounds(spanMs: number, windowMs: number): [number, number][] {
  if (!(spanMs > 0)) return [];
  const whole = Math.floor(spanMs / windowMs);
  const rest = spanMs - whole * windowMs;
  const bounds: [number, number][] = [];
  for (let i = 0; i < whole; i++) bounds.push([i * windowMs, (i + 1) * windowMs]);
  if (bounds.length === 0 || rest >= windowMs / 2) bounds.push([whole * windowMs, spanMs]);
  else bounds[bounds.length - 1][1] = spanMs;
  return bounds;
}

/** The sample nearest to `at`. */
export function nearestSample(samples: readonly Sample[], at: number): Sample | null {
  let best: Sample | null = null;
  for (const s of samples) if (best === null || Math.abs(s.at - at) < Math.abs(best.at - at)) best = s;
  return best;
}

function stageFigures(h: HistogramSnapshot): StageFigures | undefined {
  if (!(h.count > 0)) return undefined;
  let maxLe = 0;
  let prev = 0;
  for (const b of h.buckets) {
    if (b.count > prev) maxLe = b.le;
    prev = b.count;
  }
  return {
    count: h.count,
    meanMs: (h.sum / h.count) * 1000,
    p50Ms: histogramQuantile(h, 0.5) * 1000,
    p90Ms: histogramQuantile(h, 0.9) * 1000,
    p99Ms: histogramQuantile(h, 0.99) * 1000,
    maxLeMs: maxLe * 1000,
  };
}

function between<T extends { at: number }>(xs: readonly T[], a: number, b: number): T[] {
  return xs.filter((x) => x.at >= a && x.at < b);
}

function topicFigures(topic: TopicName, arrivals: readonly number[], a: number, b: number): TopicFigures {
  const inside = arrivals.filter((t) => t >= a && t < b);
  const gaps: number[] = [];
  for (let i = 1; i < inside.length; i++) gaps.push(inside[i] - inside[i - 1]);
  const period = nominalPeriodMs(topic);
  const g = percentiles(gaps);
  return {
    messages: inside.length,
    perSecond: (inside.length * 1000) / (b - a),
    nominalHz: period === null ? null : 1000 / period,
    gapP50Ms: g?.p50 ?? NaN,
    gapP99Ms: g?.p99 ?? NaN,
    gapMaxMs: g?.max ?? NaN,
    late: period === null ? 0 : gaps.filter((x) => x > 1.5 * period).length,
  };
}

function cpuPct(a: Sample | null, b: Sample | null, pick: (s: Sample) => number | undefined): number | null {
  if (a === null || b === null || b.at <= a.at) return null;
  const x = pick(a);
  const y = pick(b);
  if (x === undefined || y === undefined) return null;
  return ((y - x) / 1e6 / (b.at - a.at)) * 100;
}

/** Alert raises and clears in [a, b), and flaps: a raise of a key cleared less than flapMs before. */
function alertFigures(events: readonly AlertEvent[], a: number, b: number, flapMs: number): SoakWindow["alerts"] {
  const lastClear = new Map<string, number>();
  let raised = 0;
  let cleared = 0;
  let flaps = 0;
  for (const e of events) {
    if (e.at >= b) break;
    const inside = e.at >= a;
    if (e.kind === "cleared") {
      lastClear.set(e.key, e.at);
      if (inside) cleared++;
    } else {
      const c = lastClear.get(e.key);
      if (inside) {
        raised++;
        if (c !== undefined && e.at - c <= flapMs) flaps++;
      }
    }
  }
  return { raised, cleared, flaps };
}

/** A health reason without its figures: "inference_overrun (front): 23 of ..." -> "inference_overrun (front)". */
export function reasonKey(reason: string): string {
  const colon = reason.indexOf(":");
  return colon < 0 ? reason : reason.slice(0, colon);
}

function healthFigures(health: readonly HealthSeen[], a: number, b: number, t0: number): SoakWindow["health"] {
  const inside = between(health, a, b);
  const before = health.filter((h) => h.at < a).at(-1);
  const transitions: HealthTransition[] = [];
  let prev = before?.state;
  for (const h of inside) {
    if (prev !== undefined && h.state !== prev) transitions.push({ atS: (h.at - t0) / 1000, from: prev, to: h.state, reasons: h.reasons });
    prev = h.state;
  }
  const reasons: Record<string, number> = {};
  for (const h of inside) for (const r of new Set(h.reasons.map(reasonKey))) reasons[r] = (reasons[r] ?? 0) + 1;
  return { messages: inside.length, okFraction: inside.length === 0 ? null : inside.filter((h) => h.state === "STATE_OK").length / inside.length, transitions, reasons };
}

export function computeWindows(r: SoakRecording): SoakWindow[] {
  const bounds = windowBounds(r.tEnd - r.t0, r.windowMs);
  return bounds.map(([s, e], index) => {
    const a = r.t0 + s;
    const b = r.t0 + e;
    const e2e: number[] = [];
    const bus: number[] = [];
    const d = r.detections;
    for (let i = 0; i < d.at.length; i++) {
      if (d.at[i] >= a && d.at[i] < b) {
        e2e.push(d.e2eMs[i]);
        bus.push(d.busMs[i]);
      }
    }
    const first = nearestSample(r.samples, a);
    const last = nearestSample(r.samples, b);
    const inside = r.samples.filter((x) => x.at >= a && x.at <= b);
    const m0 = first?.metrics ?? null;
    const m1 = last?.metrics ?? null;
    const spanS = first && last && last.at > first.at ? (last.at - first.at) / 1000 : null;
    const stages: Partial<Record<Stage, StageFigures>> = {};
    if (m0 && m1) for (const st of STAGES) stages[st] = stageFigures(histogramDelta(m1.stages[st], m0.stages[st]));
    const dropped: Record<string, number> = {};
    if (m0 && m1) for (const [k, v] of Object.entries(m1.dropped)) if (k !== "shutdown") dropped[k] = v - (m0.dropped[k] ?? 0);
    const ingested = m0 && m1 ? m1.framesIngested - m0.framesIngested : null;
    const processed = m0 && m1 ? m1.framesProcessed - m0.framesProcessed : null;
    const droppedTotal = Object.values(dropped).reduce((x, y) => x + y, 0);
    const contract = between(r.contract, a, b);
    const count = (k: ContractEvent["kind"]): number => contract.filter((c) => c.kind === k).reduce((x, c) => x + c.count, 0);
    const groups = new Set(inside.flatMap((x) => Object.keys(x.daemon?.groupCpuNs ?? {})));
    const temps: Record<string, number> = {};
    for (const x of inside) for (const [k, v] of Object.entries(x.thermalC)) temps[k] = Math.max(temps[k] ?? -Infinity, v);
    const gpu = inside.map((x) => x.tegra?.gpuPct).filter((v): v is number => v !== undefined);
    const rss = inside.map((x) => x.daemon?.rssBytes).filter((v): v is number => v !== undefined && Number.isFinite(v));
    return {
      index,
      startS: s / 1000,
      endS: e / 1000,
      e2e: percentiles(e2e),
      bus: percentiles(bus),
      stages,
      framesIngested: ingested,
      framesProcessed: processed,
      ingestFps: ingested !== null && spanS ? ingested / spanS : null,
      processedFps: processed !== null && spanS ? processed / spanS : null,
      dropped,
      droppedFraction: ingested ? droppedTotal / ingested : null,
      topics: Object.fromEntries(TOPIC_NAMES.map((t) => [t, topicFigures(t, r.arrivals[t], a, b)])) as Record<TopicName, TopicFigures>,
      contract: { gaps: count("gap"), repeated: count("repeated"), errors: count("error"), stale: count("stale") },
      health: healthFigures(r.health, a, b, r.t0),
      alerts: alertFigures(r.alerts, a, b, r.alertFlapMs),
      cameraRestarts: m0 && m1 ? m1.cameraRestarts - m0.cameraRestarts : null,
      workerReplacements: m0 && m1 ? m1.workerReplacements - m0.workerReplacements : null,
      rssMB: last?.daemon ? last.daemon.rssBytes / MB : null,
      rssMaxMB: rss.length > 0 ? Math.max(...rss) / MB : null,
      heapUsedMB: m1?.heapUsedBytes != null ? m1.heapUsedBytes / MB : null,
      fds: last?.daemon?.fds ?? null,
      cpuPct: cpuPct(first, last, (x) => x.daemon?.cpuNs),
      cpuByGroupPct: Object.fromEntries([...groups].map((g) => [g, cpuPct(first, last, (x) => x.daemon?.groupCpuNs[g] ?? 0) ?? NaN])),
      soakCpuPct: cpuPct(first, last, (x) => x.soak?.cpuNs),
      tempMaxC: temps,
      gpuPctMean: gpu.length > 0 ? gpu.reduce((x, y) => x + y, 0) / gpu.length : null,
      loadavg1Mean: inside.length > 0 ? inside.reduce((x, y) => x + y.loadavg1, 0) / inside.length : null,
    };
  });
}
