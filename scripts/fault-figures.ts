// Fault figures: how long the real daemon takes to show each fault on the bus, and how
// steady its health message stays while inference saturates the CPU. Every figure comes
// from `node bin/perceptd.js run` as a child process (src/soak/daemon-process.ts) and a
// BusClient in this process, as an ECU would see them; test/daemon/faults.test.ts checks the
// same behaviour with generous bounds.
//
//   npx tsx scripts/fault-figures.ts [--stall-cycles 5] [--hang-cycles 3] [--hang-ms 5000] [--rate-seconds 10]
//
// Runs (one daemon each):
//   camera stall   a `pipeline` camera receiving RTP/JPEG over UDP from a gst-launch sender;
//                  the sender is SIGKILLed (stall -> DEGRADED, then restarted at once -> OK),
//                  and once more left dead until the camera restarts (camera_restarting)
//   inference hang the test-only stall of src/infer/worker.ts (PERCEPTD_TEST_INFER_STALL_*):
//                  each worker thread runs a few frames, then one frame blocks it past the
//                  hang limit; every replacement does the same, so one run gives several hangs
//   health rate    vtest.avi unpaced and looping: inference on every core, health counted
//                  per second at the subscriber
// Thresholds a 2-core machine trips by itself (inference deadline, latency budget, event
// loop lag) are raised so that the fault under test is the only reason on the bus.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BusClient } from "../src/bus/client/index.ts";
import type { WireHealthState } from "../src/bus/codec.ts";
import { REPO_ROOT, freePort, freeUdpPort, killAllDaemons, removeConfig, runDaemon, writeConfig, type LogLine, type RunningDaemon } from "../src/soak/daemon-process.ts";

const VTEST = join(REPO_ROOT, ".cache/fixtures/vtest.avi");
const QUIET_HOST = { inferenceDeadlineMs: 10_000, latencyBudgetMs: 10_000, eventLoopLagMs: 1000 };

// ---------------------------------------------------------------------------------------
// Bus side

interface HealthSeen {
  /** Unix ms when this process received it (performance.timeOrigin + now: comparable with the daemon's log `time`) */
  wallMs: number;
  state: WireHealthState;
  reasons: string[];
}

interface DetectionsSeen {
  wallMs: number;
  /** the daemon's publish time (Header.wall_time_unix_ns), Unix ms */
  publishedWallMs: number;
}

const wallNow = (): number => performance.timeOrigin + performance.now();

class BusWatch {
  readonly health: HealthSeen[] = [];
  readonly detections: DetectionsSeen[] = [];
  /** health NO_NEW_DATA reports (silence past 300 ms) */
  healthStale = 0;
  private readonly client: BusClient;

  constructor(endpoint: string) {
    this.client = new BusClient({ endpoints: endpoint, topics: ["health", "detections"] });
    void this.loop();
  }

  private async loop(): Promise<void> {
    for await (const ev of this.client) {
      const wallMs = performance.timeOrigin + ev.at;
      if (ev.kind === "stale" && ev.topic === "health") this.healthStale++;
      if (ev.kind !== "message") continue;
      if (ev.topic === "health") this.health.push({ wallMs, state: ev.body.state, reasons: ev.body.reasons });
      else if (ev.topic === "detections") this.detections.push({ wallMs, publishedWallMs: Number(ev.header.wallTimeUnixNs / 1_000_000n) });
    }
  }

  close(): void {
    this.client.close();
  }
}

async function until<T>(pick: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const hit = pick();
    if (hit !== undefined) return hit;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Processes

const senders = new Set<ChildProcess>();

function startSender(port: number): ChildProcess {
  const caps = "video/x-raw,format=I420,width=320,height=240,framerate=15/1";
  const args = ["-q", "videotestsrc", "is-live=true", "pattern=ball", "!", caps, "!", "jpegenc", "quality=50", "!", "rtpjpegpay", "!", "udpsink", "host=127.0.0.1", `port=${port}`];
  const child = spawn("gst-launch-1.0", args, { stdio: "ignore" });
  senders.add(child);
  child.on("exit", () => senders.delete(child));
  return child;
}

function killEverything(): void {
  killAllDaemons();
  for (const s of senders) s.kill("SIGKILL");
}

process.once("SIGINT", () => {
  killEverything();
  process.exit(130);
});


interface Run {
  daemon: RunningDaemon;
  bus: BusWatch;
  done(): Promise<void>;
}

async function startRun(camera: Record<string, unknown>, extra: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const port = await freePort();
  const endpoint = `tcp://127.0.0.1:${port}`;
  const config = await writeConfig({
    log: { level: "info", format: "json" },
    cameras: [{ id: "cam0", source: camera, restart: { initialBackoffMs: 200, maxBackoffMs: 1000 } }],
    bus: { endpoints: [endpoint] },
    metrics: { enabled: false },
    inference: { warmupRuns: 1 },
    status: { mode: "off" },
    ...extra,
  });
  const bus = new BusWatch(endpoint);
  const daemon = runDaemon(["run", "--config", config], env);
  return {
    daemon,
    bus,
    async done() {
      await daemon.stop();
      bus.close();
      await removeConfig(config);
    },
  };
}

const logTime = (l: LogLine): number => Number(l.time);

// ---------------------------------------------------------------------------------------
// Figures

interface Sample {
  name: string;
  values: number[];
  unit: string;
  setting: string;
  note?: string;
}

const samples: Sample[] = [];

function record(name: string, unit: string, setting: string, values: number[], note?: string): void {
  samples.push({ name, unit, setting, values, note });
}

async function cameraStall(cycles: number): Promise<void> {
  const udp = await freeUdpPort();
  let sender = startSender(udp);
  const run = await startRun({ type: "pipeline", pipeline: `udpsrc port=${udp} ! application/x-rtp,media=video,clock-rate=90000,encoding-name=JPEG,payload=26 ! rtpjpegdepay ! jpegdec`, live: true }, { health: QUIET_HOST });
  const { bus } = run;
  try {
    await until(() => (bus.detections.length >= 10 && bus.health.at(-1)?.state === "STATE_OK" ? true : undefined), 60_000, "camera running");
    const toDegraded: number[] = [];
    const backToOk: number[] = [];
    for (let i = 0; i < cycles; i++) {
      await sleep(1500);
      sender.kill("SIGKILL");
      const tKill = wallNow();
      const degraded = await until(() => bus.health.find((h) => h.wallMs > tKill && h.reasons.some((r) => r.startsWith("camera_stall (cam0)"))), 10_000, "camera_stall on the bus");
      toDegraded.push(degraded.wallMs - tKill);
      sender = startSender(udp);
      const tBack = wallNow();
      const ok = await until(() => bus.health.find((h) => h.wallMs > tBack && h.state === "STATE_OK"), 20_000, "OK after the sender came back");
      backToOk.push(ok.wallMs - tBack);
    }
    record("camera source killed → DEGRADED (camera_stall) on the bus", "ms", "health.cameraStallMs 500, publishHz 10", toDegraded);
    record("camera source back (within the camera's own timeout) → OK on the bus", "ms", "new gst-launch sender; includes its start-up", backToOk);

    await sleep(1500);
    sender.kill("SIGKILL");
    const tKill = wallNow();
    const restarting = await until(() => bus.health.find((h) => h.wallMs > tKill && h.reasons.some((r) => r.startsWith("camera_restarting (cam0)"))), 30_000, "camera_restarting on the bus");
    record("camera source killed → camera_restarting on the bus", "ms", "camera restart.stallTimeoutMs 5000 (default), backoff 200 ms", [restarting.wallMs - tKill]);
    await sleep(1000);
    sender = startSender(udp);
    const tBack = wallNow();
    const ok = await until(() => bus.health.find((h) => h.wallMs > tBack && h.state === "STATE_OK"), 30_000, "OK after the restart");
    const det = await until(() => bus.detections.find((d) => d.wallMs > tBack), 30_000, "detections after the restart");
    record("camera source back after the pipeline restart → OK on the bus", "ms", "rebuilt pipeline already listening", [ok.wallMs - tBack]);
    record("camera source back after the pipeline restart → first detections", "ms", "", [det.wallMs - tBack]);
  } finally {
    sender.kill("SIGKILL");
    await run.done();
  }
}

async function inferenceHang(cycles: number, hangMs: number): Promise<void> {
  const stallMs = hangMs + 3000;
  const after = 20;
  const run = await startRun(
    { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 15 },
    { health: { ...QUIET_HOST, inferenceHangMs: hangMs, maxWorkerReplacements: 100 } },
    { PERCEPTD_TEST_INFER_STALL_MS: String(stallMs), PERCEPTD_TEST_INFER_STALL_AFTER: String(after) },
  );
  const { bus, daemon } = run;
  const toFaultLog: number[] = [];
  const toBus: number[] = [];
  const faultToWarm: number[] = [];
  const faultToOk: number[] = [];
  const faultToDetections: number[] = [];
  let faultOnBus = 0;
  let maxGap = 0;
  try {
    let from = 0;
    let firstStall = 0;
    for (let i = 0; i < cycles; i++) {
      // The hang: the first health message that is not OK after detections flowed again.
      const flowing = await until(() => bus.detections.filter((d) => d.wallMs > from)[4], 60_000, "detections");
      const notOk = await until(() => bus.health.find((h) => h.wallMs > flowing.wallMs && h.state !== "STATE_OK"), 60_000, "the hang on the bus");
      if (notOk.state !== "STATE_FAULT" || !notOk.reasons.some((r) => r.startsWith("inference_hang"))) throw new Error(`expected FAULT (inference_hang), got ${notOk.state}: ${notOk.reasons.join("; ")}`);
      // The stall starts with the request after the last result, right after its publish.
      const last = bus.detections.filter((d) => d.wallMs < notOk.wallMs).at(-1);
      if (last === undefined) throw new Error("no detection before the hang");
      const stallAt = last.publishedWallMs;
      if (firstStall === 0) firstStall = stallAt;
      const fault = await until(() => daemon.logs.find((l) => l.msg === "health: ok -> fault" && logTime(l) >= stallAt), 10_000, "FAULT in the log");
      const warm = await until(() => daemon.logs.find((l) => l.msg === "inference worker shared: replacement succeeded" && logTime(l) >= logTime(fault)), 60_000, "replacement warm");
      const ok = await until(() => bus.health.find((h) => h.wallMs > notOk.wallMs && h.state === "STATE_OK"), 60_000, "OK after the replacement");
      const det = await until(() => bus.detections.find((d) => d.wallMs > notOk.wallMs), 60_000, "detections after the replacement");
      toFaultLog.push(logTime(fault) - stallAt);
      toBus.push(notOk.wallMs - stallAt);
      faultToWarm.push(logTime(warm) - logTime(fault));
      faultToOk.push(ok.wallMs - logTime(fault));
      faultToDetections.push(det.wallMs - logTime(fault));
      from = ok.wallMs;
    }
    faultOnBus = bus.health.filter((h) => h.state === "STATE_FAULT").length;
    const times = bus.health.filter((h) => h.wallMs >= firstStall && h.wallMs <= from).map((h) => h.wallMs);
    for (let i = 1; i < times.length; i++) maxGap = Math.max(maxGap, times[i] - times[i - 1]);
  } finally {
    await run.done();
  }
  const setting = `health.inferenceHangMs ${hangMs}, stall ${stallMs} ms after ${after} frames`;
  record("inference hang → FAULT (inference_hang), daemon log", "ms", setting, toFaultLog, "log times have 1 ms resolution");
  record("inference hang → FAULT (inference_hang) on the bus", "ms", setting, toBus, `${faultOnBus} STATE_FAULT messages seen on the bus (FAULT holds until the replacement is warm)`);
  record("FAULT → replacement worker warm (log)", "ms", "warmupRuns 1", faultToWarm);
  record("FAULT → health OK on the bus", "ms", "", faultToOk);
  record("FAULT → detections resume on the bus", "ms", "", faultToDetections);
  record("longest gap between health messages from the first hang to the last recovery", "ms", "health staleAfterMs 300", [maxGap]);
}

async function healthRate(seconds: number): Promise<void> {
  if (!existsSync(VTEST)) throw new Error(`${VTEST} is missing: run npm run setup`);
  const run = await startRun({ type: "file", path: VTEST, realtime: false, loop: true }, { health: QUIET_HOST });
  const { bus, daemon } = run;
  try {
    await until(() => (bus.detections.length >= 10 ? true : undefined), 60_000, "detections");
    await sleep(2000);
    const pid = daemon.child.pid ?? 0;
    const cpu0 = await cpuSeconds(pid);
    const stale0 = bus.healthStale;
    const t0 = wallNow();
    await sleep(seconds * 1000);
    const t1 = wallNow();
    const cores = ((await cpuSeconds(pid)) - cpu0) / ((t1 - t0) / 1000);
    const inside = bus.health.filter((h) => h.wallMs >= t0 && h.wallMs < t1).map((h) => h.wallMs);
    const perSecond = Array.from({ length: seconds }, (_, i) => inside.filter((t) => t >= t0 + i * 1000 && t < t0 + (i + 1) * 1000).length);
    let maxGap = 0;
    for (let i = 1; i < inside.length; i++) maxGap = Math.max(maxGap, inside[i] - inside[i - 1]);
    const results = bus.detections.filter((d) => d.wallMs >= t0 && d.wallMs < t1).length / seconds;
    const setting = `publishHz 10, vtest.avi unpaced, ${seconds} s; daemon used ${cores.toFixed(2)} of ${availableParallelism()} cores, ${results.toFixed(1)} results/s`;
    record("health messages per second at the subscriber under saturated inference", "msg/s", setting, perSecond);
    record("longest gap between health messages in that window", "ms", `health staleAfterMs 300; NO_NEW_DATA reports: ${bus.healthStale - stale0}`, [maxGap]);
  } finally {
    await run.done();
  }
}

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, USER_HZ 100
}

// ---------------------------------------------------------------------------------------

function summary(s: Sample): string {
  const v = [...s.values].sort((a, b) => a - b);
  const fmt = (x: number): string => (s.unit === "msg/s" ? String(x) : x.toFixed(0));
  if (v.length === 1) return `${fmt(v[0])} ${s.unit}`;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  if (s.unit === "msg/s") return `min ${v[0]}, mean ${mean.toFixed(1)}, max ${v.at(-1)} ${s.unit}`;
  return `median ${fmt(v[Math.floor(v.length / 2)])} ${s.unit} (min ${fmt(v[0])}, max ${fmt(v.at(-1) ?? 0)})`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "stall-cycles": { type: "string", default: "5" },
      "hang-cycles": { type: "string", default: "3" },
      "hang-ms": { type: "string", default: "5000" },
      "rate-seconds": { type: "string", default: "10" },
    },
  });
  const num = (name: keyof typeof values): number => {
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${String(values[name])}`);
    return v;
  };
  const command = ["npx tsx scripts/fault-figures.ts", ...process.argv.slice(2)].join(" ");
  const load = loadavg().map((l) => l.toFixed(2)).join(" ");
  process.stderr.write("camera stall...\n");
  await cameraStall(num("stall-cycles"));
  process.stderr.write("inference hang...\n");
  await inferenceHang(num("hang-cycles"), num("hang-ms"));
  process.stderr.write("health rate under load...\n");
  await healthRate(num("rate-seconds"));

  const lines = [
    `Command: \`${command}\` (node ${process.version}, ${availableParallelism()} cores, load average at start ${load}, ${new Date().toISOString()})`,
    "",
    "| What the subscriber sees | Measured | Setting | n |",
    "| --- | --- | --- | --- |",
    ...samples.map((s) => `| ${s.name} | ${summary(s)}${s.note ? `; ${s.note}` : ""} | ${s.setting} | ${s.values.length} |`),
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

main().then(
  () => killEverything(),
  (err: unknown) => {
    killEverything();
    process.stderr.write(`fault-figures: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
