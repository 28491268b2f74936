// The compact live status line the daemon prints on a terminal:
//   12.3s  in 123  done 118  drop 5  9.9 fps  e2e p50 41 ms p99 63 ms  inf 33 ms  person 5 car 1
import type { DaemonStatus } from "./daemon.ts";

function ms(v: number): string {
  return Number.isFinite(v) ? `${v < 10 ? v.toFixed(1) : Math.round(v)} ms` : "- ms";
}

export function formatStatus(s: DaemonStatus): string {
  const objects = Object.entries(s.objects)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, v]) => `${k} ${v}`)
    .join(" ");
  const restarting = s.cameras.filter((c) => c.state !== "running").map((c) => `${c.id}:${c.state}`);
  return [
    `${s.uptimeS.toFixed(1)}s`,
    `in ${s.ingested}`,
    `done ${s.processed}`,
    `drop ${s.dropped}`,
    `${s.fps.toFixed(1)} fps`,
    `e2e p50 ${ms(s.e2eP50Ms)} p99 ${ms(s.e2eP99Ms)}`,
    `inf ${ms(s.inferenceP50Ms)}`,
    objects || "no objects",
    ...(restarting.length ? [`[${restarting.join(" ")}]`] : []),
  ].join("  ");
}
