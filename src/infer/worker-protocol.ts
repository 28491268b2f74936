// The contract between the daemon's main thread and an inference worker thread, written
// out as types in one place (the way ONNX Runtime's js/ binding declares its native
// interface). Pixels cross by transfer: the sender's ArrayBuffer is detached, not copied.
import type { ExecutionProvider } from "../config/schema.ts";
import type { ModelEntry } from "../model/manifest.ts";
import type { Detection } from "./types.ts";

export interface WorkerInit {
  /** absolute path of the ONNX model file (checked against the manifest before) */
  modelPath: string;
  /** manifest name, for logs and metrics */
  modelName: string;
  /** the manifest entry: input spec, decoder, labels */
  entry: ModelEntry;
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
  interOpThreads: number;
  trtFp16: boolean;
  trtCacheDir: string;
  warmupRuns: number;
}

/** Decoding settings that may change at run time (SIGHUP). */
export interface DetectSettings {
  scoreThreshold: number;
  iouThreshold: number;
  /** class ids to keep; empty: all */
  classIds: number[];
  maxDetections: number;
}

export type MainToWorker =
  | { type: "init"; init: WorkerInit; settings: DetectSettings }
  | {
      type: "infer";
      id: number;
      camera: string;
      seq: number;
      /** RGB bytes at the model input size; transferred */
      pixels: ArrayBuffer;
      width: number;
      height: number;
    }
  | { type: "settings"; settings: DetectSettings }
  | { type: "close" };

export type WorkerToMain =
  | { type: "ready"; provider: string; tried: { provider: string; error?: string }[]; warmupMs: number[] }
  | {
      type: "result";
      id: number;
      camera: string;
      seq: number;
      /** boxes in model-input pixels; the main thread maps them to the source */
      detections: Detection[];
      /** time the worker took the request off its queue, and stage durations */
      tStartNs: string;
      preprocessMs: number;
      inferenceMs: number;
      decodeMs: number;
    }
  | { type: "error"; id?: number; message: string; fatal: boolean };
