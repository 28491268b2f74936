// A full garbage collection of the bench's own heap, on demand, before each timed window.
//
// Why: the bench times the daemon from a subscriber in its own process, and its heap still
// holds what earlier scenarios left behind (decoded video, ONNX Runtime tensors, /metrics
// text). When V8 chose to reclaim that with a mark-compact during a window, the pause
// (17-29 ms in traced runs of (c) on the 2-core build VM) landed beside frames being
// timed. Collected up front, between scenarios, the heap starts each window with only what
// is still in use; in three traced runs after the change no mark-compact of the bench's
// ran in a window.
//
// How: Node offers gc() only behind --expose-gc, and the bench runs inside the perceptd
// CLI, which is not started with it. Setting the flag at run time makes V8 install gc() in
// contexts created afterwards, so a fresh vm context hands it over (the same two calls
// jest's leak detector makes).
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gc: (() => void) | undefined;

/** Runs a full, blocking collection of this thread's heap now. */
export function collectGarbage(): void {
  if (gc === undefined) {
    setFlagsFromString("--expose-gc");
    const exposed: unknown = runInNewContext("gc");
    if (typeof exposed !== "function") throw new Error("collectGarbage: V8 did not expose gc() after --expose-gc");
    gc = exposed as () => void;
  }
  gc();
}
