import { describe, expect, it } from "vitest";
import { FrameScheduler } from "../../src/infer/frame-slot.ts";

interface F {
  camera: string;
  seq: number;
}

const f = (camera: string, seq: number): F => ({ camera, seq });

describe("FrameScheduler, one camera", () => {
  it("hands out a waiting frame once and marks the camera in flight", () => {
    const s = new FrameScheduler<F>();
    expect(s.next()).toBeUndefined();
    expect(s.offer(f("a", 0))).toEqual({});
    expect(s.waiting).toBe(1);
    expect(s.next()).toEqual(f("a", 0));
    expect(s.waiting).toBe(0);
    expect(s.inFlight).toBe(1);
    expect(s.next()).toBeUndefined();
  });

  it("replaces the waiting frame with a newer one and returns the replaced one as dropped", () => {
    const s = new FrameScheduler<F>(["a"]);
    s.offer(f("a", 0));
    expect(s.next()?.seq).toBe(0); // in flight
    expect(s.offer(f("a", 1))).toEqual({});
    expect(s.offer(f("a", 2))).toEqual({ dropped: f("a", 1) });
    expect(s.offer(f("a", 3))).toEqual({ dropped: f("a", 2) });
    // Still in flight: nothing more goes out, whatever waits.
    expect(s.next()).toBeUndefined();
    s.done("a");
    expect(s.next()).toEqual(f("a", 3));
    s.done("a");
    expect(s.stats()).toEqual([{ camera: "a", offered: 4, dropped: 2, started: 2, finished: 2, waiting: false, inFlight: false }]);
  });

  it("never holds more than one waiting frame per camera", () => {
    const s = new FrameScheduler<F>();
    for (let i = 0; i < 100; i++) s.offer(f("a", i));
    expect(s.waiting).toBe(1);
    expect(s.next()?.seq).toBe(99);
    expect(s.stats()[0].dropped).toBe(99);
  });

  it("refuses done() for a camera with nothing in flight, naming the camera", () => {
    const s = new FrameScheduler<F>(["a"]);
    expect(() => s.done("a")).toThrow(/camera "a" has no frame in flight/);
    expect(() => s.done("zz")).toThrow(/camera "zz"/);
  });

  it("drain() empties the waiting slots and counts them as dropped", () => {
    const s = new FrameScheduler<F>(["a", "b"]);
    s.offer(f("a", 0));
    s.next();
    s.offer(f("a", 1));
    s.offer(f("b", 0));
    expect(s.drain()).toEqual([f("a", 1), f("b", 0)]);
    expect(s.waiting).toBe(0);
    expect(s.inFlight).toBe(1);
    expect(s.stats().map((x) => x.dropped)).toEqual([1, 1]);
  });

  it("rejects a frame without a camera id", () => {
    const s = new FrameScheduler<F>();
    expect(() => s.offer(f("", 0))).toThrow(TypeError);
  });
});

describe("FrameScheduler, several cameras sharing one worker", () => {
  /** Runs a shared worker: one frame at a time, every camera offering a frame before each run. */
  function simulate(cameras: string[], runs: number, offersPerRun: Record<string, number>): string[] {
    const s = new FrameScheduler<F>(cameras);
    const seq: Record<string, number> = Object.fromEntries(cameras.map((c) => [c, 0]));
    const order: string[] = [];
    for (let r = 0; r < runs; r++) {
      for (const c of cameras) for (let k = 0; k < offersPerRun[c]; k++) s.offer(f(c, seq[c]++));
      const next = s.next();
      if (next === undefined) continue;
      order.push(next.camera);
      s.done(next.camera);
    }
    return order;
  }

  it("takes turns round-robin when all cameras have frames", () => {
    expect(simulate(["a", "b", "c"], 9, { a: 1, b: 1, c: 1 })).toEqual(["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
  });

  it("does not let a fast camera starve a slow one", () => {
    // a offers 5 frames per inference, b one: each still gets every other run.
    const order = simulate(["a", "b"], 20, { a: 5, b: 1 });
    expect(order.filter((c) => c === "a")).toHaveLength(10);
    expect(order.filter((c) => c === "b")).toHaveLength(10);
  });

  it("skips cameras with nothing waiting and serves the one that has", () => {
    const s = new FrameScheduler<F>(["a", "b", "c"]);
    s.offer(f("c", 0));
    expect(s.next()?.camera).toBe("c");
    s.done("c");
    s.offer(f("a", 0));
    s.offer(f("c", 1));
    // After c comes a (wrapping round), then c again.
    expect(s.next()?.camera).toBe("a");
    s.done("a");
    expect(s.next()?.camera).toBe("c");
  });

  it("keeps at most one frame in flight per camera when several are handed out at once", () => {
    // As if two workers shared one scheduler: a camera already in flight gets no second frame.
    const s = new FrameScheduler<F>(["a", "b"]);
    s.offer(f("a", 0));
    expect(s.next()).toEqual(f("a", 0));
    s.offer(f("a", 1));
    s.offer(f("b", 0));
    expect(s.next()).toEqual(f("b", 0));
    expect(s.next()).toBeUndefined(); // a#1 waits until a#0 is done
    expect(s.inFlight).toBe(2);
    s.done("a");
    expect(s.next()).toEqual(f("a", 1));
  });

  it("adds cameras it was not told about at the end of the rotation", () => {
    const s = new FrameScheduler<F>(["a"]);
    s.offer(f("z", 0));
    s.offer(f("a", 0));
    expect(s.cameras).toEqual(["a", "z"]);
    expect(s.next()?.camera).toBe("a");
    expect(s.next()?.camera).toBe("z");
  });

  it("counts drops per camera", () => {
    const s = new FrameScheduler<F>(["a", "b"]);
    for (let i = 0; i < 4; i++) s.offer(f("a", i));
    s.offer(f("b", 0));
    expect(s.stats().map(({ camera, offered, dropped }) => ({ camera, offered, dropped }))).toEqual([
      { camera: "a", offered: 4, dropped: 3 },
      { camera: "b", offered: 1, dropped: 0 },
    ]);
  });
});

describe("FrameScheduler, a camera allowed a second frame in flight", () => {
  it("hands out a second frame while the first runs, and only when asked for ahead-capable cameras", () => {
    const s = new FrameScheduler<F>(["replay", "live"], { maxInFlight: new Map([["replay", 2]]) });
    s.offer(f("replay", 0));
    s.offer(f("live", 0));
    expect(s.next(), "idle worker: round-robin as usual").toEqual(f("replay", 0));
    s.offer(f("replay", 1));
    // The worker is busy now: only the replay may queue behind it, the live frame keeps waiting.
    expect(s.next(true)).toEqual(f("replay", 1));
    expect(s.next(true), "the live camera never queues ahead").toBeUndefined();
    s.offer(f("replay", 2));
    expect(s.next(true), "two in flight is the limit").toBeUndefined();
    expect(s.inFlight).toBe(2);
    s.done("replay");
    expect(s.next(), "the live camera's turn comes next").toEqual(f("live", 0));
    s.done("replay");
    s.done("live");
    expect(() => s.done("replay")).toThrow(/camera "replay" has no frame in flight/);
    expect(s.stats().map((x) => [x.camera, x.started, x.finished, x.inFlight, x.waiting])).toEqual([
      ["replay", 2, 2, false, true],
      ["live", 1, 1, false, false],
    ]);
  });

  it("allows as many in flight as its maxInFlight: two replay workers with a frame queued behind each", () => {
    const s = new FrameScheduler<F>(["replay"], { maxInFlight: new Map([["replay", 4]]) });
    for (let seq = 0; seq < 4; seq++) {
      s.offer(f("replay", seq));
      expect(s.next(seq > 0), `frame ${seq}`).toEqual(f("replay", seq));
    }
    s.offer(f("replay", 4));
    expect(s.next(true), "four in flight is the limit").toBeUndefined();
    expect(s.inFlight).toBe(4);
    s.done("replay");
    expect(s.next(true)).toEqual(f("replay", 4));
  });

  it("refuses a maxInFlight that is not an integer in [1, 64], naming the camera", () => {
    expect(() => new FrameScheduler<F>(["a"], { maxInFlight: new Map([["a", 0]]) })).toThrow(/maxInFlight of camera "a" must be an integer in \[1, 64\], got 0/);
    expect(() => new FrameScheduler<F>(["a"], { maxInFlight: new Map([["a", 65]]) })).toThrow(/got 65/);
    expect(() => new FrameScheduler<F>(["a"], { maxInFlight: new Map([["a", 1.5]]) })).toThrow(/got 1.5/);
  });
});
