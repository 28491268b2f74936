// What the live view costs the daemon, with and without someone watching, side by side in
// one run: the real daemon replays vtest.avi in a loop with config/demo.yaml's camera,
// corridor and alerts and the view on, and alternates windows with no client and with one
// MJPEG client reading the stream. Per window, from the daemon's own /metrics: process CPU
// per processed frame (every thread: inference, render thread, GStreamer), mean end-to-end
// latency, and frames the view encoded.
//
//   npx tsx scripts/view-cost.ts [--pairs 4] [--window-s 10]
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort, REPO_ROOT, removeConfig, runDaemon, writeConfig } from "../src/soak/daemon-process.ts";
import { loadConfig } from "../src/config/load.ts";

const VTEST = join(REPO_ROOT, ".cache/fixtures/vtest.avi");
const DEMO = join(REPO_ROOT, "config/demo.yaml");
const { values: args } = parseArgs({ options: { pairs: { type: "string", default: "4" }, "window-s": { type: "string", default: "10" } } });
const pairs = Number(args.pairs);
const windowMs = Number(args["window-s"]) * 1000;

interface Sample {
  cpuS: number;
  frames: number;
  e2eSumS: number;
  e2eCount: number;
  encoded: number;
}

function value(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(labels));
  if (line === undefined) throw new Error(`no ${name} ${labels} in /metrics`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

async function sample(metricsUrl: string): Promise<Sample> {
  const t = await (await fetch(`${metricsUrl}/metrics`)).text();
  return {
    cpuS: value(t, "process_cpu_seconds_total"),
    frames: value(t, "perceptd_frames_processed_total", 'camera="demo"'),
    e2eSumS: value(t, "perceptd_stage_latency_seconds_sum", 'stage="end_to_end"'),
    e2eCount: value(t, "perceptd_stage_latency_seconds_count", 'stage="end_to_end"'),
    encoded: value(t, "perceptd_view_frames_encoded_total", 'camera="demo"'),
  };
}

/** Reads an MJPEG stream until aborted; counts the bytes that arrive. */
function watch(url: string): { stop: () => Promise<number> } {
  const ctl = new AbortController();
  let bytes = 0;
  const done = (async () => {
    const res = await fetch(url, { signal: ctl.signal });
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
  })().catch(() => undefined);
  return {
    stop: async () => {
      ctl.abort();
      await done;
      return bytes;
    },
  };
}

const { config } = await loadConfig(DEMO, { env: {} });
const path = await writeConfig({
  ...JSON.parse(JSON.stringify(config)),
  cameras: config.cameras.map((c) => ({ ...c, source: { ...c.source, path: VTEST, loop: true } })),
  bus: { endpoints: [`tcp://127.0.0.1:${await freePort()}`] },
  metrics: { enabled: true, host: "127.0.0.1", port: 0 },
  view: { enabled: true, host: "127.0.0.1", port: 0, fps: config.view.fps, quality: config.view.quality },
  status: { mode: "off" },
  log: { level: "info", format: "json" },
});
const d = runDaemon(["run", "--config", path]);
try {
  const ready = await d.ready(120_000);
  if (ready.viewUrl === null || ready.metricsUrl === null) throw new Error("the daemon's READY=1 names no live view or metrics URL");
  const view = ready.viewUrl;
  const metricsUrl = ready.metricsUrl;
  await new Promise((r) => setTimeout(r, 3000));
  process.stderr.write(`view cost: ${pairs} pairs of ${windowMs / 1000} s windows, view.fps ${config.view.fps}, quality ${config.view.quality}\n`);
  const rows: { client: boolean; cpuMsPerFrame: number; cpuCores: number; e2eMs: number; fps: number; encoded: number; kbps: number }[] = [];
  for (let i = 0; i < pairs * 2; i++) {
    // Alternate which comes first, so drift in the machine's load falls on both alike.
    const client = i % 4 === 1 || i % 4 === 2;
    const w = client ? watch(`${view}/cameras/demo/stream.mjpeg`) : null;
    if (w) await new Promise((r) => setTimeout(r, 500));
    const a = await sample(metricsUrl);
    await new Promise((r) => setTimeout(r, windowMs));
    const b = await sample(metricsUrl);
    const bytes = w ? await w.stop() : 0;
    // The frame being drawn when the client left is encoded after it: let it land in this window.
    if (w) await new Promise((r) => setTimeout(r, 1000));
    const frames = b.frames - a.frames;
    rows.push({
      client,
      cpuMsPerFrame: ((b.cpuS - a.cpuS) * 1000) / frames,
      cpuCores: (b.cpuS - a.cpuS) / (windowMs / 1000),
      e2eMs: ((b.e2eSumS - a.e2eSumS) * 1000) / (b.e2eCount - a.e2eCount),
      fps: frames / (windowMs / 1000),
      encoded: b.encoded - a.encoded,
      kbps: (bytes * 8) / windowMs,
    });
    const r = rows.at(-1)!;
    process.stderr.write(
      `  ${client ? "1 client " : "no client"}  CPU ${r.cpuCores.toFixed(2)} cores, ${r.cpuMsPerFrame.toFixed(1)} ms/frame  e2e mean ${r.e2eMs.toFixed(1)} ms  ${r.fps.toFixed(1)} frames/s  encoded ${r.encoded}  stream ${r.kbps.toFixed(0)} kbit/s\n`,
    );
  }
  const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
  const of = (client: boolean) => rows.filter((r) => r.client === client);
  const cpu0 = mean(of(false).map((r) => r.cpuMsPerFrame));
  const cpu1 = mean(of(true).map((r) => r.cpuMsPerFrame));
  const cores0 = mean(of(false).map((r) => r.cpuCores));
  const cores1 = mean(of(true).map((r) => r.cpuCores));
  const encodedPerS = mean(of(true).map((r) => r.encoded)) / (windowMs / 1000);
  // Side by side: each pair of neighbouring windows, one with a client and one without,
  // gives a ratio; the median of those is robust to a window the shared machine starved.
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const pairsOf = Array.from({ length: pairs }, (_, k) => [rows[2 * k], rows[2 * k + 1]].sort((a, b) => Number(a.client) - Number(b.client)));
  const cpuRatios = pairsOf.map(([no, yes]) => yes.cpuMsPerFrame / no.cpuMsPerFrame);
  const e2eDeltas = pairsOf.map(([no, yes]) => yes.e2eMs - no.e2eMs);
  const e2e0 = mean(of(false).map((r) => r.e2eMs));
  const e2e1 = mean(of(true).map((r) => r.e2eMs));
  console.log(
    JSON.stringify({
      pairs,
      windowS: windowMs / 1000,
      noClient: { cpuCores: +cores0.toFixed(3), cpuMsPerFrame: +cpu0.toFixed(2), e2eMeanMs: +e2e0.toFixed(1), framesEncoded: of(false).reduce((s, r) => s + r.encoded, 0) },
      oneClient: { cpuCores: +cores1.toFixed(3), cpuMsPerFrame: +cpu1.toFixed(2), e2eMeanMs: +e2e1.toFixed(1), framesEncoded: of(true).reduce((s, r) => s + r.encoded, 0) },
      cpuRatio: +(cpu1 / cpu0).toFixed(3),
      cpuRatioMedianOfPairs: +median(cpuRatios).toFixed(3),
      e2eDeltaMedianOfPairsMs: +median(e2eDeltas).toFixed(1),
      // CPU the client added, per frame the view encoded
      cpuMsPerEncodedFrame: +(((cores1 - cores0) * 1000) / encodedPerS).toFixed(1),
      e2eDeltaMs: +(e2e1 - e2e0).toFixed(1),
    }),
  );
} finally {
  await d.stop(5000);
  await removeConfig(path);
}
