// BusPublisher against real zeromq Subscriber sockets, over every transport the daemon
// binds (the loop mirrors zeromq.js's own tests). PUB/SUB subscriptions propagate
// asynchronously, so each test first publishes probes until its subscriber sees one.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { Subscriber } from "zeromq";
import { decodeDetections } from "../../src/bus/detections-message.ts";
import { BusPublisher, type BusDropReason, type BusPublisherOptions } from "../../src/bus/publisher.ts";
import type { TopicName } from "../../src/bus/topics.ts";

const PROBE = "probe";

let dir: string;
let ipcCount = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-bus-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const transports = [
  { name: "tcp", endpoint: () => "tcp://127.0.0.1:0" },
  // a folder that does not exist yet: bind() must create it
  { name: "ipc", endpoint: () => `ipc://${join(dir, `run-${++ipcCount}`, "bus.sock")}` },
] as const;

async function bindPublisher(endpoint: string, opts: Partial<BusPublisherOptions> = {}): Promise<BusPublisher> {
  const pub = await BusPublisher.bind([endpoint], { sendHighWaterMark: 1000, lingerMs: 200, ...opts });
  cleanups.push(() => pub.close());
  return pub;
}

function subscribe(endpoint: string, topics: string[], opts: { receiveHighWaterMark?: number } = {}): Subscriber {
  const sub = new Subscriber({ linger: 0, receiveTimeout: 5000, ...opts });
  sub.connect(endpoint);
  for (const t of topics) sub.subscribe(t);
  cleanups.push(() => sub.close());
  return sub;
}

/** Publishes probes on `topic` until `sub` receives one: from then on its subscription is live. */
async function join_(pub: BusPublisher, sub: Subscriber, topic: TopicName): Promise<void> {
  const deadline = Date.now() + 10_000;
  sub.receiveTimeout = 50;
  try {
    for (;;) {
      pub.publish(topic, PROBE);
      await pub.flush(1000);
      try {
        const [, payload] = await sub.receive();
        if (payload.toString() === PROBE) return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`subscriber never joined ${pub.endpoints.join(", ")}`, { cause: e });
      }
    }
  } finally {
    sub.receiveTimeout = 5000;
  }
}

/** The next message that is not a leftover probe, as [topic, payload]. */
async function receive(sub: Subscriber): Promise<[string, Buffer]> {
  for (;;) {
    const parts = await sub.receive();
    expect(parts, "multipart [topic, payload]").toHaveLength(2);
    if (parts[1].toString() !== PROBE) return [parts[0].toString(), parts[1]];
  }
}

/** Everything that arrives until the line goes quiet for quietMs, probes left out. */
async function receiveAll(sub: Subscriber, quietMs: number): Promise<[string, Buffer][]> {
  const got: [string, Buffer][] = [];
  sub.receiveTimeout = quietMs;
  for (;;) {
    let parts: Buffer[];
    try {
      parts = await sub.receive();
    } catch {
      return got;
    }
    if (parts[1].toString() !== PROBE) got.push([parts[0].toString(), parts[1]]);
  }
}

describe.each(transports)("BusPublisher over $name", ({ name, endpoint }) => {
  it("reports the bound endpoint (the real port for tcp :0) and delivers [topic, payload] multipart messages", async () => {
    const ep = endpoint();
    const pub = await bindPublisher(ep);
    expect(pub.endpoints).toHaveLength(1);
    if (name === "tcp") {
      expect(pub.endpoints[0]).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
      expect(pub.endpoints[0]).not.toBe("tcp://127.0.0.1:0");
    } else {
      expect(pub.endpoints[0]).toBe(ep);
      expect(existsSync(ep.slice("ipc://".length)), "ipc socket file in the created folder").toBe(true);
    }

    const sub = subscribe(pub.endpoints[0], ["detections"]);
    await join_(pub, sub, "detections");
    // the monitor reports connections asynchronously
    await vi.waitFor(() => expect(pub.stats().peers).toBe(1));

    const detections = [{ classId: 0, label: "person", score: 0.5, box: [1, 2, 30, 40] as [number, number, number, number] }];
    const tIngestNs = 123_456_789_012_345_678n;
    const before = process.hrtime.bigint();
    pub.publishMessage("detections", { model: "nanodet", frameWidthPx: 640, frameHeightPx: 480, detections }, { cameraId: "front", frameSeq: 7, tIngestMonoNs: tIngestNs });
    pub.publish("detections", "a string payload");
    expect(pub.stats().nextCounter.detections, "publishMessage stamped counter 0; raw publish() stamps nothing").toBe("1");

    const [t1, p1] = await receive(sub);
    expect(t1).toBe("detections");
    const m = decodeDetections(p1);
    expect(m).toMatchObject({ camera: "front", seq: 7, counter: 0n, tIngestNs, model: "nanodet", width: 640, height: 480, detections });
    expect(m.tPublishNs >= before && m.tPublishNs <= process.hrtime.bigint(), "t_publish stamped at publishMessage()").toBe(true);
    const [t2, p2] = await receive(sub);
    expect([t2, p2.toString()]).toEqual(["detections", "a string payload"]);
    expect(pub.stats().byTopic.detections.dropped).toBe(0);
  });

  it("delivers only the topics a subscriber asked for", async () => {
    const pub = await bindPublisher(endpoint());
    const detSub = subscribe(pub.endpoints[0], ["detections"]);
    const healthSub = subscribe(pub.endpoints[0], ["health"]);
    await join_(pub, detSub, "detections");
    await join_(pub, healthSub, "health");

    for (const i of [1, 2]) {
      pub.publish("health", `h${i}`);
      pub.publish("alerts", `a${i}`);
      pub.publish("detections", `d${i}`);
    }
    await pub.flush(1000);

    const det = await receiveAll(detSub, 300);
    const health = await receiveAll(healthSub, 300);
    expect(det.map(([t, p]) => `${t}:${p.toString()}`)).toEqual(["detections:d1", "detections:d2"]);
    expect(health.map(([t, p]) => `${t}:${p.toString()}`)).toEqual(["health:h1", "health:h2"]);
  });

  it("never blocks on an absent or stalled subscriber: ZeroMQ drops for it past the high-water mark, silently", async () => {
    const pub = await bindPublisher(endpoint(), { sendHighWaterMark: 10, queueCapacity: 256 });
    const payload = new Uint8Array(4096).fill(7);

    // nobody connected: every message is accepted and discarded
    for (let batch = 0; batch < 50; batch++) {
      for (let i = 0; i < 100; i++) pub.publish("detections", payload);
      await pub.flush(5000);
    }
    expect(pub.stats()).toMatchObject({ sent: 5000, dropped: 0, queued: 0 });

    // a subscriber that stops reading after joining, with small buffers on both ends
    const sub = subscribe(pub.endpoints[0], [""], { receiveHighWaterMark: 10 });
    await join_(pub, sub, "detections");
    const before = pub.stats().sent;
    const total = 20_000;
    for (let batch = 0; batch < total / 100; batch++) {
      const t0 = performance.now();
      for (let i = 0; i < 100; i++) pub.publish("detections", payload);
      // A hang guard, not a speed check: a blocked send waits without bound, so any bound
      // far above a loaded machine's pauses tells the two apart.
      expect(performance.now() - t0, "100 publish() calls").toBeLessThan(2000);
      await pub.flush(5000);
      expect(pub.stats().queued, "our queue drains although the subscriber does not read").toBe(0);
    }
    expect(pub.stats().sent - before).toBe(total);
    expect(pub.stats().dropped).toBe(0);

    // what the subscriber finally gets is bounded by the high-water marks and socket
    // buffers, far below what was sent: the rest was dropped by ZeroMQ without a trace
    const received = await receiveAll(sub, 300);
    expect(received.length).toBeLessThan(total / 2);
  });

  it("drops the oldest queued messages when publish() outruns the send loop, and counts them", async () => {
    const drops: [TopicName, BusDropReason][] = [];
    let sentHook = 0;
    const pub = await bindPublisher(endpoint(), { queueCapacity: 8, onDrop: (t, r) => drops.push([t, r]), onSent: () => sentHook++ });
    const sub = subscribe(pub.endpoints[0], ["detections"]);
    await join_(pub, sub, "detections");
    const sentBefore = pub.stats().sent;

    const total = 1000;
    for (let i = 0; i < total; i++) pub.publish("detections", String(i));
    const mid = pub.stats();
    expect(mid.queued).toBeLessThanOrEqual(8);
    // the loop can take at most one message per turn of the event loop; we gave it none
    expect(mid.dropped).toBeGreaterThanOrEqual(total - 8 - 1);
    await pub.flush(2000);

    const s = pub.stats();
    expect(s.queued).toBe(0);
    expect(s.sent - sentBefore + s.dropped).toBe(total);
    expect(s.byTopic.detections.dropped).toBe(s.dropped);
    expect(drops).toHaveLength(s.dropped);
    expect(drops.every(([t, r]) => t === "detections" && r === "queue_full")).toBe(true);
    expect(sentHook).toBe(s.sent);

    const got = (await receiveAll(sub, 300)).map(([, p]) => Number(p.toString()));
    expect(got).toHaveLength(s.sent - sentBefore);
    // the newest survive
    expect(got.slice(-8)).toEqual([992, 993, 994, 995, 996, 997, 998, 999]);
  });

  it("refuses an endpoint another publisher holds, naming it, and leaves the holder working", async () => {
    const first = await bindPublisher(endpoint());
    const taken = first.endpoints[0];
    await expect(BusPublisher.bind([taken], { sendHighWaterMark: 10 })).rejects.toThrow(`cannot bind ${taken}`);
    if (name === "tcp") await expect(BusPublisher.bind([taken], { sendHighWaterMark: 10 })).rejects.toThrow(/address already in use/);

    const sub = subscribe(taken, ["detections"]);
    await join_(first, sub, "detections");
    first.publish("detections", "still here");
    const [, p] = await receive(sub);
    expect(p.toString()).toBe("still here");
  });

  it("closes cleanly: idempotent, later publishes counted as dropped, the endpoint free again", async () => {
    const pub = await BusPublisher.bind([endpoint()], { sendHighWaterMark: 10, lingerMs: 200 });
    const ep = pub.endpoints[0];
    const sub = subscribe(ep, ["detections"]);
    await join_(pub, sub, "detections");
    pub.publish("detections", "last words");
    await pub.close();
    await pub.close();
    const [, p] = await receive(sub);
    expect(p.toString(), "queued before close() is still delivered").toBe("last words");

    expect(() => pub.publish("detections", "too late")).not.toThrow();
    expect(pub.stats().byTopic.detections.dropped).toBe(1);
    if (name === "ipc") expect(existsSync(ep.slice("ipc://".length)), "socket file removed").toBe(false);

    const again = await bindPublisher(ep);
    expect(again.endpoints).toEqual([ep]);
  });
});

describe("BusPublisher.bind", () => {
  it("binds tcp and ipc endpoints on one socket; every subscriber gets every message", async () => {
    const both = await BusPublisher.bind(["tcp://127.0.0.1:0", transports[1].endpoint()], { sendHighWaterMark: 100, lingerMs: 100 });
    cleanups.push(() => both.close());
    const subs = both.endpoints.map((ep) => subscribe(ep, ["health"]));
    for (const s of subs) await join_(both, s, "health");
    both.publish("health", "to all");
    for (const s of subs) expect((await receive(s))[1].toString()).toBe("to all");
  });

  it("names the endpoint when it is malformed or its ipc path is too long", async () => {
    await expect(BusPublisher.bind(["udp://127.0.0.1:5"], { sendHighWaterMark: 10 })).rejects.toThrow('endpoint "udp://127.0.0.1:5": transport "udp" is not supported (tcp or ipc)');
    const long = `ipc://${join(dir, "x".repeat(120))}`;
    await expect(BusPublisher.bind([long], { sendHighWaterMark: 10 })).rejects.toThrow(`endpoint "${long}": ipc path is ${long.length - 6} bytes; a Unix socket path has at most 107`);
  });

  it("closes what it bound when a later endpoint fails", async () => {
    const holder = await bindPublisher("tcp://127.0.0.1:0");
    const ipc = transports[1].endpoint();
    await expect(BusPublisher.bind([ipc, holder.endpoints[0]], { sendHighWaterMark: 10 })).rejects.toThrow(`cannot bind ${holder.endpoints[0]}`);
    const again = await bindPublisher(ipc);
    expect(again.endpoints).toEqual([ipc]);
  });
});
