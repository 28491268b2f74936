// One ONNX Runtime session in its own thread for the bench's side-by-side raw loop
// (raw-sessions.ts): warms up, says ready, waits for "go" so every session starts together,
// times `runs` sequential runs over its frames, reports them, and waits to be ended.
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { createSession, type SessionOptions } from "../../infer/session.ts";

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

async function main(data: RawSessionWorkerData): Promise<void> {
  const { session } = await createSession(data.model, data.session);
  try {
    const tensors = data.frames.map((f) => (f instanceof Uint8Array ? new ort.Tensor("uint8", f, data.dims) : new ort.Tensor("float32", f, data.dims)));
    const run = (i: number): Promise<unknown> => session.run({ [data.inputName]: tensors[i % tensors.length] });
    for (let w = 0; w < data.warmup; w++) await run(w);
    const go = new Promise<void>((resolve) => port?.once("message", (m: RawSessionMainMessage) => m.type === "go" && resolve()));
    port?.postMessage({ type: "ready" } satisfies RawSessionWorkerMessage);
    await go;
    const samplesMs: number[] = [];
    const startNs = process.hrtime.bigint();
    for (let i = 0; i < data.runs; i++) {
      const t0 = process.hrtime.bigint();
      await run(i);
      samplesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const endNs = process.hrtime.bigint();
    port?.postMessage({ type: "done", samplesMs, startNs, endNs } satisfies RawSessionWorkerMessage);
    // Stay until the main thread ends this thread: a thread gone from /proc takes its CPU
    // time with it, and the bench reads the CPU window once every session has reported.
    await new Promise<void>((resolve) => port?.once("message", (m: RawSessionMainMessage) => m.type === "end" && resolve()));
  } finally {
    await session.release();
  }
}

main(workerData as RawSessionWorkerData).catch((err: unknown) => {
  port.postMessage({ type: "error", message: err instanceof Error ? err.message : String(err) } satisfies RawSessionWorkerMessage);
});
