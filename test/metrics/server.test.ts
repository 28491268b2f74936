// The metrics module and its HTTP server, scraped over real HTTP the way Prometheus does.
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { BusPublisher } from "../../src/bus/publisher.ts";
import { createMetrics, STAGES, type Metrics } from "../../src/metrics/metrics.ts";
import { startMetricsServer, type Health, type MetricsServer } from "../../src/metrics/server.ts";
import { TOPIC_NAMES } from "../../src/bus/topics.ts";
import { ALERT_KIND_NAMES, ALERT_LEVEL_NAMES } from "../../src/perception/alerts.ts";

const LABELS = { topics: TOPIC_NAMES, alertKinds: ALERT_KIND_NAMES, alertLevels: ALERT_LEVEL_NAMES };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(metrics: Metrics, health: () => Health | Promise<Health> = () => ({ status: "ok" })): Promise<MetricsServer> {
  const s = await startMetricsServer(metrics, { port: 0, health });
  cleanups.push(() => s.close());
  return s;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition format, samples only. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hit = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length);
  if (hit.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${hit.length} samples`);
  return hit[0]?.value;
}

async function scrape(s: MetricsServer): Promise<Sample[]> {
  const res = await fetch(`${s.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parseExposition(await res.text());
}

describe("metrics module", () => {
  it("declares every daemon metric with its labels, plus the process defaults", async () => {
    const m = createMetrics({ labels: LABELS });
    m.initCamera("front");
    const s = await serve(m);
    const res = await fetch(`${s.url}/metrics`);
    const text = await res.text();
    for (const name of [
      "perceptd_stage_latency_seconds",
      "perceptd_frames_ingested_total",
      "perceptd_frames_processed_total",
      "perceptd_frames_dropped_total",
      "perceptd_detections_total",
      "perceptd_camera_restarts_total",
      "perceptd_camera_up",
      "perceptd_model_info",
      "perceptd_bus_messages_sent_total",
      "perceptd_bus_messages_dropped_total",
      "perceptd_ready",
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_seconds",
    ])
      expect(text, name).toContain(`# HELP ${name} `);

    // initCamera: every per-camera series exists at 0 before the first frame
    const samples = parseExposition(text);
    expect(sampleValue(samples, "perceptd_frames_ingested_total", { camera: "front" })).toBe(0);
    expect(sampleValue(samples, "perceptd_frames_dropped_total", { camera: "front", reason: "replaced" })).toBe(0);
    expect(sampleValue(samples, "perceptd_camera_restarts_total", { camera: "front" })).toBe(0);
    for (const stage of STAGES) expect(sampleValue(samples, "perceptd_stage_latency_seconds_count", { stage, camera: "front" }), stage).toBe(0);
    expect(sampleValue(samples, "perceptd_bus_messages_sent_total", { topic: "detections" })).toBe(0);
    expect(sampleValue(samples, "perceptd_ready")).toBe(0);
  });

  it("shows observations in the scrape: histogram buckets move, counters count, info gauges carry labels", async () => {
    const m = createMetrics({ labels: LABELS });
    const s = await serve(m);
    m.observeStage("inference", "front", 0.004);
    const before = await scrape(s);

    m.observeStage("inference", "front", 0.004);
    m.observeStageNs("end_to_end", "front", 1_000_000_000n, 1_150_000_000n);
    m.framesIngested.inc({ camera: "front" }, 3);
    m.framesProcessed.inc({ camera: "front" }, 2);
    m.frameDropped("front", "replaced");
    m.detections.inc({ camera: "front", class: "person" }, 5);
    m.cameraRestarts.inc({ camera: "front" });
    m.setModelInfo({ model: "nanodet", executionProvider: "cpu", providersTried: ["cuda", "cpu"], providerOptions: "ignored" });
    m.setModelInfo({ model: "nanodet", executionProvider: "cuda", providersTried: ["cuda"], providerOptions: "honoured" });
    m.setReady(true);
    const after = await scrape(s);

    const bucket = (samples: Sample[], stage: string, le: string) => sampleValue(samples, "perceptd_stage_latency_seconds_bucket", { stage, camera: "front", le });
    // 4 ms: above the 0.003 bucket, inside 0.004 (1 ms steps below 5 ms)
    expect(bucket(before, "inference", "0.003")).toBe(0);
    expect(bucket(before, "inference", "0.004")).toBe(1);
    expect(bucket(after, "inference", "0.003")).toBe(0);
    expect(bucket(after, "inference", "0.004")).toBe(2);
    expect(bucket(after, "inference", "+Inf")).toBe(2);
    expect(sampleValue(after, "perceptd_stage_latency_seconds_sum", { stage: "inference", camera: "front" })).toBeCloseTo(0.008, 9);
    // 150 ms: above the 0.1 bucket, inside 0.15
    expect(bucket(after, "end_to_end", "0.1")).toBe(0);
    expect(bucket(after, "end_to_end", "0.15")).toBe(1);
    expect(sampleValue(after, "perceptd_stage_latency_seconds_bucket", { stage: "end_to_end", camera: "front", le: "2" })).toBe(1);

    expect(sampleValue(after, "perceptd_frames_ingested_total", { camera: "front" })).toBe(3);
    expect(sampleValue(after, "perceptd_frames_processed_total", { camera: "front" })).toBe(2);
    expect(sampleValue(after, "perceptd_frames_dropped_total", { camera: "front", reason: "replaced" })).toBe(1);
    expect(sampleValue(after, "perceptd_detections_total", { camera: "front", class: "person" })).toBe(5);
    expect(sampleValue(after, "perceptd_camera_restarts_total", { camera: "front" })).toBe(1);
    // one model per daemon: the second setModelInfo replaced the first series
    expect(after.filter((x) => x.name === "perceptd_model_info")).toEqual([
      { name: "perceptd_model_info", labels: { model: "nanodet", execution_provider: "cuda", providers_tried: "cuda", provider_options: "honoured" }, value: 1 },
    ]);
    expect(sampleValue(after, "perceptd_ready")).toBe(1);
  });

  it("counts bus traffic through the publisher hooks", async () => {
    const m = createMetrics({ labels: LABELS, defaultMetrics: false });
    const s = await serve(m);
    const pub = await BusPublisher.bind(["tcp://127.0.0.1:0"], { sendHighWaterMark: 10, queueCapacity: 2, lingerMs: 100, ...m.busHooks() });
    cleanups.push(() => pub.close());
    for (let i = 0; i < 5; i++) pub.publish("detections", String(i));
    pub.publish("health", "h");
    await pub.flush(1000);
    const st = pub.stats();
    const samples = await scrape(s);
    expect(sampleValue(samples, "perceptd_bus_messages_sent_total", { topic: "detections" })).toBe(st.byTopic.detections.sent);
    expect(sampleValue(samples, "perceptd_bus_messages_dropped_total", { topic: "detections" })).toBe(st.byTopic.detections.dropped);
    expect(st.byTopic.detections.dropped).toBeGreaterThan(0);
    expect(sampleValue(samples, "perceptd_bus_messages_sent_total", { topic: "health" })).toBe(1);
  });

  it("keeps two instances in one process apart", async () => {
    const a = createMetrics({ labels: LABELS });
    const b = createMetrics({ labels: LABELS });
    a.framesIngested.inc({ camera: "x" });
    const [sa, sb] = [await serve(a), await serve(b)];
    expect(sampleValue(await scrape(sa), "perceptd_frames_ingested_total", { camera: "x" })).toBe(1);
    expect(sampleValue(await scrape(sb), "perceptd_frames_ingested_total", { camera: "x" })).toBeUndefined();
  });
});

describe("metrics server", () => {
  it("binds to 127.0.0.1 by default and reports the real port", async () => {
    const s = await serve(createMetrics({ labels: LABELS, defaultMetrics: false }));
    expect(s.host).toBe("127.0.0.1");
    expect(s.port).toBeGreaterThan(0);
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
  });

  it("answers /healthz with 200 when ok or degraded, 503 when starting, failed or stopping, 500 when the check throws", async () => {
    let health: Health = { status: "starting", details: { cameras: { front: "connecting" } } };
    let fail = false;
    const s = await serve(createMetrics({ labels: LABELS, defaultMetrics: false }), async () => {
      if (fail) throw new Error("camera table locked");
      return health;
    });

    let res = await fetch(`${s.url}/healthz`);
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({ status: "starting", details: { cameras: { front: "connecting" } } });

    health = { status: "ok" };
    res = await fetch(`${s.url}/healthz?verbose=1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", details: {} });

    // Still publishing: a 503 would have a balancer or orchestrator take away what is left.
    health = { status: "degraded", details: { front: "restarting" } };
    res = await fetch(`${s.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "degraded", details: { front: "restarting" } });

    for (const status of ["fault", "stopping"] as const) {
      health = { status };
      res = await fetch(`${s.url}/healthz`);
      expect(res.status, status).toBe(503);
      expect(await res.json()).toEqual({ status, details: {} });
    }

    fail = true;
    res = await fetch(`${s.url}/healthz`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ status: "error", error: "health check failed: camera table locked" });
  });

  it("answers 404 for other paths and 405 for methods other than GET and HEAD", async () => {
    const s = await serve(createMetrics({ labels: LABELS, defaultMetrics: false }));
    for (const path of ["/", "/metrics/", "/health", "/favicon.ico"]) expect((await fetch(`${s.url}${path}`)).status, path).toBe(404);
    for (const method of ["POST", "PUT", "DELETE"]) {
      const res = await fetch(`${s.url}/metrics`, { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
      await res.text();
    }
    const head = await fetch(`${s.url}/metrics`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("fails naming host:port when the port is taken", async () => {
    const first = await serve(createMetrics({ labels: LABELS, defaultMetrics: false }));
    await expect(startMetricsServer(createMetrics({ labels: LABELS, defaultMetrics: false }), { port: first.port, health: () => ({ status: "ok" }) })).rejects.toThrow(
      `metrics server: cannot listen on 127.0.0.1:${first.port}: address already in use`,
    );

    // held by something that is not ours either
    const other: Server = createServer();
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => other.close(() => resolve())));
    const port = (other.address() as { port: number }).port;
    await expect(startMetricsServer(createMetrics({ labels: LABELS, defaultMetrics: false }), { host: "127.0.0.1", port, health: () => ({ status: "ok" }) })).rejects.toThrow(
      `127.0.0.1:${port}`,
    );
  });

  it("closes promptly although a scraper keeps its connection alive", async () => {
    const s = await startMetricsServer(createMetrics({ labels: LABELS, defaultMetrics: false }), { port: 0, health: () => ({ status: "ok" }) });
    const res = await fetch(`${s.url}/metrics`, { headers: { connection: "keep-alive" } });
    await res.text();
    const t0 = performance.now();
    await s.close();
    await s.close();
    // Waiting for the idle keep-alive connection would take Node's 5 s keepAliveTimeout.
    expect(performance.now() - t0, "close with a keep-alive scraper (ms)").toBeLessThan(4000);
    await expect(fetch(`${s.url}/metrics`)).rejects.toThrow();
  });
});
