// Prometheus' text exposition, read from the outside as a scraper reads it: the samples of
// one scrape, sums over label sets, histograms and the quantiles Prometheus would compute
// from them. `perceptd soak` and `perceptd bench pipeline` read the daemon's /metrics here.
import { get as httpGet } from "node:http";

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments and blank lines skipped). */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

function matches(s: PromSample, name: string, labels: Record<string, string>): boolean {
  return s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
}

/** Sum of every sample of `name` whose labels include `labels`. */
export function sumSamples(samples: readonly PromSample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => matches(s, name, labels)).reduce((a, s) => a + s.value, 0);
}

export interface HistogramSnapshot {
  /** cumulative counts by upper bound, ascending, +Inf last */
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

/** The histogram `name` (cumulative buckets, sum, count) over every label set that includes `labels`, summed. */
export function histogramOf(samples: readonly PromSample[], name: string, labels: Record<string, string>): HistogramSnapshot {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (!matches(s, `${name}_bucket`, labels)) continue;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  const buckets = [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  return { buckets, sum: sumSamples(samples, `${name}_sum`, labels), count: sumSamples(samples, `${name}_count`, labels) };
}

/** after - before, bucket by bucket: the observations made in between. */
export function histogramDelta(after: HistogramSnapshot, before: HistogramSnapshot): HistogramSnapshot {
  const prev = new Map(before.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (prev.get(b.le) ?? 0) })),
    sum: after.sum - before.sum,
    count: after.count - before.count,
  };
}

/**
 * Prometheus' histogram_quantile: linear interpolation inside the bucket the rank falls in,
 * from 0 for the first bucket; a rank in the +Inf bucket gives the highest finite bound.
 * An estimate: it can be off by up to the width of that bucket. NaN without observations.
 */
export function histogramQuantile(h: HistogramSnapshot, q: number): number {
  const total = h.buckets.length > 0 ? h.buckets[h.buckets.length - 1].count : 0;
  if (!(total > 0)) return NaN;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerLe;
      const inBucket = b.count - lowerCount;
      return inBucket > 0 ? lowerLe + ((b.le - lowerLe) * (rank - lowerCount)) / inBucket : b.le;
    }
    lowerLe = b.le;
    lowerCount = b.count;
  }
  return lowerLe;
}

/**
 * GET `${url}/metrics`, the body unparsed. node:http rather than fetch(): a process's first
 * fetch() loads and compiles undici, a burst of CPU taken from the daemon beside it.
 */
export function scrapeMetricsText(url: string): Promise<string> {
  return new Promise((resolveText, reject) => {
    const req = httpGet(`${url}/metrics`, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", (err) => reject(new Error(`${url}/metrics: ${err.message}`)));
      res.on("end", () => {
        if (res.statusCode === 200) resolveText(Buffer.concat(chunks).toString("utf8"));
        else reject(new Error(`${url}/metrics answered ${String(res.statusCode)}`));
      });
    });
    req.on("error", (err) => reject(new Error(`${url}/metrics: ${err.message}`)));
  });
}

