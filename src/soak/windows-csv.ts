// windows.csv: one row per window, one column per figure, for a spreadsheet or pandas. Column
// names carry their unit; an empty cell is a figure that was not measured.
import { TOPIC_NAMES } from "../bus/topics.ts";
import { FRAME_DROP_REASONS, STAGES } from "../metrics/metrics.ts";
import type { SoakWindow } from "./windows.ts";

type Cell = number | null | undefined;

const cell = (v: Cell): string => (v === null || v === undefined || !Number.isFinite(v) ? "" : String(Math.round(v * 1000) / 1000));

export function windowsCsv(windows: readonly SoakWindow[]): string {
  const cols: [string, (w: SoakWindow) => Cell][] = [
    ["window", (w) => w.index + 1],
    ["start_s", (w) => w.startS],
    ["end_s", (w) => w.endS],
    ["e2e_count", (w) => w.e2e?.count ?? 0],
    ["e2e_p50_ms", (w) => w.e2e?.p50],
    ["e2e_p90_ms", (w) => w.e2e?.p90],
    ["e2e_p99_ms", (w) => w.e2e?.p99],
    ["e2e_max_ms", (w) => w.e2e?.max],
    ["bus_p50_ms", (w) => w.bus?.p50],
    ["bus_p99_ms", (w) => w.bus?.p99],
    ...STAGES.flatMap((st): [string, (w: SoakWindow) => Cell][] => [
      [`${st}_mean_ms`, (w) => w.stages[st]?.meanMs],
      [`${st}_p50_ms`, (w) => w.stages[st]?.p50Ms],
      [`${st}_p90_ms`, (w) => w.stages[st]?.p90Ms],
      [`${st}_p99_ms`, (w) => w.stages[st]?.p99Ms],
      [`${st}_max_le_ms`, (w) => w.stages[st]?.maxLeMs],
    ]),
    ["frames_ingested", (w) => w.framesIngested],
    ["frames_processed", (w) => w.framesProcessed],
    ["ingest_fps", (w) => w.ingestFps],
    ["processed_fps", (w) => w.processedFps],
    ...FRAME_DROP_REASONS.filter((r) => r !== "shutdown").map((r): [string, (w: SoakWindow) => Cell] => [`dropped_${r}`, (w) => w.dropped[r]]),
    ["dropped_fraction", (w) => w.droppedFraction],
    ...TOPIC_NAMES.flatMap((t): [string, (w: SoakWindow) => Cell][] => [
      [`${t}_messages`, (w) => w.topics[t].messages],
      [`${t}_per_s`, (w) => w.topics[t].perSecond],
      [`${t}_gap_p50_ms`, (w) => w.topics[t].gapP50Ms],
      [`${t}_gap_p99_ms`, (w) => w.topics[t].gapP99Ms],
      [`${t}_gap_max_ms`, (w) => w.topics[t].gapMaxMs],
      [`${t}_late`, (w) => w.topics[t].late],
    ]),
    ["counter_gaps", (w) => w.contract.gaps],
    ["e2e_errors", (w) => w.contract.errors],
    ["repeated", (w) => w.contract.repeated],
    ["stale_reports", (w) => w.contract.stale],
    ["health_messages", (w) => w.health.messages],
    ["health_ok_fraction", (w) => w.health.okFraction],
    ["health_transitions", (w) => w.health.transitions.length],
    ["alerts_raised", (w) => w.alerts.raised],
    ["alerts_cleared", (w) => w.alerts.cleared],
    ["alert_flaps", (w) => w.alerts.flaps],
    ["camera_restarts", (w) => w.cameraRestarts],
    ["worker_replacements", (w) => w.workerReplacements],
    ["rss_mb", (w) => w.rssMB],
    ["rss_max_mb", (w) => w.rssMaxMB],
    ["heap_used_mb", (w) => w.heapUsedMB],
    ["fds", (w) => w.fds],
    ["cpu_pct", (w) => w.cpuPct],
    ["soak_cpu_pct", (w) => w.soakCpuPct],
    ["loadavg1", (w) => w.loadavg1Mean],
    ["temp_max_c", (w) => (Object.keys(w.tempMaxC).length > 0 ? Math.max(...Object.values(w.tempMaxC)) : null)],
    ["gpu_pct", (w) => w.gpuPctMean],
  ];
  const lines = [cols.map(([name]) => name).join(",")];
  for (const w of windows) lines.push(cols.map(([, get]) => cell(get(w))).join(","));
  return lines.join("\n") + "\n";
}
