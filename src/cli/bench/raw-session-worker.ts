// One ONNX Runtime session in its own thread for the bench's side-by-side raw loop
// (raw-sessions.ts): warms up, says ready, waits for "go" so every session starts together,
// times `runs` sequential runs over its frames, reports them, and waits to be ended.
//
// The thread always ends by itself: on "end" (at any point, also before "go" or between
// runs) it stops running, releases the session and closes its port. The main thread must not
// terminate() it meanwhile: a thread ended inside a native ORT call aborts the whole process
// (see InferenceWorker.terminate in src/infer/inference-worker.ts).
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { createSession, type SessionOptions } from "../../infer/session.ts";
import { timedRun } from "./timed-run.ts";

export interface RawSessionWorkerData {
  model: Uint8Array;
  session: SessionOptions;
  inputName: string;
  dims: number[];
  /** this session's frames, each one input tensor's data (its type is the tensor's), run in turn */
  frames: (Uint8Array | Float32Array)[];
  warmup: number;
  runs: number;
}

export type RawSessionWorkerMessage =
  | { type: "ready" }
  | { type: "done"; samplesMs: number[]; startNs: bigint; endNs: bigint }
  | { type: "error"; message: string };

export type RawSessionMainMessage = { type: "go" } | { type: "end" };

const port = parentPort;
if (port === null) throw new Error("raw-session-worker.ts runs only as a worker thread (raw-sessions.ts starts it)");

let ended = false;
let markGo: () => void = () => undefined;
let markEnd: () => void = () => undefined;
const go = new Promise<void>((resolve) => (markGo = resolve));
const end = new Promise<void>((resolve) => (markEnd = resolve));
port.on("message", (m: RawSessionMainMessage) => {
  if (m.type === "go") markGo();
  if (m.type === "end") {
    ended = true;
    markGo();
    markEnd();
  }
});

function post(m: RawSessionWorkerMessage): void {
  port?.postMessage(m);
}

async function main(data: RawSessionWorkerData): Promise<void> {
  const { session } = await createSession(data.model, data.session);
  try {
    const tensors = data.frames.map((f) => (f instanceof Uint8Array ? new ort.Tensor("uint8", f, data.dims) : new ort.Tensor("float32", f, data.dims)));
    const run = (i: number): Promise<number> => timedRun(session, data.inputName, tensors[i % tensors.length]);
    for (let w = 0; w < data.warmup && !ended; w++) await run(w);
    post({ type: "ready" });
    await go;
    if (ended) return;
    const samplesMs: number[] = [];
    const startNs = process.hrtime.bigint();
    for (let i = 0; i < data.runs && !ended; i++) samplesMs.push(await run(i));
    const endNs = process.hrtime.bigint();
    if (ended) return;
    post({ type: "done", samplesMs, startNs, endNs });
    // Stay until the main thread ends this thread: a thread gone from /proc takes its CPU
    // time with it, and the bench reads the CPU window once every session has reported.
    await end;
  } finally {
    await session.release();
  }
}

main(workerData as RawSessionWorkerData)
  .catch((err: unknown) => post({ type: "error", message: err instanceof Error ? err.message : String(err) }))
  // Nothing else keeps the thread alive: it exits with code 0.
  .finally(() => port.close());
