// The soak's verdict: each budget of the config's `soak:` section judged on the windows
// after warm-up, plus whether the soak ran its whole duration and whether every planned
// fault recovered. A budget that cannot be judged from what was measured (one window for a
// drift, a span too short for a memory slope) says so and does not fail the soak.
import type { SoakConfig } from "../config/schema.ts";
import { formatDuration } from "./duration.ts";
import type { FaultOutcome } from "./fault-plan.ts";
import type { Sample } from "./sampler.ts";
import { theilSen } from "./stats.ts";
import type { SoakWindow } from "./windows.ts";

export type BudgetId = "duration" | "e2e-p99" | "e2e-p99-drift" | "rss-slope" | "counter-gaps" | "bus-errors" | "health-ok" | "dropped-frames" | "fault-recovery";

export type BudgetStatus = "pass" | "fail" | "not judged";

export interface BudgetResult {
  id: BudgetId;
  /** what is judged, for people */
  name: string;
  /** the budget, e.g. "<= 200 ms" */
  limit: string;
  /** what was measured, e.g. "41.2 ms (window 2)" */
  measured: string;
  /** the measured figure, in the budget's unit; null when there is none */
  value: number | null;
  status: BudgetStatus;
  note?: string;
  /** with --baseline: the baseline's figure and this run's difference to it */
  baseline?: { measured: string; difference: string };
}

/** How the soak ended. */
export type SoakEnd =
  | { kind: "completed" }
  | { kind: "interrupted"; signal: string }
  /** the daemon exited 0 by itself: every replay ended (a file that does not loop) */
  | { kind: "replay-ended"; code: number }
  | { kind: "daemon-exited"; code: number | string }
  | { kind: "subscriber-failed"; error: string };

export interface VerdictInput {
  budgets: SoakConfig;
  windows: readonly SoakWindow[];
  /** samples after warm-up */
  samples: readonly Sample[];
  /** measurement start, performance.now() */
  t0: number;
  durationMs: number;
  measuredMs: number;
  end: SoakEnd;
  faults: readonly FaultOutcome[];
  /** every window's counters summed, and the measured span's health */
  totals: { gaps: number; errors: number; repeated: number; healthMessages: number; healthOk: number; ingested: number | null; dropped: number | null };
}

const f1 = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

function describeEnd(end: SoakEnd): string {
  switch (end.kind) {
    case "completed":
      return "ran to the end";
    case "interrupted":
      return `stopped early by ${end.signal}`;
    case "replay-ended":
      return "ended early: every camera's source ended (a replay without loop: true) and the daemon exited 0";
    case "daemon-exited":
      return `ended early: the daemon exited (${typeof end.code === "number" ? `code ${end.code}${exitMeaning(end.code)}` : `killed by ${end.code}`})`;
    case "subscriber-failed":
      return `ended early: the soak's subscriber failed: ${end.error}`;
  }
}

function exitMeaning(code: number): string {
  switch (code) {
    case 66:
      return ": a replay could not be read";
    case 70:
      return ": the health monitors gave up";
    case 78:
      return ": invalid configuration";
    default:
      return "";
  }
}

export function rssSlope(samples: readonly Sample[], t0: number): { mbPerHour: number; spanS: number; intercept: number } | null {
  const pts = samples.filter((s) => s.daemon !== null && Number.isFinite(s.daemon.rssBytes));
  if (pts.length < 2) return null;
  const xs = pts.map((s) => (s.at - t0) / 3_600_000);
  const fit = theilSen(
    xs,
    pts.map((s) => (s.daemon as { rssBytes: number }).rssBytes / (1024 * 1024)),
  );
  if (fit === null) return null;
  return { mbPerHour: fit.slope, spanS: (xs[xs.length - 1] - xs[0]) * 3600, intercept: fit.intercept };
}

export function judge(v: VerdictInput): BudgetResult[] {
  const b = v.budgets;
  const out: BudgetResult[] = [];
  const endFails = v.end.kind !== "completed" && v.end.kind !== "interrupted";
  out.push({
    id: "duration",
    name: "soak duration",
    limit: formatDuration(v.durationMs),
    measured: `${formatDuration(v.measuredMs)}: ${describeEnd(v.end)}`,
    value: v.measuredMs / 1000,
    status: endFails ? "fail" : v.end.kind === "interrupted" ? "not judged" : "pass",
  });

  const withE2e = v.windows.filter((w) => w.e2e !== null);
  const worst = withE2e.reduce<SoakWindow | null>((a, w) => (a === null || (w.e2e?.p99 ?? 0) > (a.e2e?.p99 ?? 0) ? w : a), null);
  out.push(
    worst?.e2e
      ? {
          id: "e2e-p99",
          name: "e2e p99, worst window",
          limit: `<= ${b.e2eP99MaxMs} ms`,
          measured: `${f1(worst.e2e.p99)} ms (window ${worst.index + 1})`,
          value: worst.e2e.p99,
          status: worst.e2e.p99 <= b.e2eP99MaxMs ? "pass" : "fail",
        }
      : { id: "e2e-p99", name: "e2e p99, worst window", limit: `<= ${b.e2eP99MaxMs} ms`, measured: "no detections received", value: null, status: "fail" },
  );

  const first = withE2e[0];
  const last = withE2e.at(-1);
  if (first?.e2e && last?.e2e && first !== last) {
    const drift = last.e2e.p99 - first.e2e.p99;
    out.push({
      id: "e2e-p99-drift",
      name: "e2e p99 drift, last window vs first",
      limit: `<= +${b.e2eP99DriftMaxMs} ms`,
      measured: `${drift >= 0 ? "+" : ""}${f1(drift)} ms (${f1(first.e2e.p99)} -> ${f1(last.e2e.p99)})`,
      value: drift,
      status: drift <= b.e2eP99DriftMaxMs ? "pass" : "fail",
    });
  } else {
    out.push({ id: "e2e-p99-drift", name: "e2e p99 drift, last window vs first", limit: `<= +${b.e2eP99DriftMaxMs} ms`, measured: "-", value: null, status: "not judged", note: "needs two windows with detections" });
  }

  const slope = rssSlope(v.samples, v.t0);
  const slopeRow: BudgetResult = {
    id: "rss-slope",
    name: "RSS slope (Theil-Sen, after warm-up)",
    limit: `<= ${b.rssSlopeMaxMBPerHour} MB/h`,
    measured: slope === null ? "no memory samples" : `${slope.mbPerHour >= 0 ? "+" : ""}${f1(slope.mbPerHour)} MB/h over ${formatDuration(slope.spanS * 1000)}`,
    value: slope?.mbPerHour ?? null,
    status: slope === null ? "not judged" : slope.spanS < b.rssSlopeMinSpanS ? "not judged" : slope.mbPerHour <= b.rssSlopeMaxMBPerHour ? "pass" : "fail",
  };
  if (slope !== null && slope.spanS < b.rssSlopeMinSpanS) slopeRow.note = `judged from ${formatDuration(b.rssSlopeMinSpanS * 1000)} of samples on (soak.rssSlopeMinSpanS): start-up growth would read as a leak`;
  out.push(slopeRow);

  out.push({
    id: "counter-gaps",
    name: "messages missing (counter gaps)",
    limit: `<= ${b.maxCounterGaps}`,
    measured: String(v.totals.gaps),
    value: v.totals.gaps,
    status: v.totals.gaps <= b.maxCounterGaps ? "pass" : "fail",
  });
  const bad = v.totals.errors + v.totals.repeated;
  out.push({
    id: "bus-errors",
    name: "messages failing E2E checks or repeated",
    limit: `<= ${b.maxBusErrors}`,
    measured: `${bad}${bad > 0 ? ` (${v.totals.errors} failed CRC/decoding/id checks, ${v.totals.repeated} repeated)` : ""}`,
    value: bad,
    status: bad <= b.maxBusErrors ? "pass" : "fail",
  });

  const okFraction = v.totals.healthMessages > 0 ? v.totals.healthOk / v.totals.healthMessages : null;
  out.push({
    id: "health-ok",
    name: "health messages saying OK",
    limit: `>= ${(b.minHealthOkFraction * 100).toFixed(1)} %`,
    measured: okFraction === null ? "no health messages" : `${(okFraction * 100).toFixed(2)} % of ${v.totals.healthMessages}`,
    value: okFraction,
    status: okFraction !== null && okFraction >= b.minHealthOkFraction ? "pass" : "fail",
  });

  const { ingested, dropped } = v.totals;
  const droppedFraction = ingested !== null && dropped !== null && ingested > 0 ? dropped / ingested : null;
  out.push({
    id: "dropped-frames",
    name: "frames dropped",
    limit: `<= ${(b.maxDroppedFraction * 100).toFixed(1)} %`,
    measured: droppedFraction === null ? "no frame counts (metrics off, or no frames)" : `${(droppedFraction * 100).toFixed(2)} % (${dropped} of ${ingested})`,
    value: droppedFraction,
    status: droppedFraction === null ? "not judged" : droppedFraction <= b.maxDroppedFraction ? "pass" : "fail",
  });

  if (v.faults.length > 0) {
    const notBack = v.faults.filter((f) => f.fault.action !== "subscriber-pause" && f.toDegradedMs !== null && f.backToOkMs === null);
    out.push({
      id: "fault-recovery",
      name: "planned faults recovered to OK",
      limit: "every one",
      measured: `${v.faults.length - notBack.length} of ${v.faults.length}`,
      value: v.faults.length - notBack.length,
      status: notBack.length === 0 ? "pass" : "fail",
      note: notBack.length > 0 ? `not back to OK before the end: ${notBack.map((f) => `${f.fault.action} at ${f.fault.atMs / 1000} s`).join(", ")}` : undefined,
    });
  }
  return out;
}

/** Adds the baseline's figures and the differences, budget by budget. */
export function compareWithBaseline(results: BudgetResult[], baseline: readonly BudgetResult[]): BudgetResult[] {
  return results.map((r) => {
    const other = baseline.find((x) => x.id === r.id);
    if (other === undefined) return r;
    let difference = "-";
    if (r.value !== null && other.value !== null && r.id !== "duration") {
      const d = r.value - other.value;
      const pct = (x: number): string => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(2)} pts`;
      difference = r.id === "health-ok" || r.id === "dropped-frames" ? pct(d) : `${d >= 0 ? "+" : ""}${f1(d)}${r.id.startsWith("e2e") ? " ms" : r.id === "rss-slope" ? " MB/h" : ""}`;
    }
    return { ...r, baseline: { measured: other.measured, difference } };
  });
}

export function failed(results: readonly BudgetResult[]): BudgetResult[] {
  return results.filter((r) => r.status === "fail");
}
