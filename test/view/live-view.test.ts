// The live view end to end: the real daemon on config/demo.yaml (vtest.avi replayed in real
// time) with the view on, read over real HTTP, by headless Chromium (Debian's, driven by
// playwright-core, no browser download), and compared with a real ZeroMQ subscriber.
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import jpeg from "jpeg-js";
import { chromium } from "playwright-core";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BusClient } from "../../src/bus/client/index.ts";
import type { HealthBody } from "../../src/bus/codec.ts";
import { freePort, REPO, runDaemon, until, VTEST, type RunningDaemon } from "../daemon/harness.ts";
import { ALERT_COLOURS, colourForClass } from "../../src/view/overlay.ts";
import { longestRun } from "./pixels.ts";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_ALL = existsSync(VTEST) && existsSync(CHROMIUM);
if (!HAVE_ALL) console.warn(`skipping the live view tests: need ${VTEST} and ${CHROMIUM} (run \`npm run setup\`)`);

const DEMO = join(REPO, "config/demo.yaml");

function demoArgs(busPort: number, viewPort: number): string[] {
  return [
    "run", "--config", DEMO,
    "--set", "view.enabled=true", "--set", `view.port=${viewPort}`,
    // The clip lasts 80 s; looping keeps the camera running however long the machine makes these tests.
    "--set", "cameras.0.source.loop=true",
    "--set", `bus.endpoints=["tcp://127.0.0.1:${busPort}"]`,
    "--set", "metrics.port=0", "--set", "status.mode=off", "--set", "log.format=json",
  ];
}

/** The health messages a subscriber saw, newest last. */
class HealthWatch {
  readonly seen: HealthBody[] = [];
  private readonly client: BusClient;
  constructor(endpoint: string) {
    const client = new BusClient({ endpoints: [endpoint], topics: ["health"] });
    this.client = client;
    void (async () => {
      for await (const ev of client) if (ev.kind === "message" && ev.topic === "health") this.seen.push(ev.body);
    })().catch(() => undefined);
  }
  close(): void {
    this.client.close();
  }
}

let daemon: RunningDaemon;
let viewUrl: string;
let metricsUrl: string;
let watch: HealthWatch;

beforeAll(async () => {
  if (!HAVE_ALL) return;
  const busPort = await freePort();
  watch = new HealthWatch(`tcp://127.0.0.1:${busPort}`);
  daemon = runDaemon(demoArgs(busPort, 0));
  const ready = await daemon.ready(120_000);
  expect(ready.viewUrl, "READY=1 names the live view's URL").not.toBeNull();
  expect(ready.metricsUrl, "READY=1 names the metrics URL").not.toBeNull();
  viewUrl = ready.viewUrl!;
  metricsUrl = ready.metricsUrl!;
}, 180_000);

afterAll(async () => {
  watch?.close();
  if (daemon) expect(await daemon.stop(5000), `daemon exit; stderr: ${daemon.stderr()}`).toBe(0);
});

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  if (line === undefined) throw new Error(`no ${name}{${labels}} in /metrics`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** The JPEG parts of an MJPEG response, one at a time. */
class MjpegReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private buf = Buffer.alloc(0);
  received = 0;

  constructor(res: Response) {
    this.reader = res.body!.getReader();
  }

  async next(): Promise<Buffer> {
    for (;;) {
      const head = this.buf.indexOf("\r\n\r\n");
      if (head >= 0) {
        const m = /Content-Length: (\d+)/i.exec(this.buf.subarray(0, head).toString("latin1"));
        if (m === null) throw new Error(`MJPEG part without Content-Length: ${this.buf.subarray(0, head).toString("latin1")}`);
        const len = Number(m[1]);
        if (this.buf.length >= head + 4 + len + 2) {
          const jpegBytes = this.buf.subarray(head + 4, head + 4 + len);
          this.buf = this.buf.subarray(head + 4 + len + 2);
          this.received++;
          return jpegBytes;
        }
      }
      const { value, done } = await this.reader.read();
      if (done) throw new Error(`stream ended after ${this.received} frames`);
      this.buf = Buffer.concat([this.buf, value]);
    }
  }

  async close(): Promise<void> {
    await this.reader.cancel();
  }
}

/** Reads `count` JPEG parts from an MJPEG response, then closes it. */
async function mjpegFrames(res: Response, count: number): Promise<Buffer[]> {
  const r = new MjpegReader(res);
  try {
    const frames: Buffer[] = [];
    while (frames.length < count) frames.push(await r.next());
    return frames;
  } finally {
    await r.close();
  }
}

function decodeJpeg(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(0, 2).toString("hex"), "a JPEG starts with FFD8").toBe("ffd8");
  const img = jpeg.decode(bytes, { useTArray: true });
  return { width: img.width, height: img.height };
}

describe.skipIf(!HAVE_ALL)("live view on the demo config", () => {
  it("encodes nothing while nobody watches", async () => {
    // Two seconds of video through the daemon with no client.
    await until(() => (watch.seen.filter((h) => h.framesProcessed > 20n).length > 0 ? true : undefined), 60_000, () => "20 frames processed");
    expect(await metric("perceptd_frames_processed_total", 'camera="demo"')).toBeGreaterThan(20);
    expect(await metric("perceptd_view_frames_encoded_total", 'camera="demo"'), "frames encoded with no client").toBe(0);
  });

  it("answers the first frame.jpg with a frame or a 503 with Retry-After, never an empty 200", async () => {
    const res = await fetch(`${viewUrl}/cameras/demo/frame.jpg`);
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status === 503) {
      expect(res.headers.get("retry-after"), "503 without Retry-After").toBe("1");
      expect(body.toString()).toMatch(/no annotated frame of camera demo/);
    } else {
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/jpeg");
      expect(body.length, "a 200 carries a frame").toBeGreaterThan(1000);
      expect(decodeJpeg(body)).toEqual({ width: 768, height: 576 });
    }
    // Either way, a frame is there on asking again.
    let again: Response | undefined;
    for (let i = 0; i < 10 && again?.status !== 200; i++) again = await fetch(`${viewUrl}/cameras/demo/frame.jpg`);
    expect(again?.status, "frame.jpg after retrying").toBe(200);
    expect(decodeJpeg(Buffer.from(await again!.arrayBuffer()))).toEqual({ width: 768, height: 576 });
  });

  it("streams MJPEG to two clients at once", async () => {
    const [a, b] = await Promise.all([fetch(`${viewUrl}/cameras/demo/stream.mjpeg`), fetch(`${viewUrl}/cameras/demo/stream.mjpeg`)]);
    expect(a.headers.get("content-type")).toMatch(/^multipart\/x-mixed-replace; boundary=/);
    const clients = metric("perceptd_view_clients", 'camera="demo"');
    const [fa, fb] = await Promise.all([mjpegFrames(a, 3), mjpegFrames(b, 3)]);
    expect(await clients, "clients while both streams are open").toBe(2);
    for (const f of [...fa, ...fb]) expect(decodeJpeg(f)).toEqual({ width: 768, height: 576 });
    expect(await metric("perceptd_view_frames_encoded_total", 'camera="demo"')).toBeGreaterThanOrEqual(3);
  });

  it("gives a client that does not read fewer frames, without holding up the others or the daemon", async () => {
    const { hostname, port } = new URL(viewUrl);
    const stalled = connect({ host: hostname, port: Number(port) });
    await new Promise<void>((resolve) => stalled.once("connect", resolve));
    stalled.write("GET /cameras/demo/stream.mjpeg HTTP/1.1\r\nHost: perceptd\r\n\r\n");
    // Never read: the socket's buffers fill, and the view must skip it from then on.
    stalled.pause();
    try {
      const before = await metric("perceptd_frames_processed_total", 'camera="demo"');
      const skippedBefore = await metric("perceptd_view_frames_skipped_total", 'camera="demo"');
      const reader = new MjpegReader(await fetch(`${viewUrl}/cameras/demo/stream.mjpeg`));
      try {
        const deadline = performance.now() + 60_000;
        while ((await metric("perceptd_view_frames_skipped_total", 'camera="demo"')) === skippedBefore) {
          if (performance.now() > deadline) throw new Error("no frame was ever skipped for the client that does not read");
          await reader.next();
        }
        for (let i = 0; i < 3; i++) await reader.next();
        expect(reader.received, "frames the reading client got meanwhile").toBeGreaterThanOrEqual(4);
      } finally {
        await reader.close();
      }
      expect(await metric("perceptd_frames_processed_total", 'camera="demo"'), "the daemon kept processing").toBeGreaterThan(before);
    } finally {
      stalled.destroy();
    }
  }, 90_000);

  it("shows the page in Chromium with an annotated frame, and the health the bus carries", async () => {
    const profile = await mkdtemp(join(tmpdir(), "perceptd-chromium-"));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 800 },
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    try {
      const page = await browser.newPage();
      await page.goto(viewUrl);
      const img = page.locator('.tile[data-camera="demo"] img');
      // A frame in the tile and the first state poll answered (evaluated in the page).
      await page.waitForFunction(
        `(() => { const i = document.querySelector('.tile[data-camera="demo"] img'); return i !== null && i.naturalWidth > 0 && document.querySelector(".badge").textContent !== "…"; })()`,
        undefined,
        { timeout: 20_000 },
      );
      const shot = PNG.sync.read(await img.screenshot());
      expect(spread(shot), "the frame is not blank").toBeGreaterThan(20);
      const boxColours = [colourForClass(0), ALERT_COLOURS.info, ALERT_COLOURS.warning, ALERT_COLOURS.critical];
      // A label tag or box edge (raw frames stay under 20 px, see longestRun).
      expect(longestRun({ ...shot, channels: 4 }, boxColours), "a drawn box edge: a run of box-coloured pixels").toBeGreaterThanOrEqual(50);

      // The page's state and /state.json say what the bus said in the same moment.
      const badge = await page.locator('.tile[data-camera="demo"] .badge').textContent();
      const state = (await (await fetch(`${viewUrl}/state.json`)).json()) as { health: { state: string; reasons: string[] }; cameras: { id: string }[] };
      // The subscriber may still be receiving the message state.json was made from.
      const want = JSON.stringify([state.health.state, state.health.reasons]);
      const onBus = (h: HealthBody): string => JSON.stringify([h.state.replace(/^STATE_/, ""), h.reasons]);
      await until(() => (watch.seen.slice(-20).some((h) => onBus(h) === want) ? true : undefined), 2000, () => `state.json's health ${want} among the last health messages on the bus: ${watch.seen.slice(-3).map(onBus).join(" | ")}`);
      expect(watch.seen.slice(-50).map((h) => h.state.replace(/^STATE_/, "")), "the page's badge shows a state the bus carried").toContain(badge);
      expect(state.cameras.map((c) => c.id)).toEqual(["demo"]);
    } finally {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    }
  }, 60_000);

  it("answers 404 for an unknown camera and a path outside its routes, 405 for a POST", async () => {
    const cam = await fetch(`${viewUrl}/cameras/rear/frame.jpg`);
    expect(cam.status).toBe(404);
    expect(await cam.text()).toMatch(/no camera "rear" \(cameras: demo\)/);
    const stream = await fetch(`${viewUrl}/cameras/rear/stream.mjpeg`);
    expect(stream.status).toBe(404);
    const other = await fetch(`${viewUrl}/metrics`);
    expect(other.status).toBe(404);
    expect(await other.text()).toMatch(/not found: \/metrics \(routes: /);
    const post = await fetch(`${viewUrl}/state.json`, { method: "POST" });
    expect(post.status).toBe(405);
  });

  it("warns when bound beyond loopback, and refuses to start when the port is taken, naming it (exit 1)", async () => {
    const port = Number(new URL(viewUrl).port);
    // All addresses: the warning comes first, then the bind fails on the port the first daemon holds.
    const second = runDaemon([...demoArgs(await freePort(), port), "--set", "view.host=0.0.0.0"]);
    const code = await second.exited;
    expect(code, `exit status; stderr: ${second.stderr()}`).toBe(1);
    expect(second.stderr()).toContain(`live view: cannot listen on 0.0.0.0:${port}: address already in use`);
    expect(second.stderr()).toContain("set view.port");
    const warning = second.logs.find((l) => l.level === "warn" && l.component === "view");
    expect(warning?.msg, "the warning about a view beyond loopback").toMatch(/^live view bound to 0\.0\.0\.0: anyone who can reach it sees the cameras/);
  }, 60_000);
});

/** Standard deviation of the green channel: a blank frame has none. */
function spread(png: PNG): number {
  let sum = 0;
  let sq = 0;
  const n = png.width * png.height;
  for (let i = 0; i < n; i++) {
    const g = png.data[i * 4 + 1];
    sum += g;
    sq += g * g;
  }
  const mean = sum / n;
  return Math.sqrt(sq / n - mean * mean);
}
