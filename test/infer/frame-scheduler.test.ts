// The scheduling policy on fake workers: which frame goes where, and when, without a model.
import { describe, expect, it } from "vitest";
import { FrameScheduler, backpressure, latestWins, type DropReason, type SchedulerError, type SchedulingPolicy } from "../../src/infer/frame-scheduler.ts";

interface F {
  camera: string;
  seq: number;
}

const f = (camera: string, seq: number): F => ({ camera, seq });

/** A worker that holds its frames until the test finishes them. */
class FakeWorker {
  alive = true;
  readonly pending: { frame: F; resolve: (r: F) => void; reject: (e: Error) => void }[] = [];
  /** every frame it was given, in order */
  readonly took: F[] = [];

  constructor(readonly depth: 1 | 2 = 1) {}

  get inFlight(): number {
    return this.pending.length;
  }

  infer(frame: F): Promise<F> {
    if (this.pending.length >= this.depth) return Promise.reject(new Error(`fake worker: over depth with ${frame.camera}#${frame.seq}`));
    this.took.push(frame);
    return new Promise((resolve, reject) => this.pending.push({ frame, resolve, reject }));
  }

  /** Finishes the frame at `i` of those it holds (default: the oldest) and lets the scheduler react. */
  async finish(i = 0, error?: Error): Promise<void> {
    const [p] = this.pending.splice(i, 1);
    if (error === undefined) p.resolve(p.frame);
    else p.reject(error);
    await new Promise((r) => setImmediate(r));
  }
}

interface Rec {
  results: string[];
  drops: { camera: string; seq: number; reason: DropReason }[];
  errors: SchedulerError[];
}

function scheduler(lanes: { cameras: string[]; workers: FakeWorker[] }[], policies: Record<string, SchedulingPolicy> = {}): { s: FrameScheduler<F, F, FakeWorker>; rec: Rec } {
  const rec: Rec = { results: [], drops: [], errors: [] };
  const s = new FrameScheduler<F, F, FakeWorker>({
    lanes,
    policies: new Map(Object.entries(policies)),
    onResult: (r) => rec.results.push(`${r.camera}#${r.seq}`),
    onDrop: (fr, reason) => rec.drops.push({ ...fr, reason }),
    onError: (e) => rec.errors.push(e),
  });
  return { s, rec };
}

const seqs = (w: FakeWorker): string[] => w.took.map((x) => `${x.camera}#${x.seq}`);

describe("FrameScheduler, latest wins, one camera", () => {
  it("hands a frame to an idle worker at once and marks the camera in flight", () => {
    const w = new FakeWorker();
    const { s } = scheduler([{ cameras: ["a"], workers: [w] }]);
    s.submit(f("a", 0));
    expect(seqs(w)).toEqual(["a#0"]);
    expect(s.stats()[0]).toMatchObject({ waiting: false, inFlight: true, started: 1 });
  });

  it("replaces the waiting frame with a newer one and drops the replaced one", async () => {
    const w = new FakeWorker();
    const { s, rec } = scheduler([{ cameras: ["a"], workers: [w] }]);
    for (let seq = 0; seq < 4; seq++) s.submit(f("a", seq));
    expect(rec.drops).toEqual([
      { camera: "a", seq: 1, reason: "replaced" },
      { camera: "a", seq: 2, reason: "replaced" },
    ]);
    // Still in flight: nothing more goes out, whatever waits.
    expect(seqs(w)).toEqual(["a#0"]);
    await w.finish();
    expect(seqs(w)).toEqual(["a#0", "a#3"]);
    await w.finish();
    expect(rec.results).toEqual(["a#0", "a#3"]);
    expect(s.stats()).toEqual([{ camera: "a", offered: 4, dropped: 2, started: 2, finished: 2, waiting: false, inFlight: false, completed: 2, errors: 0, workers: [0] }]);
  });

  it("never holds more than one waiting frame per camera", async () => {
    const w = new FakeWorker();
    const { s } = scheduler([{ cameras: ["a"], workers: [w] }]);
    for (let i = 0; i < 100; i++) s.submit(f("a", i));
    expect(s.stats()[0]).toMatchObject({ waiting: true, dropped: 98 });
    await w.finish();
    expect(w.took.at(-1)?.seq).toBe(99);
  });

  it("close() drops the waiting frames, later frames too, and counts them as dropped", () => {
    const w = new FakeWorker();
    const { s, rec } = scheduler([{ cameras: ["a", "b"], workers: [w] }]);
    s.submit(f("a", 0));
    s.submit(f("a", 1));
    s.submit(f("b", 0));
    s.close();
    expect(rec.drops).toEqual([
      { camera: "a", seq: 1, reason: "closed" },
      { camera: "b", seq: 0, reason: "closed" },
    ]);
    expect(s.stats().map((x) => [x.dropped, x.waiting, x.inFlight])).toEqual([
      [1, false, true],
      [1, false, false],
    ]);
    s.submit(f("a", 2));
    expect(rec.drops.at(-1)).toEqual({ camera: "a", seq: 2, reason: "closed" });
    expect(seqs(w)).toEqual(["a#0"]);
  });

  it("refuses a camera id that is empty or listed twice, and a frame from a camera it was not given", () => {
    expect(() => scheduler([{ cameras: [""], workers: [new FakeWorker()] }])).toThrow(TypeError);
    expect(() => scheduler([{ cameras: ["a"], workers: [] }, { cameras: ["a"], workers: [] }])).toThrow(/camera "a" is listed twice/);
    const { s } = scheduler([{ cameras: ["a"], workers: [new FakeWorker()] }]);
    expect(() => s.submit(f("z", 0))).toThrow(/unknown camera "z"; known cameras: a/);
  });
});

describe("FrameScheduler, whenSlotFree", () => {
  it("is null while the slot is empty, and resolves once a worker takes the waiting frame or at close()", async () => {
    const w = new FakeWorker();
    const { s } = scheduler([{ cameras: ["a"], workers: [w] }]);
    expect(s.whenSlotFree("a")).toBeNull();
    s.submit(f("a", 0));
    expect(s.whenSlotFree("a"), "a#0 went to the worker").toBeNull();
    s.submit(f("a", 1));
    let freed = false;
    void s.whenSlotFree("a")?.then(() => (freed = true));
    await new Promise((r) => setImmediate(r));
    expect(freed).toBe(false);
    await w.finish();
    expect(freed).toBe(true);
    s.submit(f("a", 2));
    const pending = s.whenSlotFree("a");
    expect(pending).not.toBeNull();
    s.close();
    await pending;
    expect(s.whenSlotFree("a"), "closed").toBeNull();
    expect(s.whenSlotFree("nope"), "unknown camera").toBeNull();
  });
});

describe("FrameScheduler, several cameras sharing one worker", () => {
  /** Runs a shared worker: every camera offers its frames, then the frame in flight finishes. */
  async function simulate(cameras: string[], runs: number, offersPerRun: Record<string, number>): Promise<string[]> {
    const w = new FakeWorker();
    const { s } = scheduler([{ cameras, workers: [w] }]);
    const seq: Record<string, number> = Object.fromEntries(cameras.map((c) => [c, 0]));
    for (let r = 0; r < runs; r++) {
      for (const c of cameras) for (let k = 0; k < offersPerRun[c]; k++) s.submit(f(c, seq[c]++));
      if (w.inFlight > 0) await w.finish();
    }
    return w.took.slice(0, runs).map((x) => x.camera);
  }

  it("takes turns round-robin when all cameras have frames", async () => {
    expect(await simulate(["a", "b", "c"], 9, { a: 1, b: 1, c: 1 })).toEqual(["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
  });

  it("does not let a fast camera starve a slow one", async () => {
    // a offers 5 frames per inference, b one: each still gets every other run.
    const order = await simulate(["a", "b"], 20, { a: 5, b: 1 });
    expect(order.filter((c) => c === "a")).toHaveLength(10);
    expect(order.filter((c) => c === "b")).toHaveLength(10);
  });

  it("skips cameras with nothing waiting and serves the one that has", async () => {
    const w = new FakeWorker();
    const { s } = scheduler([{ cameras: ["a", "b", "c"], workers: [w] }]);
    s.submit(f("c", 0));
    s.submit(f("a", 0));
    s.submit(f("c", 1));
    // After c comes a (wrapping round), then c again.
    await w.finish();
    await w.finish();
    expect(seqs(w)).toEqual(["c#0", "a#0", "c#1"]);
  });

  it("counts drops per camera", () => {
    const { s } = scheduler([{ cameras: ["a", "b"], workers: [new FakeWorker()] }]);
    for (let i = 0; i < 4; i++) s.submit(f("a", i));
    s.submit(f("b", 0));
    expect(s.stats().map(({ camera, offered, dropped }) => ({ camera, offered, dropped }))).toEqual([
      { camera: "a", offered: 4, dropped: 2 },
      { camera: "b", offered: 1, dropped: 0 },
    ]);
  });
});

describe("FrameScheduler, a lane of several workers", () => {
  it("keeps one frame in flight per latest-wins camera, however many workers are idle", async () => {
    const [w0, w1] = [new FakeWorker(), new FakeWorker()];
    const { s } = scheduler([{ cameras: ["a", "b"], workers: [w0, w1] }]);
    s.submit(f("a", 0));
    s.submit(f("a", 1)); // waits until a#0 is done, though w1 is idle
    s.submit(f("b", 0));
    expect([seqs(w0), seqs(w1)]).toEqual([["a#0"], ["b#0"]]);
    expect(s.stats().map((x) => x.inFlight)).toEqual([true, true]);
    await w0.finish();
    expect(seqs(w0)).toEqual(["a#0", "a#1"]);
  });

  it("gives each lane its own workers: per-camera lanes run side by side", () => {
    const [w0, w1] = [new FakeWorker(), new FakeWorker()];
    const { s } = scheduler([
      { cameras: ["a"], workers: [w0] },
      { cameras: ["b"], workers: [w1] },
    ]);
    s.submit(f("a", 0));
    s.submit(f("b", 0));
    expect([seqs(w0), seqs(w1)]).toEqual([["a#0"], ["b#0"]]);
    expect(s.stats().map((x) => x.workers)).toEqual([[0], [1]]);
    expect([s.camerasOf(0), s.camerasOf(1)]).toEqual([["a"], ["b"]]);
  });
});

describe("FrameScheduler, backpressure (a replay queued ahead in the worker)", () => {
  it("queues a replay's next frame behind the running one on a lane of its own", async () => {
    const w = new FakeWorker(2);
    const { s } = scheduler([{ cameras: ["replay"], workers: [w] }], { replay: backpressure });
    s.submit(f("replay", 0));
    s.submit(f("replay", 1));
    expect(seqs(w), "the next frame waits in the worker behind the running one").toEqual(["replay#0", "replay#1"]);
    s.submit(f("replay", 2));
    expect(w.inFlight, "two in flight is the limit").toBe(2);
    await w.finish();
    expect(seqs(w)).toEqual(["replay#0", "replay#1", "replay#2"]);
  });

  it("queues nothing ahead on a lane that also serves a live camera: a replay that never stops does not starve it", async () => {
    const w = new FakeWorker(2);
    const { s, rec } = scheduler([{ cameras: ["replay", "live"], workers: [w] }], { replay: backpressure, live: latestWins });
    let next = 0;
    // an unpaced replay: its slot is refilled as soon as a worker takes its frame
    const refill = (): void => {
      while (s.whenSlotFree("replay") === null && next < 50) s.submit(f("replay", next++));
    };
    refill();
    s.submit(f("live", 0));
    refill();
    expect(seqs(w), "with a live camera on the lane the replay's next frame does not queue in the busy worker").toEqual(["replay#0"]);
    await w.finish();
    refill();
    expect(seqs(w), "the live camera's turn comes after one replay frame").toEqual(["replay#0", "live#0"]);
    s.submit(f("live", 1));
    await w.finish();
    refill();
    await w.finish();
    refill();
    expect(seqs(w), "then they take turns").toEqual(["replay#0", "live#0", "replay#1", "live#1"]);
    expect(rec.drops, "no replay frame is dropped").toEqual([]);
  });

  it("allows two in flight per worker: two replay workers with a frame queued behind each, results in frame order", async () => {
    const [w0, w1] = [new FakeWorker(2), new FakeWorker(2)];
    const { s, rec } = scheduler([{ cameras: ["replay"], workers: [w0, w1] }], { replay: backpressure });
    for (let seq = 0; seq < 5; seq++) s.submit(f("replay", seq));
    // An idle worker first, so the frames spread over both sessions.
    expect([seqs(w0), seqs(w1)]).toEqual([
      ["replay#0", "replay#2"],
      ["replay#1", "replay#3"],
    ]);
    expect(s.stats()[0]).toMatchObject({ waiting: true, started: 4, workers: [0, 1] });
    // replay#1 finishes first but waits for replay#0, and keeps its slot in flight meanwhile.
    await w1.finish();
    expect(rec.results).toEqual([]);
    expect(seqs(w1)).toEqual(["replay#1", "replay#3"]);
    await w0.finish();
    expect(rec.results).toEqual(["replay#0", "replay#1"]);
    expect(seqs(w0).at(-1)).toBe("replay#4");
  });

  it("policies: latest wins holds one frame in flight; backpressure two per worker of the lane", () => {
    expect([latestWins.maxInFlight(1), latestWins.maxInFlight(3), latestWins.queueAhead]).toEqual([1, 1, false]);
    expect([backpressure.maxInFlight(1), backpressure.maxInFlight(3), backpressure.queueAhead]).toEqual([2, 6, true]);
  });
});

describe("FrameScheduler, failures", () => {
  it("reports a failed frame on a live worker with its camera, counts it, and goes on with the next", async () => {
    const w = new FakeWorker();
    const { s, rec } = scheduler([{ cameras: ["a"], workers: [w] }]);
    s.submit(f("a", 0));
    s.submit(f("a", 1));
    await w.finish(0, new Error("bad frame"));
    expect(rec.errors).toMatchObject([{ fatal: false, worker: 0, camera: "a", seq: 0 }]);
    expect(seqs(w)).toEqual(["a#0", "a#1"]);
    await w.finish();
    expect(s.stats()[0]).toMatchObject({ errors: 1, completed: 1, finished: 2 });
  });

  it("counts but does not report a frame lost with its worker, and resumes on a replacement", async () => {
    const old = new FakeWorker();
    const { s, rec } = scheduler([{ cameras: ["a"], workers: [old] }]);
    s.submit(f("a", 0));
    s.submit(f("a", 1));
    old.alive = false;
    await old.finish(0, new Error("terminated"));
    expect(old.took).toHaveLength(1);
    const running = s.running(0);
    expect(running).toEqual([]);
    const fresh = new FakeWorker();
    s.setWorker(0, fresh);
    expect(s.worker(0)).toBe(fresh);
    expect(seqs(fresh)).toEqual(["a#1"]);
    expect(rec.errors).toEqual([]);
    expect(s.stats()[0]).toMatchObject({ errors: 1, dropped: 0 });
  });
});
