// The whole daemon, as a separate process, with real GStreamer, ONNX Runtime, ZeroMQ and
// HTTP: what an integrator sees on the bus and on /metrics.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile, readFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { baseConfig, collectDetections, DEFAULT_MODEL, DEFAULT_MODEL_FILE, freePort, literal, REPO, runDaemon, VTEST, writeConfig } from "./harness.ts";
import { PHASE_LOG } from "../../src/daemon/log-messages.ts";


function metricValue(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(" ").pop()) : NaN;
}

describe("perceptd run", () => {
  it("replays a videotestsrc clip to the end, publishing well-formed detection messages, and exits 0", async () => {
    const port = await freePort();
    const sub = await collectDetections(`tcp://127.0.0.1:${port}`);
    const cfg = await writeConfig(baseConfig(port, { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 30, numBuffers: 90 }));
    const d = runDaemon(["run", "--config", cfg]);
    expect(await d.exited, `exit code; stderr: ${d.stderr()}`).toBe(0);
    sub.close();
    expect(sub.messages.length, "detections messages received").toBeGreaterThan(5);
    const first = sub.messages[0];
    expect(first).toMatchObject({ camera: "cam0", model: DEFAULT_MODEL, width: 320, height: 240 });
    expect(sub.raw[0][0].toString(), "topic frame").toBe("detections");
    const seqs = sub.messages.map((m) => m.seq);
    expect(seqs, "sequence numbers increase").toEqual([...seqs].sort((a, b) => a - b));
    for (const m of sub.messages) expect(m.tPublishNs >= m.tIngestNs, "publish after ingest").toBe(true);
    expect(d.logs.some((l) => l.msg === PHASE_LOG.stopped), "logged a clean stop").toBe(true);
  });

  it("runs an unpaced replay on two sessions side by side and publishes every frame once, in order", async () => {
    const port = await freePort();
    const sub = await collectDetections(`tcp://127.0.0.1:${port}`);
    // A non-live expert pipeline waits for the daemon like an unpaced file does.
    const source = { type: "pipeline", pipeline: "videotestsrc num-buffers=40 pattern=ball ! video/x-raw,width=320,height=240", live: false };
    const cfg = await writeConfig(baseConfig(port, source, { inference: { warmupRuns: 1, replayWorkers: 2 } }));
    const d = runDaemon(["run", "--config", cfg]);
    expect(await d.exited, `exit code; stderr: ${d.stderr()}`).toBe(0);
    sub.close();
    const warm = d.logs.find((l) => l.msg === PHASE_LOG.modelWarm);
    expect(warm?.workers, "the replay got two workers, the cores split between them").toEqual([
      { name: "shared-1", cameras: ["cam0"], intraOpThreads: Math.max(1, Math.floor(availableParallelism() / 2)) },
      { name: "shared-2", cameras: ["cam0"], intraOpThreads: Math.max(1, Math.floor(availableParallelism() / 2)) },
    ]);
    const seqs = sub.messages.map((m) => m.seq);
    // The subscriber may miss the first messages while it connects; from then on none is missing or out of place.
    expect(seqs.length, "detections messages received").toBeGreaterThan(20);
    expect(seqs, "every frame from the first received to the last, once, in order").toEqual(seqs.map((_, i) => seqs[0] + i));
    expect(seqs.at(-1), "the last frame of the clip finished before the stop").toBe(39);
  });

  it.skipIf(!existsSync(VTEST))("tracks people through an unpaced replay as it does live: ids follow the video's time, not the bursts of arrival", async () => {
    // 150 frames of vtest.avi (15 s, about ten people) as a clip of their own, replayed unpaced
    // on two sessions: frames arrive in bursts a fraction of a millisecond apart. Timed by
    // arrival, every track's velocity exploded and broke it into new ids (hundreds over the
    // whole video, against about 50 when paced).
    const clip = join(await mkdtemp(join(tmpdir(), "perceptd-unpaced-")), "vtest-150.avi");
    execFileSync("gst-launch-1.0", ["-q", "filesrc", `location=${VTEST}`, "!", "decodebin", "!", "videoconvert", "!", "identity", "eos-after=150", "!", "jpegenc", "!", "avimux", "!", "filesink", `location=${clip}`]);
    const port = await freePort();
    const sub = await collectDetections(`tcp://127.0.0.1:${port}`);
    const cfg = await writeConfig(baseConfig(port, { type: "file", path: clip, realtime: false }, { inference: { warmupRuns: 1, replayWorkers: 2 } }));
    const d = runDaemon(["run", "--config", cfg]);
    expect(await d.exited, `exit code; stderr: ${d.stderr()}`).toBe(0);
    sub.close();
    expect(sub.messages.length, "detections messages received").toBeGreaterThan(100);
    const ids = new Set(sub.messages.flatMap((m) => m.detections.filter((x) => x.trackId !== undefined).map((x) => x.trackId)));
    expect(ids.size, `distinct confirmed track ids over 150 frames: ${[...ids].join(" ")}`).toBeLessThanOrEqual(30);
    expect(ids.size, "people are tracked at all").toBeGreaterThanOrEqual(3);
  });

  it.skipIf(!existsSync(VTEST))("finds people in vtest.avi, serves moving histograms on /metrics, and stops on SIGTERM within 2 s", async () => {
    const port = await freePort();
    const sub = await collectDetections(`tcp://127.0.0.1:${port}`);
    const cfg = await writeConfig(baseConfig(port, { type: "file", path: VTEST, realtime: true, loop: true }));
    const d = runDaemon(["run", "--config", cfg]);
    const ready = await d.ready();
    expect(ready.endpoints, "READY=1 names the bound bus").toEqual([`tcp://127.0.0.1:${port}`]);
    const metricsUrl = ready.metricsUrl ?? "";
    expect(metricsUrl, "READY=1 names the metrics server").toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // let a few seconds of video through (10 fps)
    while (sub.messages.length < 20) await new Promise((r) => setTimeout(r, 200));
    const before = await (await fetch(`${metricsUrl}/metrics`)).text();
    await new Promise((r) => setTimeout(r, 1500));
    const after = await (await fetch(`${metricsUrl}/metrics`)).text();
    const count = (t: string): number => metricValue(t, "perceptd_stage_latency_seconds_count", 'stage="end_to_end"');
    expect(count(before), "end-to-end histogram has observations").toBeGreaterThan(0);
    expect(count(after), "end-to-end histogram keeps moving").toBeGreaterThan(count(before));
    const hops = (t: string): number => metricValue(t, "perceptd_stage_latency_seconds_count", 'stage="worker_to_main"');
    expect(hops(after), "the worker -> main hop is timed for every result").toBe(count(after));
    expect(after).toContain(`perceptd_model_info{model="${DEFAULT_MODEL}",execution_provider="cpu"`);
    expect(after, "the stock binding is labelled as not honouring provider options").toMatch(/perceptd_model_info\{[^}]*provider_options="(ignored|no-gpu-providers)"/);
    expect(metricValue(after, "perceptd_detections_total", 'class="person"'), "people counted").toBeGreaterThan(0);
    const health = await fetch(`${metricsUrl}/healthz`);
    expect(health.status, "healthz while running").toBe(200);

    const people = sub.messages.map((m) => m.detections.filter((x) => x.label === "person" && x.score >= 0.5).length);
    expect(Math.max(...people), "people in a frame of vtest.avi").toBeGreaterThanOrEqual(3);
    for (const m of sub.messages) {
      expect(m).toMatchObject({ camera: "cam0", width: 768, height: 576 });
      for (const x of m.detections) {
        expect(x.box[0]).toBeGreaterThanOrEqual(0);
        expect(x.box[2]).toBeLessThanOrEqual(768);
      }
    }

    d.child.kill("SIGTERM");
    expect(await d.exited, `exit code after SIGTERM; stderr: ${d.stderr()}`).toBe(0);
    sub.close();
  });

  it("serves two cameras from one shared worker and stops on SIGINT with exit 0", async () => {
    const port = await freePort();
    const sub = await collectDetections(`tcp://127.0.0.1:${port}`);
    const cfg = await writeConfig({
      ...baseConfig(port, { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 15 }),
      cameras: [
        { id: "left", source: { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 15 } },
        { id: "right", source: { type: "testsrc", pattern: "smpte", width: 640, height: 360, framerate: 15 } },
      ],
    });
    const d = runDaemon(["run", "--config", cfg]);
    await d.ready();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (new Set(sub.messages.map((m) => m.camera)).size < 2 || sub.messages.length < 10)) await new Promise((r) => setTimeout(r, 100));
    d.child.kill("SIGINT");
    expect(await d.exited, `exit code after SIGINT; stderr: ${d.stderr()}`).toBe(0);
    sub.close();
    const left = sub.messages.filter((m) => m.camera === "left");
    const right = sub.messages.filter((m) => m.camera === "right");
    expect(left.length, "messages from camera left").toBeGreaterThan(2);
    expect(right.length, "messages from camera right").toBeGreaterThan(2);
    expect(right[0]).toMatchObject({ width: 640, height: 360 });
    expect(left[0]).toMatchObject({ width: 320, height: 240 });
  });

  it("rejects an invalid config with every problem, its path and line, exit code 78", async () => {
    const dir = await mkdtemp(join(tmpdir(), "perceptd-bad-"));
    const cfg = join(dir, "bad.yaml");
    await writeFile(cfg, ["cameras:", "  - id: front", "    source:", "      type: file", "model:", "  scoreTreshold: 0.4", "bus:", "  endpoints: [udp://1.2.3.4:5]", ""].join("\n"));
    const d = runDaemon(["run", "--config", cfg]);
    expect(await d.exited).toBe(78);
    const err = d.stderr();
    expect(err).toMatch(/cameras\.0\.source\.path/);
    expect(err).toMatch(/unknown key "scoreTreshold" in model, did you mean scoreThreshold\?/);
    expect(err).toMatch(/bad\.yaml:8:\d+ bus\.endpoints\.0/);
  });

  it("rejects a model file that does not match its manifest checksum", async () => {
    const dir = await mkdtemp(join(tmpdir(), "perceptd-model-"));
    const manifest = JSON.parse(await readFile(join(REPO, "models/manifest.json"), "utf8"));
    await writeFile(join(dir, DEFAULT_MODEL_FILE), Buffer.from("this is not the model"));
    await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
    const port = await freePort();
    const cfg = await writeConfig({ ...baseConfig(port, { type: "testsrc", numBuffers: 10 }), model: { manifest: join(dir, "manifest.json") } });
    const d = runDaemon(["run", "--config", cfg]);
    expect(await d.exited).toBe(1);
    expect(d.stderr()).toMatch(new RegExp(`model "${literal(DEFAULT_MODEL)}": .*${literal(DEFAULT_MODEL_FILE)} has sha256 [0-9a-f]{64}, the manifest says`));
  });

  it("rejects a missing model file, naming it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "perceptd-model-"));
    const manifest = JSON.parse(await readFile(join(REPO, "models/manifest.json"), "utf8"));
    await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
    const port = await freePort();
    const cfg = await writeConfig({ ...baseConfig(port, { type: "testsrc", numBuffers: 10 }), model: { manifest: join(dir, "manifest.json") } });
    const d = runDaemon(["run", "--config", cfg]);
    expect(await d.exited).toBe(1);
    expect(d.stderr()).toMatch(new RegExp(`model "${literal(DEFAULT_MODEL)}": cannot read .*${literal(DEFAULT_MODEL_FILE)}`));
  });
});
