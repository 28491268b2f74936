// BusClient against a real BusPublisher over tcp: what a consumer sees for good frames, a
// corrupted byte, a skipped counter, a repeat, and silence. Assertions are on order, counts
// and states; timeouts only guard against a hang.
import { afterEach, describe, expect, it, vi } from "vitest";
import { BusClient, type BusEvent } from "../../src/bus/client/index.ts";
import { BusEncoder, type DetectionsBody, type HealthBody } from "../../src/bus/codec.ts";
import { BusPublisher } from "../../src/bus/publisher.ts";
import { TOPICS, type TopicName } from "../../src/bus/topics.ts";
import { Publisher } from "zeromq";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const body: DetectionsBody = { model: "nanodet-u8", frameWidthPx: 640, frameHeightPx: 480, detections: [{ classId: 0, label: "person", score: 0.75, box: [1, 2, 3.5, 4] }] };
const healthBody: HealthBody = { state: "STATE_OK", reasons: [], cameras: [], uptimeS: 1, fps: 0, latencyE2eP50Ms: 0, latencyE2eP99Ms: 0, latencyInferenceP50Ms: 0, framesIngested: 0n, framesProcessed: 0n, framesDropped: 0n, model: "", executionProvider: "" };

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

/** What arrived on one topic, staleness reports left out. */
const on = (evs: BusEvent[], topic: TopicName): BusEvent[] => messages(evs).filter((e) => e.topic === topic);

/**
 * Publishes on a topic the test does not look at until the subscriber receives one (PUB/SUB
 * joins asynchronously). Give it the client's last topic: the subscriptions go out in order
 * on one connection, so the earlier ones are live by then too, and stragglers of the join
 * cannot change the counts a test takes on those: no sleep to let them settle.
 */
async function join(send: () => void, events: BusEvent[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (messages(events).length === 0) {
    if (Date.now() > deadline) throw new Error("subscriber never joined");
    send();
    await new Promise((r) => setTimeout(r, 30));
  }
}

describe("bus client", () => {
  it("receives and decodes messages stamped by publishMessage, in sequence (OK)", async () => {
    const pub = await publisher();
    const events = consume(new BusClient({ endpoints: pub.endpoints, topics: ["detections", "health"] }));
    await join(() => pub.publishMessage("health", healthBody), events);
    for (let i = 0; i < 5; i++) pub.publishMessage("detections", body, { cameraId: "front", frameSeq: 10 + i, tIngestMonoNs: 5n });
    await vi.waitFor(() => expect(on(events, "detections").length).toBe(5));
    const got = on(events, "detections");
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
    const client = new BusClient({ endpoints: pub.endpoints, topics: ["detections", "health"] });
    const events = consume(client);
    await join(() => pub.publish("health", enc.encode("health", healthBody)), events);

    pub.publish("detections", enc.encode("detections", body)); // the first: where the sequence starts
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

    await vi.waitFor(() => expect(on(events, "detections").length).toBe(7));
    const got = on(events, "detections").map((e) => [e.e2e, "detail" in e ? e.detail : undefined]);
    expect(got[0]).toEqual(["OK", undefined]);
    expect(got[1][0]).toBe("ERROR");
    expect(got[1][1]).toMatch(/^crc: CRC-32C mismatch/);
    expect(got.slice(2)).toEqual([
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
    const events = consume(new BusClient({ endpoints: pub.endpoints, topics: ["health", "detections"] }));
    await join(() => pub.publish("detections", enc.encode("detections", body)), events);
    pub.publish("health", '{"json":"from an old daemon"}');
    pub.publish("health", enc.encode("alerts", { alerts: [] }));
    await vi.waitFor(() => expect(on(events, "health").length).toBe(2));
    expect(on(events, "health").map((e) => [e.e2e, "detail" in e ? e.detail : ""])).toEqual([
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
    const client = new BusClient({ endpoints: raw.lastEndpoint!, topics: ["health", "alerts"] });
    const events = consume(client);
    await join(() => void raw.send(["alerts", enc.encode("alerts", { alerts: [] })]), events);
    await raw.send(["healthz", health]);
    await vi.waitFor(() => expect(on(events, "health").length).toBe(1));
    const [ev] = on(events, "health");
    expect(ev).toMatchObject({ kind: "error", topic: "health", e2e: "ERROR" });
    expect(ev.detail).toMatch(/^unknown topic "healthz" \(delivered by ZeroMQ's prefix match on the subscription "health"\)/);
    expect(client.state("health")).toBe("ERROR");
  });

  it("reports NO_NEW_DATA when a topic stays silent past its staleness timeout, though nothing arrives", async () => {
    const pub = await publisher();
    const client = new BusClient({ endpoints: pub.endpoints, topics: ["health", "alerts"] });
    const events = consume(client);
    await vi.waitFor(() => expect(events.length).toBe(2), { timeout: 10_000 });
    expect(events.map((e) => [e.kind, e.topic, e.e2e])).toEqual([
      ["stale", "health", "NO_NEW_DATA"],
      ["stale", "alerts", "NO_NEW_DATA"],
    ]);
    const [health, alerts] = events;
    if (health.kind !== "stale" || alerts.kind !== "stale") throw new Error("unreachable");
    // From the topic table; the shorter timeout reports first (the order above).
    expect(health.silentForMs).toBeGreaterThanOrEqual(TOPICS.health.staleAfterMs);
    expect(alerts.silentForMs).toBeGreaterThanOrEqual(TOPICS.alerts.staleAfterMs);
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
