// The contract between the daemon's main thread and an inference worker thread, written
// out as types in one place (the way ONNX Runtime's js/ binding declares its native
// interface). Pixels cross by transfer: the sender's ArrayBuffer is detached, not copied.
//
// Ordering is the contract's backbone: a MessagePort delivers in order and the worker
// handles one message at a time, so a `settings` sent after an `infer` applies to the
// frames after that one, and `close` runs only once the request before it has answered.
import type { ExecutionProvider } from "../core/providers.ts";
import type { ModelEntry } from "./manifest.ts";
import type { ProviderOptionSupport, ProviderTuning } from "./provider-options.ts";
import type { Detection, LetterboxTransform } from "../core/types.ts";

/** Most inference workers one unpaced replay may run side by side (the config schema's bound). */
export const MAX_REPLAY_WORKERS = 16;

export interface WorkerInit {
  /** absolute path of the ONNX model file; the worker checks it against entry.sha256 */
  modelPath: string;
  /** manifest name, for logs and metrics */
  modelName: string;
  /** the manifest entry: input spec, decoder, labels */
  entry: ModelEntry;
  executionProviders: ExecutionProvider[];
  /** 0: ONNX Runtime decides (one per core) */
  intraOpThreads: number;
  /** 0: ONNX Runtime decides */
  interOpThreads: number;
  /** ORT pool threads busy-wait between operators (SessionOptions.allowSpinning) */
  allowSpinning: boolean;
  /** TensorRT/CUDA provider options (applied where the binding honours them) */
  tuning: ProviderTuning;
  warmupRuns: number;
}

/** Decoding settings that may change at run time (SIGHUP). */
export interface DetectSettings {
  /** candidates at or below this score are dropped, in [0, 1] */
  scoreThreshold: number;
  /** class-aware NMS overlap threshold, in [0, 1] */
  iouThreshold: number;
  /** class ids (indices into entry.labels) to keep; empty: all */
  classIds: number[];
  /** most detections per frame after NMS, best first; a positive integer */
  maxDetections: number;
}

export interface ProviderTried {
  provider: ExecutionProvider;
  /** why this provider could not create the session; absent for the one in use */
  error?: string;
}

export type MainToWorker =
  | { type: "init"; init: WorkerInit; settings: DetectSettings }
  | {
      type: "infer";
      /** request id, echoed in the answer */
      id: number;
      camera: string;
      seq: number;
      /** packed RGB bytes at the model input size, width * height * 3 of them; transferred */
      pixels: ArrayBuffer;
      width: number;
      height: number;
      /** how the source frame was placed into width x height: maps the boxes back to source pixels */
      transform: LetterboxTransform;
    }
  | { type: "settings"; settings: DetectSettings }
  | { type: "close" };

export type WorkerToMain =
  | {
      type: "ready";
      provider: ExecutionProvider;
      /** every provider tried, in order, ending with the one in use */
      tried: ProviderTried[];
      /** session options accepted but not applied (e.g. TensorRT cache/fp16 on a stock binding) */
      warnings: string[];
      /** whether the loaded onnxruntime-node binding hands GPU providers their options */
      providerOptions: ProviderOptionSupport;
      /** wall time of each warm-up inference on a blank frame, in order */
      warmupMs: number[];
    }
  | {
      type: "result";
      id: number;
      camera: string;
      seq: number;
      /** boxes in source pixels, best first (frame-processor.ts) */
      detections: Detection[];
      /** process.hrtime.bigint() when the worker took the request up and when it posted the answer (one clock for all threads) */
      tStartNs: bigint;
      tEndNs: bigint;
      preprocessMs: number;
      inferenceMs: number;
      decodeMs: number;
    }
  /** session released; the worker thread exits next */
  | { type: "closed" }
  /**
   * `id` set: that request failed and the worker carries on. fatal: the worker cannot go on
   * (init failed, or the session is gone) and exits after posting this.
   */
  | { type: "error"; id?: number; phase: MainToWorker["type"]; message: string; fatal: boolean };

/**
 * Throws a RangeError naming `where` and the valid range when `s` is out of bounds.
 * `classCount` is the model's number of labels, so class ids are checked against it.
 * Both ends call it: the main thread to fail the caller synchronously, the worker because
 * it must never decode with settings it cannot honour.
 */
export function checkDetectSettings(s: DetectSettings, classCount: number, where: string): void {
  const unit = (name: string, v: number): void => {
    if (!(typeof v === "number" && v >= 0 && v <= 1)) throw new RangeError(`${where}: ${name} must be a number in [0, 1], got ${String(v)}`);
  };
  unit("scoreThreshold", s.scoreThreshold);
  unit("iouThreshold", s.iouThreshold);
  if (!(Number.isInteger(s.maxDetections) && s.maxDetections > 0)) {
    throw new RangeError(`${where}: maxDetections must be a positive integer, got ${String(s.maxDetections)}`);
  }
  if (!Array.isArray(s.classIds)) throw new TypeError(`${where}: classIds must be an array of class ids`);
  for (const id of s.classIds) {
    if (!(Number.isInteger(id) && id >= 0 && id < classCount)) {
      throw new RangeError(`${where}: class id ${String(id)} is not in [0, ${classCount - 1}] (the model has ${classCount} labels)`);
    }
  }
}
