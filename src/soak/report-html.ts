// report.html: one self-contained page (inline SVG and CSS, no script, nothing fetched) that
// a bench engineer reads top to bottom: the verdict, what ran, the faults, then the plots
// (latency over time, where the time goes, frame rate and drops, memory and CPU,
// temperatures, health), then every window's figures. With a baseline, its curves are
// drawn dashed under this run's and the verdict shows the differences.
import { STAGES } from "../metrics/metrics.ts";
import { TOPIC_NAMES, TOPICS } from "../bus/topics.ts";
import type { BudgetResult } from "./budgets.ts";
import { formatDuration } from "./duration.ts";
import type { SamplePoint, SoakResult } from "./result.ts";
import { escapeXml as esc, lineChart, stackedBars, timeAxis, timeline, type Series, type Span } from "./svg-charts.ts";

const HEALTH_COLORS: Record<string, string> = { OK: "#59a14f", DEGRADED: "#f1c232", FAULT: "#d62728", STARTING: "#9ecae1", STOPPING: "#999999" };
const STAGE_COLORS = ["#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#b6992d", "#e15759"];
const GROUP_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"];
const FAULT_COLORS: Record<string, string> = { "camera-stall": "#f4a582", "inference-hang": "#d6604d", "subscriber-pause": "#92c5de" };

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:920px;color:#222;line-height:1.4;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#555;font-size:13px}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:700;color:#fff;margin:10px 0}
.pass{background:#2e7d32}.fail{background:#c62828}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0;width:100%}
th,td{border-bottom:1px solid #e3e3e3;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.st-pass{color:#2e7d32;font-weight:600}td.st-fail{color:#c62828;font-weight:700}td.st-nj{color:#777}
figure{margin:10px 0 18px}figcaption{font-size:12px;color:#555;margin-top:2px}
.note{font-size:12px;color:#555}
.scroll{overflow-x:auto}
.windows td{white-space:nowrap}
code{font-size:12px;background:#f4f4f4;padding:1px 4px;border-radius:3px}
`;

function stateName(s: string): string {
  return s.replace(/^STATE_/, "");
}

function n(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "-";
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits);
}

function table(head: string[], rows: string[][], numeric: boolean[] = []): string {
  const th = head.map((h, i) => `<th${numeric[i] ? ' class="num"' : ""}>${esc(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric[i] ? ' class="num"' : ""}>${c}</td>`).join("")}</tr>`).join("");
  return `<div class="scroll"><table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table></div>`;
}

function verdictTable(results: readonly BudgetResult[], withBaseline: boolean): string {
  const cls = (r: BudgetResult): string => (r.status === "pass" ? "st-pass" : r.status === "fail" ? "st-fail" : "st-nj");
  const rows = results.map((r) => {
    const base = [`<td>${esc(r.name)}${r.note ? `<div class="note">${esc(r.note)}</div>` : ""}</td>`, `<td>${esc(r.limit)}</td>`, `<td>${esc(r.measured)}</td>`];
    if (withBaseline) base.push(`<td>${esc(r.baseline?.measured ?? "-")}</td>`, `<td>${esc(r.baseline?.difference ?? "-")}</td>`);
    base.push(`<td class="${cls(r)}">${esc(r.status.toUpperCase())}</td>`);
    return `<tr>${base.join("")}</tr>`;
  });
  const head = ["budget", "limit", "measured", ...(withBaseline ? ["baseline", "difference"] : []), "result"];
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

/** Plot coordinates on the run's time axis. */
function axisOf(r: SoakResult): { scale: number; unit: string; xMax: number } {
  const t = timeAxis(r.measuredS);
  return { ...t, xMax: Math.max(r.measuredS, 1e-3) * t.scale };
}

function faultSpans(r: SoakResult, scale: number): Span[] {
  return r.faults.map((f) => ({ x0: (f.fault.atMs / 1000) * scale, x1: ((f.fault.atMs + f.fault.forMs) / 1000) * scale, color: FAULT_COLORS[f.fault.action] ?? "#ccc", label: f.fault.action }));
}

function pointsOf(samples: readonly SamplePoint[], scale: number, pick: (s: SamplePoint) => number | null): [number, number][] {
  return samples.map((s) => [s.tS * scale, pick(s) ?? NaN]);
}

function latencyChart(r: SoakResult, base: SoakResult | null): string {
  const { scale, unit, xMax } = axisOf(r);
  const pts = (pick: (b: SoakResult["series"]["latency"][number]) => number, of = r): [number, number][] => of.series.latency.map((b) => [(b.tS * scale), b.count > 0 ? pick(b) : NaN]);
  const series: Series[] = [];
  if (base) series.push({ name: "baseline p99", color: "#b07aa1", points: pts((b) => b.p99, base).filter(([x]) => x <= xMax), dashed: true });
  series.push(
    { name: "max", color: "#c7c7c7", points: pts((b) => b.max), width: 1 },
    { name: "p99", color: "#d62728", points: pts((b) => b.p99), width: 2.2 },
    { name: "p90", color: "#f28e2b", points: pts((b) => b.p90) },
    { name: "p50", color: "#4e79a7", points: pts((b) => b.p50) },
  );
  const binS = r.series.latency.length > 1 ? r.series.latency[1].tS - r.series.latency[0].tS : r.measuredS;
  return figure(
    lineChart({
      title: "End-to-end latency: frame ingest -> message received",
      yLabel: "ms",
      xLabel: unit,
      series,
      spans: faultSpans(r, scale),
      marks: r.windows.slice(1).map((w) => w.startS * scale),
      xMax,
      empty: "no detections received",
    }),
    `Percentiles over ${n(binS, 1)} s bins, from each detections message's header (ingest time) and its receipt at the soak's subscriber. Dotted lines: window boundaries; shaded: planned faults.`,
  );
}

function stageChart(r: SoakResult, base: SoakResult | null): string {
  const names = STAGES.filter((s) => s !== "end_to_end");
  const stacks = names.map((st, i) => ({ name: st.replace(/_/g, " "), color: STAGE_COLORS[i], values: r.windows.map((w) => w.stages[st]?.meanMs ?? NaN) }));
  stacks.push({
    name: "main thread rest",
    color: STAGE_COLORS[6],
    values: r.windows.map((w) => {
      const e2e = w.stages.end_to_end?.meanMs;
      if (e2e === undefined) return NaN;
      return Math.max(0, e2e - names.reduce((a, st) => a + (w.stages[st]?.meanMs ?? 0), 0));
    }),
  });
  stacks.push({ name: "bus to subscriber", color: STAGE_COLORS[7], values: r.windows.map((w) => w.bus?.mean ?? NaN) });
  return figure(
    stackedBars({
      title: "Where the time goes: mean per stage, per window",
      yLabel: "ms",
      categories: r.windows.map((w) => `w${w.index + 1}`),
      stacks,
      compare: base ? { label: "baseline total", totals: r.windows.map((_, i) => base.windows[i]?.e2e?.mean ?? null) } : undefined,
      empty: "no stage timings (metrics off?)",
    }),
    "Means from the daemon's stage histograms (/metrics) for the window; \"main thread rest\" is the rest of ingest -> publish (hazard assessment, queueing on the main thread); \"bus to subscriber\" is publish -> receipt.",
  );
}

function rateChart(r: SoakResult, base: SoakResult | null): string {
  const { scale, unit, xMax } = axisOf(r);
  const series: Series[] = [];
  if (base) series.push({ name: "baseline processed", color: "#b07aa1", points: pointsOf(base.series.samples, scale, (s) => s.processedFps).filter(([x]) => x <= xMax), dashed: true });
  series.push(
    { name: "ingested", color: "#a0cbe8", points: pointsOf(r.series.samples, scale, (s) => s.ingestFps) },
    { name: "processed", color: "#4e79a7", points: pointsOf(r.series.samples, scale, (s) => s.processedFps), width: 2.2 },
    { name: "dropped", color: "#e15759", points: pointsOf(r.series.samples, scale, (s) => s.droppedPerS) },
  );
  return figure(
    lineChart({ title: "Frame rate and drops", yLabel: "frames per second", xLabel: unit, series, spans: faultSpans(r, scale), xMax, empty: "no frame counters (metrics off?)" }),
    "From the daemon's frame counters between consecutive samples; dropped: frames replaced by a newer one before the detector was free.",
  );
}

function memoryChart(r: SoakResult, base: SoakResult | null): string {
  const { scale, unit, xMax } = axisOf(r);
  const series: Series[] = [];
  if (base) series.push({ name: "baseline RSS", color: "#b07aa1", points: pointsOf(base.series.samples, scale, (s) => s.rssMB).filter(([x]) => x <= xMax), dashed: true });
  series.push({ name: "RSS", color: "#4e79a7", points: pointsOf(r.series.samples, scale, (s) => s.rssMB), width: 2.2 });
  series.push({ name: "V8 heap used", color: "#59a14f", points: pointsOf(r.series.samples, scale, (s) => s.heapMB) });
  const fit = r.series.rssFit;
  if (fit) {
    const hours = (x: number): number => x / scale / 3600;
    series.push({ name: `Theil-Sen ${fit.mbPerHour >= 0 ? "+" : ""}${n(fit.mbPerHour)} MB/h`, color: "#222", dashed: true, width: 1.2, points: [0, xMax].map((x) => [x, fit.interceptMB + fit.mbPerHour * hours(x)]) });
  }
  return figure(lineChart({ title: "Daemon memory", yLabel: "MB", xLabel: unit, series, xMax, empty: "no memory samples" }), "Resident set size from /proc; V8 heap from the daemon's process metrics; the dashed line is the robust fit the RSS budget judges.");
}

function cpuChart(r: SoakResult): string {
  const { scale, unit, xMax } = axisOf(r);
  const groups = [...new Set(r.series.samples.flatMap((s) => Object.keys(s.cpuByGroupPct)))].sort();
  const series: Series[] = [{ name: "daemon total", color: "#222", points: pointsOf(r.series.samples, scale, (s) => s.cpuPct), width: 2.2 }];
  groups.forEach((g, i) => series.push({ name: g, color: GROUP_COLORS[i % GROUP_COLORS.length], points: pointsOf(r.series.samples, scale, (s) => s.cpuByGroupPct[g] ?? null) }));
  series.push({ name: "soak itself", color: "#bbbbbb", points: pointsOf(r.series.samples, scale, (s) => s.soakCpuPct), dashed: true });
  return figure(
    lineChart({ title: "CPU by thread group", yLabel: "% of one core", xLabel: unit, series, spans: faultSpans(r, scale), xMax, empty: "no CPU samples" }),
    `From /proc/&lt;pid&gt;/task/*/schedstat between samples; ${r.conditions.cpuCores} cores on this machine (100 % = one core).`,
  );
}

function thermalChart(r: SoakResult): string {
  const { scale, unit, xMax } = axisOf(r);
  const zones = [...new Set(r.series.samples.flatMap((s) => Object.keys(s.thermalC)))].sort();
  const series: Series[] = zones.map((z, i) => ({ name: z, color: GROUP_COLORS[i % GROUP_COLORS.length], points: pointsOf(r.series.samples, scale, (s) => s.thermalC[z] ?? null) }));
  const gpu = r.series.samples.some((s) => s.gpuPct !== null);
  const chart = lineChart({
    title: "Temperatures",
    yLabel: "degrees C",
    xLabel: unit,
    series,
    xMax,
    yMin: zones.length > 0 ? Math.floor(Math.min(...r.series.samples.flatMap((s) => Object.values(s.thermalC))) / 10) * 10 : 0,
    empty: "this machine exposes no thermal zones (/sys/class/thermal is empty: a VM?)",
  });
  const gpuChart = gpu
    ? figure(lineChart({ title: "GPU load (tegrastats)", yLabel: "%", xLabel: unit, series: [{ name: "GR3D", color: "#76b7b2", points: pointsOf(r.series.samples, scale, (s) => s.gpuPct) }], xMax }), "")
    : "";
  return figure(chart, "Every readable /sys/class/thermal zone; on a Jetson tegrastats adds GPU load, EMC, rails and throttling.") + gpuChart;
}

function healthChart(r: SoakResult): string {
  const { scale, unit, xMax } = axisOf(r);
  const h = r.series.health;
  const segments = h.map((p, i) => ({ x0: p.tS * scale, x1: (i + 1 < h.length ? h[i + 1].tS : r.measuredS) * scale, state: stateName(p.state) }));
  const marks = r.faults.map((f) => ({ x: (f.fault.atMs / 1000) * scale, label: f.fault.action }));
  return figure(timeline({ title: "Health on the bus", xMax, xLabel: unit, segments, colors: HEALTH_COLORS, marks }), "The state of every health message the subscriber received; transitions and their reasons are listed below.");
}

function figure(svg: string, caption: string): string {
  return `<figure>${svg}${caption ? `<figcaption>${caption}</figcaption>` : ""}</figure>`;
}

function transitionsTable(r: SoakResult): string {
  const rows = r.windows.flatMap((w) => w.health.transitions).map((t) => [n(t.atS, 1), esc(`${stateName(t.from)} -> ${stateName(t.to)}`), esc(t.reasons.join("; ") || "-")]);
  if (rows.length === 0) return `<p class="note">No health transitions after warm-up.</p>`;
  const shown = rows.slice(0, 200);
  return table(["at (s)", "transition", "reasons"], shown, [true, false, false]) + (rows.length > shown.length ? `<p class="note">${rows.length - shown.length} more in soak.json.</p>` : "");
}

function reasonsTable(r: SoakResult): string {
  const keys = [...new Set(r.windows.flatMap((w) => Object.keys(w.health.reasons ?? {})))].sort();
  if (keys.length === 0) return "";
  const pct = (w: SoakResult["windows"][number], k: string): string => (w.health.messages > 0 ? `${(((w.health.reasons?.[k] ?? 0) / w.health.messages) * 100).toFixed(0)} %` : "-");
  const rows = keys.map((k) => [esc(k), ...r.windows.map((w) => pct(w, k))]);
  return (
    `<p class="note">Why the daemon was not OK: the share of each window's health messages that carried each reason (the full text, with its figures, is in every health message).</p>` +
    table(["reason", ...r.windows.map((w) => `w${w.index + 1}`)], rows, [false, ...r.windows.map(() => true)])
  );
}

function faultsTable(r: SoakResult): string {
  if (r.faults.length === 0) return "";
  const rows = r.faults.map((f) => [
    esc(f.fault.action + (f.fault.camera ? ` (${f.fault.camera})` : "")),
    n(f.fault.atMs / 1000, 1),
    n(f.fault.forMs / 1000, 1),
    f.toDegradedMs === null ? "not seen" : `${n(f.toDegradedMs, 0)} ms: ${esc(stateName(f.degradedState ?? ""))}`,
    esc(f.degradedReasons.join("; ") || "-"),
    f.backToOkMs === null ? (f.toDegradedMs === null ? "-" : "not back") : `${n(f.backToOkMs, 0)} ms`,
    f.pausedSubscriberMissed === undefined ? "-" : String(f.pausedSubscriberMissed),
  ]);
  return (
    `<h2>Faults</h2>` +
    table(["fault", "at (s)", "for (s)", "to DEGRADED/FAULT", "reasons", "back to OK after it ended", "paused subscriber lost"], rows, [false, true, true, false, false, false, true])
  );
}

function windowsTable(r: SoakResult): string {
  return `<div class="windows">${windowsRows(r)}</div>`;
}

function windowsRows(r: SoakResult): string {
  const rows = r.windows.map((w) => [
    String(w.index + 1),
    `${n(w.startS, 0)}&ndash;${n(w.endS, 0)}`,
    n(w.e2e?.p50),
    n(w.e2e?.p90),
    n(w.e2e?.p99),
    n(w.e2e?.max),
    n(w.stages.inference?.p99Ms),
    n(w.processedFps),
    Object.values(w.dropped).reduce((a, b) => a + b, 0).toString(),
    ...TOPIC_NAMES.map((t) => n(w.topics[t].gapMaxMs, 0)),
    `${w.contract.gaps}/${w.contract.errors}/${w.contract.stale}`,
    w.health.okFraction === null ? "-" : `${(w.health.okFraction * 100).toFixed(1)} %`,
    `${w.alerts.raised}/${w.alerts.cleared}/${w.alerts.flaps}`,
    n(w.rssMB),
    n(w.cpuPct, 0),
  ]);
  return table(
    ["#", "s", "e2e p50", "p90", "p99", "max", "infer. p99", "fps", "drops", ...TOPIC_NAMES.map((t) => `${t} gap`), "gaps/ err/ stale", "health OK", "alerts +/-/ flaps", "RSS MB", "CPU %"],
    rows,
    [true, false, true, true, true, true, true, true, true, ...TOPIC_NAMES.map(() => true), false, true, false, true, true],
  );
}

function runTable(r: SoakResult): string {
  const v = r.versions;
  const rows: [string, string][] = [
    ["perceptd", `${v.perceptd}${v.commit ? ` (${v.commit})` : ""}`],
    ["model", `${v.model.name} (${v.model.file}, sha256 ${v.model.sha256.slice(0, 16)}...)`],
    ["ONNX Runtime", `${v.onnxruntime}, provider ${v.executionProvider ?? "unknown"}`],
    ["GStreamer", v.gstreamer ?? "unknown"],
    ["Node.js", v.node],
    ["kernel", v.kernel],
    ["CPU", `${v.machine.cpu}, ${v.machine.cores} cores, ${v.machine.totalMemoryGiB} GiB`],
    ["power mode", v.powerMode ?? "not readable here"],
    ["config", r.configPath],
    ["started", r.startedAt],
    ["duration", `${formatDuration(r.measuredS * 1000)} measured of ${formatDuration(r.durationS * 1000)} asked, windows of ${formatDuration(r.windowS * 1000)}`],
    [
      "warm-up",
      `READY=1 after ${r.warmup.readyAfterS === null ? "-" : `${n(r.warmup.readyAfterS, 1)} s`}, then ${n(r.warmup.settleS, 0)} s left out: ${r.warmup.messages} messages, e2e p99 ${n(r.warmup.e2eP99Ms)} ms`,
    ],
    [
      "machine while measuring",
      `load average ${n(r.conditions.loadavg1Mean, 2)} (1 min, mean), the soak itself ${n(r.conditions.soakCpuPctMean, 1)} % of a core${r.conditions.tegrastats ? ", tegrastats on" : ""}`,
    ],
  ];
  return table(["", ""], rows.map(([k, val]) => [esc(k), esc(val)]));
}

export function renderReport(r: SoakResult, base: SoakResult | null): string {
  const pass = r.verdict.pass;
  const failedNames = r.verdict.results.filter((x) => x.status === "fail").map((x) => x.name);
  const totals = r.totals.e2e;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>perceptd soak: ${pass ? "PASS" : "FAIL"}, ${esc(r.versions.model.name)}, ${esc(formatDuration(r.measuredS * 1000))}</title>
<style>${CSS}</style></head><body>
<h1>perceptd soak report</h1>
<div class="sub">${esc(r.configPath)} &middot; ${esc(r.startedAt)} &middot; ${esc(r.versions.model.name)} on ${esc(r.versions.executionProvider ?? "?")} &middot; ${esc(r.versions.machine.cpu)}</div>
<div class="verdict ${pass ? "pass" : "fail"}">${pass ? "PASS" : `FAIL: ${esc(failedNames.join(", "))}`}</div>
<div class="sub">${r.totals.detections} detections messages over ${esc(formatDuration(r.measuredS * 1000))}${totals ? `; e2e p50 ${n(totals.p50)} ms, p99 ${n(totals.p99)} ms, max ${n(totals.max)} ms` : ""}${base ? `; baseline: ${esc(base.baseline?.dir ?? r.baseline?.dir ?? "")} (${esc(base.versions.model.name)}, ${esc(base.startedAt)})` : ""}</div>
<h2>Verdict</h2>
${verdictTable(r.verdict.results, base !== null)}
<h2>What ran</h2>
${runTable(r)}
${faultsTable(r)}
<h2>Latency</h2>
${latencyChart(r, base)}
${stageChart(r, base)}
<h2>Throughput</h2>
${rateChart(r, base)}
<h2>Resources</h2>
${memoryChart(r, base)}
${cpuChart(r)}
${thermalChart(r)}
<h2>Health</h2>
${healthChart(r)}
${reasonsTable(r)}
${transitionsTable(r)}
<h2>Windows</h2>
${windowsTable(r)}
<p class="note">All times in ms. Topic gaps: the longest between two messages of the topic: health (nominal ${TOPICS.health.rate === "per-frame" ? "-" : TOPICS.health.rate.hz} Hz), a alerts (${TOPICS.alerts.rate === "per-frame" ? "-" : TOPICS.alerts.rate.hz} Hz, and at once on a change); gaps/errors/stale: messages missing, failing their E2E checks, NO_NEW_DATA reports at the soak's subscriber. Every figure is in soak.json and windows.csv beside this file.</p>
<p class="note">Command: <code>${esc(r.command)}</code></p>
</body></html>
`;
}
