// The bench's raw loop in the arrangement the daemon uses for an unpaced replay: several
// sessions side by side, each in its own worker thread with its share of the cores, each
// running its own frames one after another. The single-session loop (pipeline-bench.ts,
// (a)) is the ceiling for one frame at a time; this is the ceiling for frames in parallel,
// so the daemon's replay throughput can be judged against both.
import { Worker } from "node:worker_threads";
import type * as ort from "onnxruntime-node";
import type { SessionOptions } from "../../infer/session.ts";
import type { RawSessionMainMessage, RawSessionWorkerData, RawSessionWorkerMessage } from "./raw-session-worker.ts";

const WORKER_ENTRY = new URL("./raw-session-worker.mjs", import.meta.url);

export interface SideBySideOptions {
  model: Uint8Array;
  inputName: string;
  /** every frame; session k runs frames k, k + sessions, ... (copied, the caller keeps its tensors) */
  tensors: readonly ort.Tensor[];
  sessions: number;
  session: SessionOptions;
  warmup: number;
  /** timed runs over all sessions together, split evenly */
  runs: number;
  /** called once every session is warm, right before they start together */
  onStart?: () => void;
  /** called once every session has reported, while their threads still exist */
  onEnd?: () => void;
}

export interface SideBySideResult {
  /** every timed run, session by session */
  samplesMs: number[];
  /** first session's start to last session's end */
  durationS: number;
  runs: number;
}

function frameData(t: ort.Tensor): Uint8Array | Float32Array {
  if (t.type === "uint8") return new Uint8Array(t.data as Uint8Array);
  if (t.type === "float32") return new Float32Array(t.data as Float32Array);
  throw new TypeError(`bench: side-by-side sessions take uint8 or float32 inputs, got ${t.type}`);
}

/** Starts the sessions, waits until all are warm, runs them together; rejects with the first session's error. */
export async function runSessionsSideBySide(opts: SideBySideOptions): Promise<SideBySideResult> {
  const { sessions, tensors } = opts;
  if (!(Number.isInteger(sessions) && sessions >= 2)) throw new RangeError(`bench: side-by-side sessions must be an integer >= 2, got ${String(sessions)}`);
  if (tensors.length < sessions) throw new RangeError(`bench: ${tensors.length} frame(s) cannot feed ${sessions} sessions`);
  const dims = [...tensors[0].dims];
  const runsOf = (k: number): number => Math.floor(opts.runs / sessions) + (k < opts.runs % sessions ? 1 : 0);

  const workers: Worker[] = [];
  try {
    const handles = Array.from({ length: sessions }, (_, k) => {
      const frames = tensors.filter((_, i) => i % sessions === k).map(frameData);
      const data: RawSessionWorkerData = { model: opts.model, session: opts.session, inputName: opts.inputName, dims, frames, warmup: opts.warmup, runs: runsOf(k) };
      // frameData made every array with its own ArrayBuffer (never shared), so each can move.
      const worker = new Worker(WORKER_ENTRY, { workerData: data, transferList: frames.map((f) => f.buffer as ArrayBuffer), name: `perceptd-bench-raw-${k + 1}` });
      workers.push(worker);
      let markReady: () => void = () => undefined;
      const ready = new Promise<void>((resolve) => (markReady = resolve));
      const done = new Promise<Extract<RawSessionWorkerMessage, { type: "done" }>>((resolve, reject) => {
        const fail = (why: string): void => reject(new Error(`bench: raw session ${k + 1} of ${sessions}: ${why}`));
        worker.on("message", (m: RawSessionWorkerMessage) => {
          if (m.type === "ready") markReady();
          else if (m.type === "done") resolve(m);
          else fail(m.message);
        });
        worker.on("error", (err) => fail(err.message));
        worker.on("exit", (code) => fail(`thread exited with code ${code} before it reported`));
      });
      return { worker, ready: Promise.race([ready, done.then(() => undefined)]), done };
    });
    // Each `ready` also rejects when its session fails first, so one failing while the others
    // warm up rejects here, not after they all wait for "go".
    await Promise.all(handles.map((h) => h.ready));
    opts.onStart?.();
    for (const h of handles) h.worker.postMessage({ type: "go" } satisfies RawSessionMainMessage);
    const results = await Promise.all(handles.map((h) => h.done));
    opts.onEnd?.();
    const startNs = results.reduce((m, r) => (r.startNs < m ? r.startNs : m), results[0].startNs);
    const endNs = results.reduce((m, r) => (r.endNs > m ? r.endNs : m), results[0].endNs);
    const samplesMs = results.flatMap((r) => r.samplesMs);
    return { samplesMs, durationS: Number(endNs - startNs) / 1e9, runs: samplesMs.length };
  } finally {
    // Each thread releases its session and exits by itself; terminate() inside a native call
    // would abort the process (raw-session-worker.ts), so it is only for a thread still there
    // long after it was told to end.
    for (const w of workers) w.postMessage({ type: "end" } satisfies RawSessionMainMessage);
    await Promise.all(workers.map((w) => exitOrTerminate(w, END_TIMEOUT_MS)));
  }
}

/** How long a session may take to finish its run and release after "end". */
const END_TIMEOUT_MS = 30_000;

async function exitOrTerminate(worker: Worker, timeoutMs: number): Promise<void> {
  if (worker.threadId === -1) return;
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise<boolean>((resolve) => worker.once("exit", () => resolve(true)));
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    if (!(await Promise.race([exited, late]))) await worker.terminate();
  } finally {
    clearTimeout(timer);
  }
}
