// examples/python-consumer/consumer.py, the ECU-side Python consumer, against the real
// daemon (as test/daemon/harness.ts starts it) and against frames a test publisher sends: a
// frame captured from the daemon, the same frame with one byte flipped, counters out of
// order, a message on the wrong topic. It needs protoc and Debian's python3-zmq and
// python3-protobuf (scripts/setup.sh installs them); without them the suite is skipped,
// saying why, except under CI, where a missing prerequisite fails it rather than hiding it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Publisher, Subscriber } from "zeromq";
import { BusEncoder, crcOffset, decodeFrame } from "../../src/bus/codec.ts";
import { TOPIC_NAMES, TOPICS } from "../../src/bus/topics.ts";
import { baseConfig, DEFAULT_MODEL, freePort, REPO, runDaemon, writeConfig, type RunningDaemon } from "../daemon/harness.ts";

// Debian's interpreter: a pyenv or venv python3 earlier on PATH lacks the Debian modules.
const PYTHON = process.env.PERCEPTD_PYTHON ?? "/usr/bin/python3";
const CONSUMER = join(REPO, "examples/python-consumer/consumer.py");

/** Why the consumer cannot run on this machine, or null when it can. */
function missingPrerequisites(): string | null {
  const missing: string[] = [];
  const protoc = spawnSync("protoc", ["--version"], { encoding: "utf8" });
  if (protoc.error || protoc.status !== 0) missing.push("protoc (apt-get install protobuf-compiler)");
  for (const [module, pkg] of [
    ["zmq", "python3-zmq"],
    ["google.protobuf", "python3-protobuf"],
  ]) {
    const py = spawnSync(PYTHON, ["-c", `import ${module}`], { encoding: "utf8" });
    if (py.error) {
      missing.push(`${PYTHON} (${py.error.message})`);
      break;
    }
    if (py.status !== 0) missing.push(`${PYTHON} module ${module} (apt-get install ${pkg})`);
  }
  return missing.length ? `missing ${missing.join(", ")}; scripts/setup.sh installs them` : null;
}

const MISSING = missingPrerequisites();
const SKIP = MISSING !== null && !process.env.CI;
if (SKIP) console.warn(`python consumer tests skipped: ${MISSING}`);

/** One JSON line of consumer.py: a message (has crc_ok) or a topic going stale (NO_NEW_DATA). */
interface Line {
  topic: string;
  e2e: "OK" | "REPEATED" | "WRONG_SEQUENCE" | "ERROR" | "NO_NEW_DATA";
  counter?: number | null;
  crc_ok?: boolean | null;
  detail?: string;
  valid?: boolean;
  summary?: Record<string, unknown>;
}

const isMessage = (l: Line): boolean => "crc_ok" in l;

interface Consumer {
  child: ChildProcess;
  lines: Line[];
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | string>;
  waitFor(pred: (l: Line) => boolean, n?: number, timeoutMs?: number): Promise<Line[]>;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function consumer(args: string[]): Consumer {
  const child = spawn(PYTHON, [CONSUMER, ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  const lines: Line[] = [];
  let out = "";
  let buf = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    out += s;
    buf += s;
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Line);
  });
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exited = new Promise<number | string>((res) => {
    child.on("error", (e) => ((err += `\nspawn error: ${e.message}`), res(-1)));
    child.on("exit", (code, sig) => res(code ?? sig ?? -1));
  });
  cleanups.push(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"));
  return {
    child,
    lines,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(pred, n = 1, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (lines.filter(pred).length < n) {
        if (Date.now() > deadline) throw new Error(`fewer than ${n} matching lines in ${timeoutMs} ms; stdout: ${out.slice(-2000)}; stderr: ${err.slice(-2000)}`);
        if (child.exitCode !== null) throw new Error(`consumer exited (${child.exitCode}) with fewer than ${n} matching lines; stdout: ${out.slice(-2000)}; stderr: ${err.slice(-2000)}`);
        await sleep(20);
      }
      return lines.filter(pred);
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A copy of `frame` with the byte at `at` inverted. */
function flipped(frame: Buffer, at: number): Buffer {
  const f = Buffer.from(frame);
  f[at] ^= 0xff;
  return f;
}

/** Frames as the daemon published them, [topic, payload]. */
interface Captured {
  detections: Buffer[];
  health: Buffer[];
}

describe.skipIf(SKIP)(SKIP ? `examples/python-consumer (skipped: ${MISSING})` : "examples/python-consumer", () => {
  let daemon: RunningDaemon | undefined;
  let endpoint = "";
  const captured: Captured = { detections: [], health: [] };

  beforeAll(async () => {
    if (MISSING) throw new Error(`CI is set, so the python consumer must run: ${MISSING}`);
    const port = await freePort();
    endpoint = `tcp://127.0.0.1:${port}`;
    const cfg = await writeConfig(baseConfig(port, { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 15 }));
    daemon = runDaemon(["run", "--config", cfg]);
    await daemon.ready();

    // Frames for the publisher tests below, straight off the daemon's socket.
    const sub = new Subscriber({ receiveTimeout: 20_000 });
    sub.connect(endpoint);
    sub.subscribe("detections");
    sub.subscribe("health");
    try {
      while (captured.detections.length < 1 || captured.health.length < 3) {
        const [topic, frame] = await sub.receive();
        const t = topic.toString();
        if ((t === "detections" || t === "health") && captured[t].length < 3) captured[t].push(Buffer.from(frame));
      }
    } finally {
      sub.close();
    }
  });

  afterAll(async () => {
    if (daemon) expect(await daemon.stop(), `daemon exit; stderr: ${daemon.stderr().slice(-2000)}`).toBe(0);
  });

  it("uses the topic table of src/bus/topics.ts", async () => {
    const c = consumer(["--list-topics"]);
    expect(await c.exited, c.stderr()).toBe(0);
    const table = JSON.parse(c.stdout()) as Record<string, { message: string; data_id: number; stale_after_ms: number }>;
    expect(Object.keys(table), "topics, in subscription order").toEqual([...TOPIC_NAMES]);
    for (const t of TOPIC_NAMES)
      expect({ message: `perceptd.v1.${table[t].message}`, dataId: table[t].data_id, staleAfterMs: table[t].stale_after_ms }, t).toEqual({
        message: TOPICS[t].message,
        dataId: TOPICS[t].dataId,
        staleAfterMs: TOPICS[t].staleAfterMs,
      });
  });

  it("checks 20 of the daemon's messages: CRC right, counters in sequence, exit 0", async () => {
    const c = consumer(["--endpoint", endpoint, "--count", "20", "--timeout", "60"]);
    expect(await c.exited, `exit code; stderr: ${c.stderr()}`).toBe(0);
    const messages = c.lines.filter(isMessage);
    expect(messages, c.stdout()).toHaveLength(20);
    for (const m of messages) expect(m.crc_ok, JSON.stringify(m)).toBe(true);

    for (const topic of ["detections", "health"]) {
      const ofTopic = messages.filter((m) => m.topic === topic);
      expect(ofTopic.length, `${topic} messages among 20; stdout: ${c.stdout()}`).toBeGreaterThan(0);
      // The first of a topic is OK too (no reference yet); every later one must follow it.
      for (const m of ofTopic.slice(1)) expect(m.e2e, JSON.stringify(m)).toBe("OK");
      const counters = ofTopic.map((m) => m.counter as number);
      expect(counters, `${topic} counters`).toEqual(counters.map((_, i) => counters[0] + i));
    }
    const det = messages.find((m) => m.topic === "detections")!;
    expect(det.summary).toMatchObject({ camera_id: "cam0", model: DEFAULT_MODEL });
    expect(typeof det.summary!.detections).toBe("number");
    const health = messages.find((m) => m.topic === "health")!;
    expect(health.summary!.state).toMatch(/^STATE_(STARTING|OK|DEGRADED)$/);
    expect(health.summary!.cameras).toHaveProperty("cam0");
  });

  /** A consumer on a publisher of our own, receiving: alerts (its last subscription) get through. */
  async function consumerOnTestPublisher(extraArgs: string[] = []): Promise<{ c: Consumer; pub: Publisher }> {
    const port = await freePort();
    const pub = new Publisher({ linger: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    cleanups.push(() => pub.close());
    const c = consumer(["--endpoint", `tcp://127.0.0.1:${port}`, "--timeout", "60", ...extraArgs]);
    // PUB drops what it sends before the subscriptions arrive; they arrive in the order they
    // were made, and alerts is the last, so once an alerts message gets through, all do.
    const enc = new BusEncoder();
    const deadline = Date.now() + 30_000;
    while (!c.lines.some((l) => l.topic === "alerts" && isMessage(l))) {
      if (Date.now() > deadline || c.child.exitCode !== null) throw new Error(`consumer never received; stderr: ${c.stderr()}`);
      await pub.send(["alerts", enc.encode("alerts", { alerts: [] })]);
      await sleep(25);
    }
    return { c, pub };
  }

  it("reports a frame with one byte flipped as crc_ok false, and counter and data_id faults", async () => {
    const det = captured.detections[0];
    const [h0, h1, h2] = captured.health;
    const c0 = decodeFrame("detections", det).header.counter;
    expect([h0, h1, h2].map((h) => decodeFrame("health", h).header.counter - decodeFrame("health", h0).header.counter), "captured health counters").toEqual([0n, 1n, 2n]);
    const afterCrc = crcOffset(det) + 4; // first byte of the Header after the CRC

    const { c, pub } = await consumerOnTestPublisher();
    const script: [string, Buffer][] = [
      ["detections", det],
      ["detections", det],
      ["detections", flipped(det, det.length - 1)],
      ["detections", flipped(det, afterCrc)],
      ["health", h0],
      ["health", h2],
      ["detections", h1],
      ["health", Buffer.from("not a perceptd frame")],
    ];
    for (const m of script) await pub.send(m);
    const got = await c.waitFor((l) => isMessage(l) && l.topic !== "alerts", script.length);
    c.child.kill("SIGTERM");
    expect(await c.exited, `exit code after SIGTERM; stderr: ${c.stderr()}`).toBe(0);

    const brief = got.map((l) => ({ topic: l.topic, crc_ok: l.crc_ok, e2e: l.e2e, counter: l.counter }));
    const hc = Number(decodeFrame("health", h0).header.counter);
    expect(brief).toEqual([
      { topic: "detections", crc_ok: true, e2e: "OK", counter: Number(c0) },
      { topic: "detections", crc_ok: true, e2e: "REPEATED", counter: Number(c0) },
      { topic: "detections", crc_ok: false, e2e: "ERROR", counter: null },
      { topic: "detections", crc_ok: false, e2e: "ERROR", counter: null },
      { topic: "health", crc_ok: true, e2e: "OK", counter: hc },
      { topic: "health", crc_ok: true, e2e: "WRONG_SEQUENCE", counter: hc + 2 },
      { topic: "detections", crc_ok: true, e2e: "ERROR", counter: null },
      { topic: "health", crc_ok: false, e2e: "ERROR", counter: null },
    ]);
    expect(got[2].detail).toMatch(/^crc: CRC-32C mismatch/);
    expect(got[3].detail).toMatch(/^crc: CRC-32C mismatch/);
    expect(got[5].detail).toBe(`counter ${hc + 2} after ${hc}: 1 message missing`);
    expect(got[6].detail).toMatch(/^data_id: data_id 2 on topic detections/);
    expect(got[7].detail).toMatch(/^layout: /);
  });

  it("exits 1 at the first CRC failure under --strict", async () => {
    const det = captured.detections[0];
    const { c, pub } = await consumerOnTestPublisher(["--strict"]);
    await pub.send(["detections", det]);
    await c.waitFor((l) => isMessage(l) && l.topic === "detections");
    await pub.send(["detections", flipped(det, det.length - 1)]);
    expect(await c.exited, `exit code; stdout: ${c.stdout()}`).toBe(1);
    expect(c.lines.filter((l) => isMessage(l) && l.topic === "detections").map((l) => l.crc_ok)).toEqual([true, false]);
    expect(c.stderr()).toMatch(/--strict: crc: CRC-32C mismatch/);
  });
});
