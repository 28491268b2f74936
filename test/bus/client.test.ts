// BusClient against a real BusPublisher over tcp: what a consumer sees for good frames, a
// corrupted byte, a skipped counter, a repeat, and silence.
import { afterEach, describe, expect, it, vi } from "vitest";
import { BusClient, type BusEvent } from "../../src/bus/client/index.ts";
import { BusEncoder, type DetectionsBody } from "../../src/bus/codec.ts";
import { BusPublisher } from "../../src/bus/publisher.ts";
import { Publisher } from "zeromq";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const body: DetectionsBody = { model: "nanodet-u8", frameWidthPx: 640, frameHeightPx: 480, detections: [{ classId: 0, label: "person", score: 0.75, box: [1, 2, 3.5, 4] }] };

async function publisher(): Promise<BusPublisher> {
  const pub = await BusPublisher.bind(["tcp://127.0.0.1:0"], { sendHighWaterMark: 1000, lingerMs: 100 });
  cleanups.push(() => pub.close());
  return pub;
}

/** Reads events in the background, as a consumer loop would. */
function consume(client: BusClient): BusEvent[] {
  cleanups.push(() => client.close());
  const events: BusEvent[] = [];
  void (async () => {
    for await (const ev of client) events.push(ev);
  })();
  return events;
}

const messages = (evs: BusEvent[]): BusEvent[] => evs.filter((e) => e.kind !== "stale");

/** Publishes until the subscription is live (PUB/SUB joins asynchronously); returns how many events that took. */
async function join(send: () => void, events: BusEvent[]): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (messages(events).length === 0) {
    if (Date.now() > deadline) throw new Error("subscriber never joined");
    send();
    await new Promise((r) => setTimeout(r, 30));
  }
  // let stragglers of the join arrive before the test counts
  await new Promise((r) => setTimeout(r, 100));
  return events.length;
}

describe("bus client", () => {
  it("receives and decodes messages stamped by publishMessage, in sequence (OK)", async () => {
    const pub = await publisher();
    const events = consume(new BusClient({ endpoints: pub.endpoints, topics: ["detections"] }));
    const start = await join(() => pub.publishMessage("detections", body, { cameraId: "front", frameSeq: 1 }), events);
    for (let i = 0; i < 5; i++) pub.publishMessage("detections", body, { cameraId: "front", frameSeq: 10 + i, tIngestMonoNs: 5n });
    await vi.waitFor(() => expect(events.length).toBe(start + 5));
    const got = events.slice(start);
    for (const ev of got) {
      expect(ev.kind).toBe("message");
      expect(ev.e2e).toBe("OK");
      if (ev.kind !== "message" || ev.topic !== "detections") throw new Error("unreachable");
      expect(ev.body).toEqual(body);
      expect(ev.header.cameraId).toBe("front");
    }
    const counters = got.map((e) => (e.kind === "message" ? e.header.counter : -1n));
    expect(counters.map((c) => c - counters[0])).toEqual([0n, 1n, 2n, 3n, 4n]);
  });

  it("reports a corrupted byte as ERROR, a skipped counter as WRONG_SEQUENCE and a repeat as REPEATED", async () => {
    const pub = await publisher();
    const enc = new BusEncoder();
    const client = new BusClient({ endpoints: pub.endpoints, topics: ["detections"] });
    const events = consume(client);
    const start = await join(() => pub.publish("detections", enc.encode("detections", body)), events);

    const corrupted = enc.encode("detections", body);
    corrupted[corrupted.length - 3] ^= 0x10;
    pub.publish("detections", corrupted);
    // The corrupted frame took a counter, so the next good one shows its loss.
    pub.publish("detections", enc.encode("detections", body));
    pub.publish("detections", enc.encode("detections", body));
    enc.encode("detections", body); // encoded, never sent: lost on the way
    const again = enc.encode("detections", body);
    pub.publish("detections", again);
    pub.publish("detections", again);
    pub.publish("detections", enc.encode("detections", body));

    await vi.waitFor(() => expect(events.length).toBe(start + 6));
    const got = events.slice(start).map((e) => [e.e2e, "detail" in e ? e.detail : undefined]);
    expect(got[0][0]).toBe("ERROR");
    expect(got[0][1]).toMatch(/^crc: CRC-32C mismatch/);
    expect(got.slice(1)).toEqual([
      ["WRONG_SEQUENCE", expect.stringMatching(/: 1 message missing$/)],
      ["OK", undefined],
      ["WRONG_SEQUENCE", expect.stringMatching(/: 1 message missing$/)],
      ["REPEATED", expect.stringMatching(/again$/)],
      ["OK", undefined],
    ]);
    expect(client.state("detections")).toBe("OK");
  });

  it("reports ERROR for a payload that is not a perceptd frame", async () => {
    const pub = await publisher();
    const enc = new BusEncoder();
    const events = consume(new BusClient({ endpoints: pub.endpoints, topics: ["health"] }));
    const health = () => enc.encode("health", { state: "STATE_OK", reasons: [], cameras: [], uptimeS: 1, fps: 0, latencyE2eP50Ms: 0, latencyE2eP99Ms: 0, latencyInferenceP50Ms: 0, framesIngested: 0n, framesProcessed: 0n, framesDropped: 0n, model: "", executionProvider: "" });
    const start = await join(() => pub.publish("health", health()), events);
    pub.publish("health", '{"json":"from an old daemon"}');
    pub.publish("health", enc.encode("alerts", { alerts: [] }));
    await vi.waitFor(() => expect(messages(events.slice(start)).length).toBe(2));
    expect(messages(events.slice(start)).map((e) => [e.e2e, "detail" in e ? e.detail : ""])).toEqual([
      ["ERROR", expect.stringMatching(/^layout: frame starts with 0x7b/)],
      ["ERROR", expect.stringMatching(/^data_id: data_id 3 on topic health/)],
    ]);
  });

  it("reports ERROR (unknown topic) for a frame on topic healthz, which ZeroMQ's prefix match delivers to a health subscriber", async () => {
    // A raw socket: BusPublisher only publishes declared topics.
    const raw = new Publisher({ linger: 0 });
    cleanups.push(() => raw.close());
    await raw.bind("tcp://127.0.0.1:0");
    const enc = new BusEncoder();
    const health = enc.encode("health", { state: "STATE_OK", reasons: [], cameras: [], uptimeS: 1, fps: 0, latencyE2eP50Ms: 0, latencyE2eP99Ms: 0, latencyInferenceP50Ms: 0, framesIngested: 0n, framesProcessed: 0n, framesDropped: 0n, model: "", executionProvider: "" });
    const client = new BusClient({ endpoints: raw.lastEndpoint!, topics: ["health"] });
    const events = consume(client);
    const start = await join(() => void raw.send(["health", health]), events);
    await raw.send(["healthz", health]);
    await vi.waitFor(() => expect(messages(events.slice(start)).length).toBe(1));
    const [ev] = messages(events.slice(start));
    expect(ev).toMatchObject({ kind: "error", topic: "health", e2e: "ERROR" });
    expect(ev.detail).toMatch(/^unknown topic "healthz" \(delivered by ZeroMQ's prefix match on the subscription "health"\)/);
    expect(client.state("health")).toBe("ERROR");
  });

  it("reports NO_NEW_DATA when a topic stays silent past its staleness timeout, though nothing arrives", async () => {
    const pub = await publisher();
    const t0 = performance.now();
    const client = new BusClient({ endpoints: pub.endpoints, topics: ["health", "alerts"] });
    const events = consume(client);
    await vi.waitFor(() => expect(events.length).toBe(2), { timeout: 3000 });
    expect(events.map((e) => [e.kind, e.topic, e.e2e])).toEqual([
      ["stale", "health", "NO_NEW_DATA"],
      ["stale", "alerts", "NO_NEW_DATA"],
    ]);
    const [health, alerts] = events;
    if (health.kind !== "stale" || alerts.kind !== "stale") throw new Error("unreachable");
    // the topic table: health 300 ms, alerts 1000 ms
    expect(health.silentForMs).toBeGreaterThanOrEqual(300);
    expect(health.at - t0).toBeLessThan(800);
    expect(alerts.silentForMs).toBeGreaterThanOrEqual(1000);
    expect(alerts.at - t0).toBeLessThan(1600);
    expect(client.state("health")).toBe("NO_NEW_DATA");
  });

  it("ends the iteration when closed, also with a receive pending", async () => {
    const pub = await publisher();
    const client = new BusClient({ endpoints: pub.endpoints, topics: ["detections"] });
    const pending = client.receive();
    await new Promise((r) => setTimeout(r, 50));
    client.close();
    expect(await pending).toBeNull();
    expect(await client.receive()).toBeNull();
  });

  it("refuses a malformed endpoint or key at once", () => {
    expect(() => new BusClient({ endpoints: "udp://x" })).toThrow(/cannot connect to udp:\/\/x/);
    expect(() => new BusClient({ endpoints: "tcp://127.0.0.1:1", curve: { serverPublicKey: "short", publicKey: "x", secretKey: "y" } })).toThrow(/curve\.serverPublicKey is not a Z85 CURVE key/);
  });
});
