// `perceptd soak`: the daemon as a child process with the given config, and beside it the
// soak's subscriber (every message checked), the sampler (metrics, memory, CPU,
// temperatures) and the fault plan; at the end windows, budgets, and soak.json,
// windows.csv and report.html in the output folder.
//
// Timeline: spawn -> READY=1 (the daemon's declared readiness, daemon-process.ts) -> the
// config's soak.warmupS settle -> measurement for --duration -> SIGTERM. Warm-up is reported
// on its own and left out of every window and budget. The soak ends early when the daemon
// exits (a replay that ended, a crash), when its subscriber fails, or on SIGINT; the report
// is written in every case and the verdict says how it ended.
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { isAbsolute, join, relative, resolve } from "node:path";
import type { Config } from "../config/schema.ts";
import { FAULT_DIR_ENV, faultTriggerName } from "../util/fault-trigger.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { compareWithBaseline, failed, judge, rssSlope, type SoakEnd } from "./budgets.ts";
import { runDaemon, type RunningDaemon } from "./daemon-process.ts";
import { faultOutcome, type FaultOutcome, type PlannedFault } from "./fault-plan.ts";
import { renderReport } from "./report-html.ts";
import { healthPoints, latencyBins, samplePoints, SOAK_SCHEMA, type SoakResult } from "./result.ts";
import { Sampler } from "./sampler.ts";
import { percentiles } from "./stats.ts";
import { CheckingSubscriber, PausableSubscriber } from "./subscriber.ts";
import { soakVersions } from "./versions.ts";
import { computeWindows, nearestSample, type SoakRecording } from "./windows.ts";
import { windowsCsv } from "./windows-csv.ts";

export const SOAK_FILES = { json: "soak.json", csv: "windows.csv", html: "report.html" } as const;

/** Exit status when the soak was interrupted (SIGINT): neither a pass nor a failure of the daemon. */
export const EXIT_INTERRUPTED = 130;

export interface SoakProgress {
  phase: "starting" | "warm-up" | "measuring" | "stopping";
  /** ms since the measurement started (negative during warm-up) */
  elapsedMs: number;
  durationMs: number;
  window: number;
  windows: number;
  /** e2e p99 of the last 10 s, ms */
  recentP99Ms: number | null;
  messages: number;
  gaps: number;
  health: string | null;
  /** a milestone worth a line of its own */
  event?: string;
}

export interface SoakOptions {
  configPath: string;
  config: Config;
  durationMs: number;
  windowMs: number;
  outDir: string;
  baseline?: SoakResult & { dir: string };
  faults?: PlannedFault[];
  /** the command line, for the report */
  command: string;
  onProgress?: (p: SoakProgress) => void;
  /** aborted: end the soak now and write what it has (SIGINT) */
  signal?: AbortSignal;
  /** extra environment for the daemon */
  env?: NodeJS.ProcessEnv;
  /** extra arguments for `perceptd run` (the --set overrides the config was loaded with) */
  extraArgs?: string[];
}

export interface SoakOutcome {
  result: SoakResult;
  exitCode: number;
  files: string[];
}

/** Resolves after ms, or at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((r) => {
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      r();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Reads an earlier soak's soak.json for --baseline; throws naming the folder. */
export async function readBaseline(dir: string): Promise<SoakResult & { dir: string }> {
  const path = join(dir, SOAK_FILES.json);
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new Error(`--baseline ${dir}: cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof doc !== "object" || doc === null || (doc as { schema?: unknown }).schema !== SOAK_SCHEMA)
    throw new Error(`--baseline ${dir}: ${path} is not a perceptd soak result (expected "schema": "${SOAK_SCHEMA}")`);
  return { ...(doc as SoakResult), dir: resolve(dir) };
}

class Soak {
  private daemon!: RunningDaemon;
  private sub: CheckingSubscriber | null = null;
  private paused: PausableSubscriber | null = null;
  private sampler: Sampler | null = null;
  private faultDir: string | null = null;
  private readonly faultStarts: { fault: PlannedFault; at: number; missed?: () => number }[] = [];
  private spawnedAt = 0;
  private readyAt: number | null = null;
  private t0 = 0;
  private exitAt: number | null = null;
  private exitCode: number | string | null = null;

  constructor(private readonly o: SoakOptions) {}

  async run(): Promise<SoakOutcome> {
    const o = this.o;
    await mkdir(o.outDir, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...o.env };
    if (o.faults?.some((f) => f.action !== "subscriber-pause")) {
      this.faultDir = await mkdtemp(join(tmpdir(), "perceptd-soak-faults-"));
      env[FAULT_DIR_ENV] = this.faultDir;
    }
    const startedAt = new Date().toISOString();
    this.spawnedAt = performance.now();
    // Its own process group: a Ctrl-C at the terminal reaches the soak, which stops the
    // daemon itself, and the daemon's own stop is not mistaken for the end of its replay.
    this.daemon = runDaemon(["run", "--config", o.configPath, ...(o.extraArgs ?? [])], env, { ownProcessGroup: true });
    void this.daemon.exited.then((code) => {
      this.exitAt = performance.now();
      this.exitCode = code;
    });
    this.progress("starting", "starting the daemon");
    let end: SoakEnd;
    try {
      const ready = await Promise.race([this.daemon.ready(), abortPromise(o.signal)]);
      if (ready === "aborted") {
        await this.daemon.stop(10_000);
        throw new Error("interrupted before the daemon was ready; nothing measured");
      }
      this.readyAt = ready.at;
      this.progress("warm-up", `daemon ready after ${((ready.at - this.spawnedAt) / 1000).toFixed(1)} s (bus ${ready.endpoints.join(", ")}, metrics ${ready.metricsUrl ?? "off"})`);
      const curve = undefined; // a CURVE bus needs client keys the soak does not have yet; see the README
      if (o.config.bus.curve.enabled) throw new Error("the config's bus uses CURVE; perceptd soak subscribes without keys, so it cannot soak this config (turn bus.curve off for the bench)");
      // One endpoint each: a subscriber connected to two endpoints of one publisher gets every message twice.
      this.sub = new CheckingSubscriber({ endpoints: [ready.endpoints[0]], curve });
      // The paused one on ipc where the daemon binds one: a unix socket fills in seconds, loopback TCP's buffers take minutes.
      const pauseAt = ready.endpoints.find((e) => e.startsWith("ipc://")) ?? ready.endpoints[0];
      if (o.faults?.some((f) => f.action === "subscriber-pause")) this.paused = new PausableSubscriber([pauseAt], curve);
      this.sampler = new Sampler({ pid: this.daemon.child.pid ?? 0, metricsUrl: ready.metricsUrl, intervalMs: o.config.soak.sampleIntervalMs });
      this.sampler.start();
      end = (await this.settle()) ?? (await this.measure());
    } catch (e) {
      await this.shutdown();
      throw e;
    }
    const tEnd = Math.min(performance.now(), this.exitAt ?? Infinity);
    this.progress("stopping", `stopping the daemon (${describeEndShort(end)})`);
    await this.shutdown();
    return this.report(end, tEnd, startedAt);
  }

  /** The warm-up after READY=1; returns how the soak ended if it ended inside it. */
  private async settle(): Promise<SoakEnd | null> {
    const until = (this.readyAt ?? performance.now()) + this.o.config.soak.warmupS * 1000;
    while (performance.now() < until) {
      const end = this.ended();
      if (end) return end;
      this.progress("warm-up");
      // Clamped: time passes between the loop test and here, and Node 24 warns on a negative delay.
      await sleep(Math.max(1, Math.min(1000, until - performance.now())), this.o.signal);
    }
    this.t0 = performance.now();
    return null;
  }

  private ended(): SoakEnd | null {
    if (this.o.signal?.aborted) return { kind: "interrupted", signal: "SIGINT" };
    if (this.exitCode !== null) return this.exitCode === 0 ? { kind: "replay-ended", code: 0 } : { kind: "daemon-exited", code: this.exitCode };
    if (this.sub?.failure) return { kind: "subscriber-failed", error: this.sub.failure };
    return null;
  }

  private async measure(): Promise<SoakEnd> {
    const o = this.o;
    this.t0 = this.t0 || performance.now();
    void this.sampler?.sampleNow();
    this.progress("measuring", `measuring for ${o.durationMs / 1000} s in windows of ${o.windowMs / 1000} s`);
    const faults = [...(o.faults ?? [])];
    let nextBoundary = this.t0 + o.windowMs;
    let lastLine = 0;
    for (;;) {
      const now = performance.now();
      const end = this.ended();
      if (end) return end;
      if (now >= this.t0 + o.durationMs) return { kind: "completed" };
      while (faults.length > 0 && now >= this.t0 + faults[0].atMs) await this.inject(faults.shift() as PlannedFault);
      if (now >= nextBoundary) {
        void this.sampler?.sampleNow();
        nextBoundary += o.windowMs;
      }
      if (now - lastLine >= 1000) {
        this.progress("measuring");
        lastLine = now;
      }
      const wake = Math.min(this.t0 + o.durationMs, nextBoundary, faults.length > 0 ? this.t0 + faults[0].atMs : Infinity, now + 1000);
      await sleep(Math.max(1, wake - now), o.signal);
    }
  }

  private async inject(f: PlannedFault): Promise<void> {
    const at = performance.now();
    this.progress("measuring", `fault: ${f.action}${f.camera ? ` (${f.camera})` : ""} for ${f.forMs / 1000} s`);
    if (f.action === "subscriber-pause") {
      const p = this.paused;
      p?.pause();
      setTimeout(() => p?.resume(), f.forMs).unref();
      this.faultStarts.push({ fault: f, at, missed: () => p?.missedSinceResume ?? 0 });
      return;
    }
    if (this.faultDir === null) throw new Error("internal: fault folder missing");
    const name = f.action === "inference-hang" ? faultTriggerName.inferenceHang : faultTriggerName.cameraStall(f.camera ?? "");
    await writeFileAtomic(join(this.faultDir, name), String(f.forMs));
    this.faultStarts.push({ fault: f, at });
  }

  private async shutdown(): Promise<void> {
    await this.sampler?.sampleNow();
    await this.sampler?.stop();
    if (this.daemon) await this.daemon.stop(10_000);
    await this.sub?.close();
    await this.paused?.close();
    if (this.faultDir !== null) await rm(this.faultDir, { recursive: true, force: true });
  }

  private progress(phase: SoakProgress["phase"], event?: string): void {
    const o = this.o;
    if (!o.onProgress) return;
    const now = performance.now();
    const measuring = phase === "measuring" && this.t0 > 0;
    const d = this.sub?.detections;
    let recent: number | null = null;
    if (d && d.at.length > 0) {
      const from = now - 10_000;
      const xs: number[] = [];
      for (let i = d.at.length - 1; i >= 0 && d.at[i] >= from; i--) xs.push(d.e2eMs[i]);
      recent = percentiles(xs)?.p99 ?? null;
    }
    o.onProgress({
      phase,
      elapsedMs: measuring ? now - this.t0 : this.readyAt === null ? 0 : now - (this.readyAt + o.config.soak.warmupS * 1000),
      durationMs: o.durationMs,
      window: measuring ? Math.floor((now - this.t0) / o.windowMs) + 1 : 0,
      windows: Math.max(1, Math.round(o.durationMs / o.windowMs)),
      recentP99Ms: recent,
      messages: this.sub?.messages ?? 0,
      gaps: this.sub?.gaps ?? 0,
      health: this.sub?.health.at(-1)?.state.replace(/^STATE_/, "") ?? null,
      event,
    });
  }

  private async report(end: SoakEnd, tEnd: number, startedAt: string): Promise<SoakOutcome> {
    const o = this.o;
    const sub = this.sub as CheckingSubscriber;
    const samples = this.sampler?.samples ?? [];
    const t0 = this.t0 || tEnd;
    const rec: SoakRecording = {
      t0,
      tEnd,
      windowMs: o.windowMs,
      detections: sub.detections,
      health: sub.health,
      alerts: sub.alerts,
      contract: sub.contract,
      arrivals: sub.arrivals,
      samples,
      alertFlapMs: o.config.soak.alertFlapMs,
    };
    const windows = computeWindows(rec);
    const inSpan = <T extends { at: number }>(xs: readonly T[]): T[] => xs.filter((x) => x.at >= t0 && x.at < tEnd);
    const contract = inSpan(sub.contract);
    const sum = (k: string): number => contract.filter((c) => c.kind === k).reduce((a, c) => a + c.count, 0);
    const health = inSpan(sub.health);
    const m0 = nearestSample(samples, t0)?.metrics ?? null;
    const m1 = nearestSample(samples, tEnd)?.metrics ?? null;
    const droppedOf = (m: NonNullable<typeof m0>): number => Object.entries(m.dropped).reduce((a, [k, v]) => (k === "shutdown" ? a : a + v), 0);
    const faults: FaultOutcome[] = this.faultStarts.map((s, i) => ({
      ...faultOutcome(s.fault, s.at, sub.health, this.faultStarts[i + 1]?.at ?? tEnd),
      ...(s.missed ? { pausedSubscriberMissed: s.missed() } : {}),
    }));
    const measuredSamples = samples.filter((s) => s.at >= t0 && s.at <= tEnd + 1);
    let results = judge({
      budgets: o.config.soak,
      windows,
      samples: measuredSamples,
      t0,
      durationMs: o.durationMs,
      measuredMs: tEnd - t0,
      end,
      faults,
      totals: {
        gaps: sum("gap"),
        errors: sum("error"),
        repeated: sum("repeated"),
        healthMessages: health.length,
        healthOk: health.filter((h) => h.state === "STATE_OK").length,
        ingested: m0 && m1 ? m1.framesIngested - m0.framesIngested : null,
        dropped: m0 && m1 ? droppedOf(m1) - droppedOf(m0) : null,
      },
    });
    if (o.baseline) results = compareWithBaseline(results, o.baseline.verdict.results);
    const fit = rssSlope(measuredSamples, t0);
    const warm = { at: [] as number[], e2e: [] as number[] };
    sub.detections.at.forEach((at, i) => {
      if (at < t0) warm.e2e.push(sub.detections.e2eMs[i]);
    });
    const all = sub.detections.e2eMs.filter((_, i) => sub.detections.at[i] >= t0 && sub.detections.at[i] < tEnd);
    const e2eAll = percentiles(all);
    const provider = samples.map((s) => s.metrics?.executionProvider).find((p) => p != null) ?? null;
    const loads = measuredSamples.map((s) => s.loadavg1);
    const points = samplePoints(rec);
    const soakCpu = points.map((p) => p.soakCpuPct).filter((v): v is number => v !== null);
    const result: SoakResult = {
      schema: SOAK_SCHEMA,
      command: o.command,
      configPath: displayPath(o.configPath),
      startedAt,
      durationS: o.durationMs / 1000,
      measuredS: (tEnd - t0) / 1000,
      windowS: o.windowMs / 1000,
      end,
      warmup: {
        readyAfterS: this.readyAt === null ? null : (this.readyAt - this.spawnedAt) / 1000,
        settleS: o.config.soak.warmupS,
        messages: [...sub.arrivals.detections, ...sub.arrivals.health, ...sub.arrivals.alerts].filter((a) => a < t0).length,
        e2eP99Ms: percentiles(warm.e2e)?.p99 ?? null,
      },
      versions: await soakVersions(o.config.model.name, o.config.model.manifest, provider),
      budgets: o.config.soak,
      verdict: { pass: failed(results).length === 0, results },
      windows,
      faults,
      totals: {
        messages: { detections: inSpan(sub.arrivals.detections.map((at) => ({ at }))).length, health: health.length, alerts: inSpan(sub.arrivals.alerts.map((at) => ({ at }))).length },
        detections: all.length,
        e2e: e2eAll ? { p50: e2eAll.p50, p99: e2eAll.p99, max: e2eAll.max } : null,
      },
      conditions: {
        loadavg1Mean: loads.length > 0 ? loads.reduce((a, b) => a + b, 0) / loads.length : null,
        soakCpuPctMean: soakCpu.length > 0 ? soakCpu.reduce((a, b) => a + b, 0) / soakCpu.length : null,
        tegrastats: this.sampler?.hasTegrastats ?? false,
        thermalZones: Object.keys(samples.at(-1)?.thermalC ?? {}).length,
        cpuCores: cpus().length,
      },
      series: { latency: latencyBins(rec), samples: points, health: healthPoints(rec), rssFit: fit ? { mbPerHour: fit.mbPerHour, interceptMB: fit.intercept } : null },
      ...(o.baseline ? { baseline: { dir: o.baseline.dir, startedAt: o.baseline.startedAt, model: o.baseline.versions.model.name, commit: o.baseline.versions.commit } } : {}),
    };
    const files = [join(o.outDir, SOAK_FILES.json), join(o.outDir, SOAK_FILES.csv), join(o.outDir, SOAK_FILES.html)];
    await writeFileAtomic(files[0], JSON.stringify(result, null, 1) + "\n");
    await writeFileAtomic(files[1], windowsCsv(windows));
    await writeFileAtomic(files[2], renderReport(result, o.baseline ?? null));
    const exitCode = end.kind === "interrupted" ? EXIT_INTERRUPTED : result.verdict.pass ? 0 : 1;
    return { result, exitCode, files };
  }
}

/** A path as people typed it: relative to the working folder when it lies inside it. */
function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}

function abortPromise(signal: AbortSignal | undefined): Promise<"aborted"> {
  return new Promise((r) => {
    if (signal?.aborted) r("aborted");
    signal?.addEventListener("abort", () => r("aborted"), { once: true });
  });
}

function describeEndShort(end: SoakEnd): string {
  switch (end.kind) {
    case "completed":
      return "duration reached";
    case "interrupted":
      return `${end.signal}: ending early, writing the report`;
    case "replay-ended":
      return "the replay ended before the duration";
    case "daemon-exited":
      return `the daemon exited (${end.code})`;
    case "subscriber-failed":
      return `the subscriber failed: ${end.error}`;
  }
}

export function runSoak(opts: SoakOptions): Promise<SoakOutcome> {
  return new Soak(opts).run();
}
