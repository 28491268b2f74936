// Faults, end to end: the real daemon as a child process (harness.ts), real GStreamer
// sources, real ZeroMQ sockets, and for each fault what a consumer on the bus (an ECU using
// BusClient) sees, in what order. These run on a 2-core machine next to other work, so they
// assert states, orders and counts (health in sequence, no gap, FAULT before OK), never how
// fast: timeouts are guards against a hang only. How fast is measured by
// scripts/fault-figures.ts and reported in docs/health.md.
//
// Health thresholds that a 2-core machine trips on its own (100 ms inference deadline,
// 200 ms latency budget, 100 ms event-loop lag) are raised in every config here, so that the
// reasons on the bus are the injected fault's and "back to OK" can be asserted. The fault
// thresholds themselves (cameraStallMs, inferenceHangMs) stay at or near their defaults.
//
// Checked elsewhere, not repeated: a frame with a bad CRC (ERROR) and a skipped counter
// (WRONG_SEQUENCE) at the client, test/bus/client.test.ts; here only real gaps (a subscriber
// past its high-water mark) are looked at.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BusClient, type BusClientOptions } from "../../src/bus/client/index.ts";
import type { CameraHealth, WireHealthState } from "../../src/bus/codec.ts";
import { baseConfig, freePort, freeUdpPort, removeConfig, runDaemon, until, VTEST, writeConfig, type LogLine, type RunningDaemon } from "./harness.ts";
import { PHASE_LOG } from "../../src/daemon/log-messages.ts";

// ---------------------------------------------------------------------------------------
// What a subscriber saw

interface HealthSeen {
  /** performance.now() of this process when the client got it */
  at: number;
  state: WireHealthState;
  reasons: string[];
  cameras: CameraHealth[];
  e2e: string;
}

interface DetectionsSeen {
  at: number;
  seq: number;
  valid: boolean;
  e2e: string;
}

/** A BusClient read in the background, keeping everything it saw with the time it saw it. */
class BusWatch {
  readonly health: HealthSeen[] = [];
  readonly detections: DetectionsSeen[] = [];
  /** NO_NEW_DATA reports: topic and how long it had been silent */
  readonly stale: { at: number; topic: string; silentForMs: number }[] = [];
  readonly errors: string[] = [];
  readonly opened = performance.now();
  private readonly client: BusClient;

  constructor(opts: BusClientOptions) {
    this.client = new BusClient(opts);
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for await (const ev of this.client) {
        if (ev.kind === "stale") this.stale.push({ at: ev.at, topic: ev.topic, silentForMs: ev.silentForMs });
        else if (ev.kind === "error") this.errors.push(`${ev.topic}: ${ev.detail}`);
        else if (ev.topic === "health")
          this.health.push({ at: ev.at, state: ev.body.state, reasons: ev.body.reasons, cameras: ev.body.cameras, e2e: ev.e2e });
        else if (ev.topic === "detections") this.detections.push({ at: ev.at, seq: Number(ev.header.frameSeq), valid: ev.header.valid, e2e: ev.e2e });
      }
    } catch (e) {
      this.errors.push(`receive loop: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Health messages received in [from, to). */
  healthBetween(from: number, to: number): HealthSeen[] {
    return this.health.filter((h) => h.at >= from && h.at < to);
  }

  lastHealth(): string {
    const h = this.health.at(-1);
    return h === undefined ? "no health message yet" : `${h.state} [${h.reasons.join("; ")}]`;
  }

  close(): void {
    this.client.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const hasReason = (h: HealthSeen, prefix: string): boolean => h.reasons.some((r) => r.startsWith(prefix));

// ---------------------------------------------------------------------------------------
// Processes and files, cleaned up after each test

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * Relaxed thresholds for conditions a busy 2-core machine raises by itself (see the top);
 * the camera stall limit too (a live 15 fps testsrc was seen to skip 516 ms on a loaded
 * host), except in the camera stall test, which uses the default.
 */
const QUIET_HOST = { inferenceDeadlineMs: 10_000, latencyBudgetMs: 10_000, eventLoopLagMs: 1000, cameraStallMs: 3000 };

async function startDaemon(config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<RunningDaemon> {
  const path = await writeConfig(config);
  const d = runDaemon(["run", "--config", path], env);
  cleanups.push(() => removeConfig(path));
  cleanups.push(() => d.kill());
  return d;
}

function watch(endpoint: string | string[], opts: Partial<BusClientOptions> = {}): BusWatch {
  const w = new BusWatch({ endpoints: endpoint, topics: ["health", "detections"], ...opts });
  cleanups.push(() => w.close());
  return w;
}

const logHas = (d: RunningDaemon, pred: (l: LogLine) => boolean): boolean => d.logs.some(pred);
const msgIs = (m: string) => (l: LogLine) => l.msg === m;

const gstLaunch = spawnSync("gst-launch-1.0", ["--version"]).status === 0;

/** A camera on the network: live test video as RTP/JPEG over UDP, from a separate gst-launch process. */
function startSender(port: number): ChildProcess {
  const caps = "video/x-raw,format=I420,width=320,height=240,framerate=15/1";
  const args = ["-q", "videotestsrc", "is-live=true", "pattern=ball", "!", caps, "!", "jpegenc", "quality=50", "!", "rtpjpegpay", "!", "udpsink", "host=127.0.0.1", `port=${port}`];
  const child = spawn("gst-launch-1.0", args, { stdio: "ignore" });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return child;
}

function rtpCamera(port: number): Record<string, unknown> {
  return {
    type: "pipeline",
    pipeline: `udpsrc port=${port} ! application/x-rtp,media=video,clock-rate=90000,encoding-name=JPEG,payload=26 ! rtpjpegdepay ! jpegdec`,
    live: true,
  };
}

// ---------------------------------------------------------------------------------------

describe("faults, as a bus subscriber sees them", () => {
  it.skipIf(!gstLaunch)(
    "camera source killed mid-stream: DEGRADED (camera_stall), then camera_restarting, detections stop while health keeps coming in sequence, OK again once it is back",
    async () => {
      const udp = await freeUdpPort();
      const port = await freePort();
      let sender = startSender(udp);
      const bus = watch(`tcp://127.0.0.1:${port}`);
      const config = baseConfig(port, rtpCamera(udp), { health: { ...QUIET_HOST, cameraStallMs: 500 } });
      // Short backoff: the rebuilt pipeline is listening again 200-300 ms after the camera gives up.
      (config.cameras as Record<string, unknown>[])[0].restart = { initialBackoffMs: 200, maxBackoffMs: 1000, stallTimeoutMs: 2000 };
      const d = await startDaemon(config);

      await until(() => (bus.detections.length >= 10 && bus.health.at(-1)?.state === "STATE_OK" ? true : undefined), 60_000, () => `running and OK; ${bus.lastHealth()}`);

      sender.kill("SIGKILL");
      const tKill = performance.now();
      const degraded = await until(() => bus.health.find((h) => h.at > tKill && h.state === "STATE_DEGRADED"), 10_000, () => `DEGRADED after the kill; ${bus.lastHealth()}`);
      expect(degraded.reasons.some((r) => r.startsWith("camera_stall (cam0): no frame for")), degraded.reasons.join("; ")).toBe(true);

      // The camera's own stall timeout (restart.stallTimeoutMs) ends the pipeline and restarts it.
      const restarting = await until(() => bus.health.find((h) => h.at > tKill && hasReason(h, "camera_restarting (cam0)")), 20_000, () => `camera_restarting; ${bus.lastHealth()}`);
      expect(restarting.state).toBe("STATE_DEGRADED");
      expect(bus.health.indexOf(restarting), "camera_restarting comes after camera_stall").toBeGreaterThan(bus.health.indexOf(degraded));
      // The pipeline was ended by the camera's own stall timeout (restart.stallTimeoutMs), not by anything sooner.
      expect(logHas(d, (l) => l.msg === "camera cam0: error" && /no frame for 2000 ms/.test(String((l.event as { message?: string }).message)))).toBe(true);
      // A restarted pipeline with nothing to receive: health keeps coming, still DEGRADED, and no detections.
      const restartingAt = bus.health.indexOf(restarting);
      await until(() => (bus.health.length >= restartingAt + 10 ? true : undefined), 30_000, () => `health while the source is gone; ${bus.lastHealth()}`);

      const tBack = performance.now();
      expect(bus.detections.filter((m) => m.at > restarting.at && m.at < tBack), "detections once the pipeline was torn down").toEqual([]);
      for (const h of bus.healthBetween(degraded.at, tBack)) expect(h.state, "state while the source is gone").toBe("STATE_DEGRADED");

      sender = startSender(udp);
      const ok = await until(() => bus.health.find((h) => h.at > tBack && h.state === "STATE_OK"), 20_000, () => `OK after the source came back; ${bus.lastHealth()}`);
      const resumed = await until(() => bus.detections.find((m) => m.at > tBack), 20_000, () => "detections after the source came back");
      expect(ok.reasons).toEqual([]);
      expect(ok.cameras[0]).toMatchObject({ cameraId: "cam0", state: "STATE_RUNNING" });
      expect(ok.cameras[0].restarts, "camera restarts reported in health").toBeGreaterThanOrEqual(1);
      expect(resumed.valid).toBe(true);
      // No health message was lost on the way at any point (a gap would be WRONG_SEQUENCE).
      expect(bus.health.filter((h) => h.e2e === "WRONG_SEQUENCE")).toEqual([]);
      expect(bus.errors).toEqual([]);
      expect(await d.stop()).toBe(0);
    },
  );

  it.skipIf(!existsSync(VTEST))(
    "truncated video (non-looping): played to the cut, ends with exit 0; unreadable video: camera_failed (FAULT) on the bus, exit 66",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "perceptd-faults-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const whole = await readFile(VTEST);
      const truncated = join(dir, "truncated.avi");
      await writeFile(truncated, whole.subarray(0, 2_000_000)); // about the first 190 of 795 frames
      const garbage = join(dir, "garbage.avi");
      const bytes = new Uint8Array(200_000);
      let x = 12345;
      for (let i = 0; i < bytes.length; i++) bytes[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      await writeFile(garbage, bytes);

      // Truncated: what is there is played, then the cut reads as the end of the file.
      {
        const port = await freePort();
        const bus = watch(`tcp://127.0.0.1:${port}`);
        const d = await startDaemon(baseConfig(port, { type: "file", path: truncated, realtime: false }, { health: QUIET_HOST }));
        expect(await d.exited, `exit code; stderr: ${d.stderr()}`).toBe(0);
        await until(() => (bus.health.at(-1)?.state === "STATE_STOPPING" ? true : undefined), 10_000, () => `the last health message; ${bus.lastHealth()}`);
        expect(bus.detections.length, "detections from the frames before the cut").toBeGreaterThan(0);
        const last = bus.health.at(-1);
        expect(last, "last health message").toMatchObject({ state: "STATE_STOPPING", reasons: [] });
        expect(last?.cameras[0].state, "camera state in the last health message").toBe("STATE_ENDED");
        const ingested = Number(last?.cameras[0].framesIngested ?? 0);
        expect(ingested, "frames decoded before the cut").toBeGreaterThan(100);
        expect(ingested, "frames decoded before the cut").toBeLessThan(795);
        // Unpaced replay: decoding waits for inference (backpressure), and the end of the
        // stream lets the last frames finish: every decoded frame is processed.
        expect(Number(last?.cameras[0].framesProcessed), "frames processed of those decoded").toBe(ingested);
        expect(logHas(d, (l) => l.msg === "camera cam0: ended" && (l.event as { reason?: string }).reason === "eos")).toBe(true);
        expect(logHas(d, msgIs("camera cam0: error")), "the cut is not reported as an error").toBe(false);
        // ...but it is reported: the header declares 795 frames (79.5 s).
        const cut = d.logs.filter((l) => (l.event as { type?: string } | undefined)?.type === "truncated");
        expect(cut.length, "one warning for the cut").toBe(1);
        expect(cut[0].level).toBe("warn");
        expect(cut[0].event).toMatchObject({ camera: "cam0", path: truncated, frames: ingested, declaredS: 79.5 });
        expect(String(cut[0].msg)).toMatch(/ended after \d+\.\d s \(\d+ frames\) of the 79\.5 s its container declares; the file is cut short$/);
        expect(logHas(d, (l) => l.msg === PHASE_LOG.stopping && l.reason === "end-of-stream")).toBe(true);
      }

      // Unreadable: the camera fails at once; a replay is not restarted, so the failure is a
      // FAULT on the bus (camera_failed, with GStreamer's words), the last STOPPING message
      // still names it, and the process exits 66 (EX_NOINPUT): the run did not do its job.
      {
        const port = await freePort();
        const bus = watch(`tcp://127.0.0.1:${port}`);
        const d = await startDaemon(baseConfig(port, { type: "file", path: garbage, realtime: false }, { health: QUIET_HOST }));
        expect(await d.exited, `exit code; stderr: ${d.stderr()}`).toBe(66);
        await until(() => (bus.health.at(-1)?.state === "STATE_STOPPING" ? true : undefined), 10_000, () => `the last health message; ${bus.lastHealth()}`);
        const err = d.logs.find(msgIs("camera cam0: error"));
        expect(err?.level).toBe("warn");
        expect(String((err?.event as { message?: string } | undefined)?.message)).toMatch(/Could not determine type of stream/);
        expect(logHas(d, (l) => l.msg === "camera cam0: ended" && (l.event as { reason?: string }).reason === "error")).toBe(true);
        expect(logHas(d, (l) => l.msg === PHASE_LOG.stopping && l.reason === "source-failed")).toBe(true);
        expect(bus.detections).toEqual([]);
        const fault = bus.health.find((h) => h.state === "STATE_FAULT");
        expect(fault?.reasons.some((r) => /^camera_failed \(cam0\): .*Could not determine type of stream/.test(r)), `FAULT on the bus; ${bus.lastHealth()}`).toBe(true);
        const last = bus.health.at(-1);
        expect(last?.state).toBe("STATE_STOPPING");
        expect(last?.reasons.some((r) => r.startsWith("camera_failed (cam0)")), "the last STOPPING message says why").toBe(true);
        expect(last?.cameras[0].state).toBe("STATE_ENDED");
        expect(d.stderr()).not.toMatch(/Segmentation|Aborted|core dumped/);
      }
    },
  );

  it.skipIf(!existsSync(VTEST) || !gstLaunch)("a truncated file on a loop: warned once, counted on /metrics (perceptd_replay_truncated_total); a whole file: neither", async () => {
    const dir = await mkdtemp(join(tmpdir(), "perceptd-faults-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const truncated = join(dir, "truncated.avi");
    await writeFile(truncated, (await readFile(VTEST)).subarray(0, 500_000)); // about 45 of 795 frames
    const port = await freePort();
    const d = await startDaemon(baseConfig(port, { type: "file", path: truncated, realtime: false, loop: true }, { health: QUIET_HOST }));
    const ready = await d.ready();
    await d.waitForLog((l) => l.msg === "camera cam0: loop", 60_000);
    const metric = async (): Promise<string | undefined> => {
      const text = await (await fetch(`${ready.metricsUrl}/metrics`)).text();
      return text.split("\n").find((l) => l.startsWith('perceptd_replay_truncated_total{camera="cam0"}'));
    };
    expect(await metric()).toBe('perceptd_replay_truncated_total{camera="cam0"} 1');
    await d.waitForLog((l) => l.msg === "camera cam0: loop" && (l.event as { loops: number }).loops === 2, 60_000);
    expect(d.logs.filter((l) => (l.event as { type?: string } | undefined)?.type === "truncated").length, "warned for the first pass only").toBe(1);
    expect(await d.stop()).toBe(0);

    // A whole file (40 frames of vtest.avi, muxed complete) played to its end: no warning.
    const complete = join(dir, "complete.avi");
    spawnSync("gst-launch-1.0", ["-q", "filesrc", `location=${VTEST}`, "!", "decodebin", "!", "videoconvert", "!", "identity", "eos-after=40", "!", "jpegenc", "!", "avimux", "!", "filesink", `location=${complete}`]);
    const whole = await startDaemon(baseConfig(await freePort(), { type: "file", path: complete, realtime: false }, { health: QUIET_HOST }));
    expect(await whole.exited).toBe(0);
    expect(whole.logs.filter((l) => l.msg === "camera cam0: ended").length, "played to its end").toBe(1);
    expect(whole.logs.some((l) => (l.event as { type?: string } | undefined)?.type === "truncated")).toBe(false);
  });

  it("inference hang (test hook): FAULT (inference_hang) on the bus once a frame outlasts the hang limit, the worker is replaced, then OK and detections resume", async () => {
    const port = await freePort();
    const bus = watch(`tcp://127.0.0.1:${port}`);
    const hangMs = 1000;
    const d = await startDaemon(
      baseConfig(port, { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 15 }, { health: { ...QUIET_HOST, inferenceHangMs: hangMs } }),
      // Each worker thread runs 30 frames, then one frame blocks its thread for 4 s.
      { PERCEPTD_TEST_INFER_STALL_MS: "4000", PERCEPTD_TEST_INFER_STALL_AFTER: "30" },
    );
    const running = await until(() => bus.detections[4], 60_000, () => `first detections; ${bus.lastHealth()}`);

    // The stall begins with the request after the 30th result: right after its publish.
    const degraded = await until(
      () => bus.health.find((h) => h.at > running.at && (hasReason(h, "worker_replaced") || hasReason(h, "inference_hang"))),
      30_000,
      () => `hang noticed; ${bus.lastHealth()}`,
    );
    expect(bus.detections.filter((m) => m.at < degraded.at).length, "detections before the hang").toBeGreaterThan(0);
    // FAULT from the tick that sees the hang until the replacement is warm.
    expect(degraded.state).toBe("STATE_FAULT");
    // The daemon's own measurement of the hung frame, not this process's clock, says it waited for the limit.
    const hang = degraded.reasons.map((r) => /^inference_hang \(worker:shared\): worker shared busy on one frame for (\d+) ms \(limit 1000 ms\)$/.exec(r)).find((m) => m !== null);
    expect(hang, degraded.reasons.join("; ")).toBeDefined();
    expect(Number(hang?.[1]), "busy time reported for the hung frame (ms)").toBeGreaterThanOrEqual(hangMs);
    expect(degraded.reasons.some((r) => r.startsWith("worker_replaced (worker:shared)")), degraded.reasons.join("; ")).toBe(true);
    expect(logHas(d, (l) => l.msg === "health: ok -> fault" && String((l.reasons as string[])[0]).startsWith("inference_hang (worker:shared)"))).toBe(true);

    const ok = await until(() => bus.health.find((h) => h.at > degraded.at && h.state === "STATE_OK"), 30_000, () => `OK after the replacement; ${bus.lastHealth()}`);
    const resumed = await until(() => bus.detections.find((m) => m.at > degraded.at), 30_000, () => "detections after the replacement");
    expect(ok.reasons).toEqual([]);
    expect(resumed.valid).toBe(true);
    expect(d.logs.filter((l) => l.msg === "inference worker shared: replacement started").length).toBe(1);
    expect(logHas(d, (l) => l.msg === "inference worker shared: replacement succeeded")).toBe(true);
    // Health kept coming while the worker was hung and while its replacement warmed up:
    // FAULT more than once, and not a message missing (a gap would be WRONG_SEQUENCE).
    expect(bus.healthBetween(degraded.at, ok.at).filter((h) => h.state === "STATE_FAULT").length, "FAULT messages until the replacement was warm").toBeGreaterThan(1);
    expect(bus.health.filter((h) => h.e2e === "WRONG_SEQUENCE")).toEqual([]);
    expect(bus.errors).toEqual([]);
    // The replacement stalls after its own 30 frames too; that is the next test's business.
  });

  it("inference hang that comes back after every replacement: past maxWorkerReplacements FAULT (worker_failed) on the bus, then STOPPING, exit 70", async () => {
    const port = await freePort();
    const bus = watch(`tcp://127.0.0.1:${port}`);
    const d = await startDaemon(
      baseConfig(port, { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 15 }, { health: { ...QUIET_HOST, inferenceHangMs: 1000, maxWorkerReplacements: 1 } }),
      { PERCEPTD_TEST_INFER_STALL_MS: "2500", PERCEPTD_TEST_INFER_STALL_AFTER: "5" },
    );
    const code = await Promise.race([d.exited, sleep(90_000).then(() => "still running after 90 s")]);
    expect(code, `exit code; stderr: ${d.stderr().slice(-2000)}`).toBe(70);
    await until(() => (bus.health.at(-1)?.state === "STATE_STOPPING" ? true : undefined), 10_000, () => `the last health message; ${bus.lastHealth()}`);

    const started = d.logs.filter((l) => l.msg === "inference worker shared: replacement started");
    expect(started.length, "replacements before giving up").toBe(1);
    const fatal = d.logs.find((l) => l.level === "fatal");
    expect(String(fatal?.why)).toMatch(/1 replacement\(s\) in the last 600000 ms already \(limit 1\): giving up$/);
    expect(logHas(d, (l) => l.msg === PHASE_LOG.stopping && l.reason === "fatal")).toBe(true);

    // On the bus: OK, FAULT while the first replacement runs, OK, FAULT when the second hang
    // finds the budget spent (published before the stop), then STOPPING, still naming why.
    const states = bus.health.map((h) => h.state).filter((s, i, all) => i === 0 || all[i - 1] !== s);
    expect(states.filter((s) => s !== "STATE_STARTING")).toEqual(["STATE_OK", "STATE_FAULT", "STATE_OK", "STATE_FAULT", "STATE_STOPPING"]);
    const failed = bus.health.find((h) => h.state === "STATE_FAULT" && hasReason(h, "worker_failed (worker:shared)"));
    expect(failed, "FAULT with worker_failed on the bus").toBeDefined();
    const gaveUp = bus.health.find((h) => h.state === "STATE_STOPPING");
    expect(gaveUp?.reasons.some((r) => r.startsWith("worker_failed (worker:shared)"))).toBe(true);
    expect(bus.health.at(-1)?.reasons.some((r) => r.startsWith("worker_failed (worker:shared)")), "the last STOPPING message says why").toBe(true);
    // The exit waited for the hung thread's run to end (the pool detaches, never kills, a
    // busy worker): exit 70 above, within the 90 s guard.
  });

  it("the test-only stall variables are not config keys, and a malformed one fails the start naming it", async () => {
    const port = await freePort();
    const d = await startDaemon(baseConfig(port, { type: "testsrc", numBuffers: 10 }), { PERCEPTD_TEST_INFER_STALL_MS: "soon" });
    expect(await d.exited).toBe(1);
    expect(d.stderr()).toMatch(/PERCEPTD_TEST_INFER_STALL_MS \(test-only stall injection\) must be an integer >= 1, got "soon"/);
  });

  it.skipIf(!existsSync(VTEST))(
    "slow subscriber past its high-water mark: the daemon does not stall, a normal subscriber keeps getting every message in sequence",
    async () => {
      const port = await freePort();
      const dir = await mkdtemp(join(tmpdir(), "perceptd-faults-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      // The slow subscriber is on ipc: on loopback TCP the kernel buffers grow to megabytes,
      // which the daemon would need minutes to fill; a unix socket holds about 200 KB.
      const ipc = `ipc://${join(dir, "bus.sock")}`;
      const d = await startDaemon(
        baseConfig(port, { type: "file", path: VTEST, realtime: false, loop: true }, {
          bus: { endpoints: [`tcp://127.0.0.1:${port}`, ipc], sendHighWaterMark: 10 },
          // Many low-score boxes make messages of a few KB: the slow pipe fills in seconds.
          model: { scoreThreshold: 0.02, maxDetections: 1000 },
          health: QUIET_HOST,
        }),
      );
      const ready = await d.ready();
      // Connected and subscribed, never read: libzmq fills its pipe (1 message), then the socket.
      const slow = new BusClient({ endpoints: ipc, topics: ["health", "detections"], receiveHighWaterMark: 1 });
      cleanups.push(() => slow.close());
      const bus = watch(`tcp://127.0.0.1:${port}`);
      await until(() => (bus.detections.length > 0 ? true : undefined), 30_000, () => "detections at the normal subscriber");

      // Enough messages of a few KB each to fill the slow subscriber's ~200 KB several times over.
      const [h0, d0] = [bus.health.length, bus.detections.length];
      await until(
        () => (bus.health.length >= h0 + 50 && bus.detections.length >= d0 + 300 ? true : undefined),
        180_000,
        () => `messages at the normal subscriber: ${bus.health.length - h0} health, ${bus.detections.length - d0} detections`,
      );
      expect(bus.health.filter((h) => h.e2e !== "OK"), "health gaps at the normal subscriber").toEqual([]);
      expect(bus.detections.filter((m) => m.e2e !== "OK"), "detections gaps at the normal subscriber").toEqual([]);
      expect(bus.health.flatMap((h) => h.reasons).filter((r) => r.startsWith("publish_failure"))).toEqual([]);
      const metrics = await (await fetch(`${ready.metricsUrl ?? ""}/metrics`)).text();
      expect(metrics).toMatch(/^perceptd_bus_messages_dropped_total\{topic="health"\} 0$/m);
      expect(metrics).toMatch(/^perceptd_bus_messages_dropped_total\{topic="detections"\} 0$/m);

      // The slow subscriber did reach the mark: what it reads now skips what libzmq dropped for it.
      let gap: string | undefined;
      const deadline = performance.now() + 30_000; // a guard: the backlog is read at once
      while (gap === undefined && performance.now() < deadline) {
        const ev = await slow.receive();
        if (ev?.kind === "message" && ev.e2e === "WRONG_SEQUENCE") gap = `${ev.topic}: ${ev.detail ?? ""}`;
      }
      expect(gap, "a counter gap at the slow subscriber").toMatch(/messages? missing$/);
      expect(await d.stop(), "exit code").toBe(0);
    },
  );

  it("subscriber that joins late: the first health message tells the whole state, detections follow, both in sequence from the first", async () => {
    const port = await freePort();
    const d = await startDaemon(baseConfig(port, { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 15 }, { health: QUIET_HOST }));
    await d.waitForLog((l) => l.msg === "camera cam0: running");
    await sleep(2000);
    const bus = watch(`tcp://127.0.0.1:${port}`);
    const health = await until(() => bus.health[0], 30_000, () => "first health message");
    await until(() => bus.detections[0], 30_000, () => "first detections message");
    // Health is state, not edges: the first message already tells the whole story.
    expect(health).toMatchObject({ state: "STATE_OK", e2e: "OK" });
    expect(health.cameras[0]).toMatchObject({ cameraId: "cam0", state: "STATE_RUNNING" });
    expect(Number(health.cameras[0].framesProcessed)).toBeGreaterThan(0);
    await until(() => (bus.health.length >= 5 && bus.detections.length >= 3 ? true : undefined), 30_000, () => "more messages");
    expect([...bus.health, ...bus.detections].filter((m) => m.e2e !== "OK")).toEqual([]);
    expect(await d.stop()).toBe(0);
  });

  it.skipIf(!existsSync(VTEST))("SIGTERM under load (unpaced file, inference on every core): exit 0, health STOPPING from then on, no message lost", async () => {
    const port = await freePort();
    const bus = watch(`tcp://127.0.0.1:${port}`);
    const d = await startDaemon(baseConfig(port, { type: "file", path: VTEST, realtime: false, loop: true }, { health: QUIET_HOST }));
    await until(() => (bus.detections.length >= 10 ? true : undefined), 60_000, () => `detections; ${bus.lastHealth()}`);
    d.child.kill("SIGTERM");
    const code = await Promise.race([d.exited, sleep(60_000).then(() => "still running 60 s after SIGTERM")]);
    expect(code, `exit code; stderr: ${d.stderr().slice(-2000)}`).toBe(0);
    await until(() => (bus.health.at(-1)?.state === "STATE_STOPPING" ? true : undefined), 10_000, () => `the last health message; ${bus.lastHealth()}`);
    // Once STOPPING, always STOPPING (messages in flight at the signal may still say OK).
    const first = bus.health.findIndex((h) => h.state === "STATE_STOPPING");
    for (const h of bus.health.slice(first)) expect(h.state).toBe("STATE_STOPPING");
    expect(bus.health.filter((h) => h.e2e === "WRONG_SEQUENCE"), "no health message lost on the way out").toEqual([]);
    expect(bus.health.at(-1)).toMatchObject({ state: "STATE_STOPPING", reasons: [] });
    expect(bus.health.at(-1)?.cameras[0].state).toBe("STATE_STOPPED");
  });
});

