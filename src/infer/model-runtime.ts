// What every holder of a model's ONNX session needs between the manifest and the decoders:
// the decoder the manifest names, the check that the ONNX graph matches the manifest, and
// session outputs as decoder input. The offline Detector and the inference worker both hold
// sessions; the worker must not load detector.ts (letterboxing, resizing: the main thread's
// business), so these live here once rather than in each of them.
import type * as ort from "onnxruntime-node";
import { createDecoder, type Decoder } from "./decode/index.ts";
import { shapeText } from "./input-tensor.ts";
import type { RawTensor } from "../core/types.ts";
import type { DecoderSpec, ResolvedModel } from "./manifest.ts";

export function decoderFor(spec: DecoderSpec): Decoder {
  // A switch so each createDecoder call sees its kind's output-name type.
  switch (spec.kind) {
    case "nanodet-gfl":
      return createDecoder(spec.kind, spec.outputs);
    case "centernet-heads":
      return createDecoder(spec.kind, spec.outputs);
    case "centernet-detections":
      return createDecoder(spec.kind, spec.outputs);
  }
}

/**
 * The manifest against what the ONNX graph really declares (input name, dtype and fixed
 * dims, the decoder's outputs), so a mismatch fails at load naming the model, not per frame.
 */
export function checkSession(model: ResolvedModel, session: ort.InferenceSession, decoder: Decoder): void {
  const { input } = model.entry;
  const where = `model "${model.name}" (${model.path})`;
  if (session.inputNames.length !== 1 || session.inputNames[0] !== input.name) {
    throw new Error(
      `${where}: the manifest names input "${input.name}", the ONNX graph has inputs ` +
        `${session.inputNames.map((n) => `"${n}"`).join(", ")}`,
    );
  }
  const meta = session.inputMetadata[0];
  if (meta.isTensor) {
    if (meta.type !== input.dtype) {
      throw new Error(`${where}: the manifest says input dtype ${input.dtype}, the ONNX graph has ${meta.type}`);
    }
    // Symbolic dims (strings) accept any size; only fixed ones can disagree.
    const bad = meta.shape.length !== input.shape.length || meta.shape.some((d, i) => typeof d === "number" && d !== input.shape[i]);
    if (bad) {
      throw new Error(
        `${where}: the manifest says input shape ${shapeText(input.shape)}, the ONNX graph has ${shapeText(meta.shape)}`,
      );
    }
  }
  const missing = decoder.outputNames.filter((n) => !session.outputNames.includes(n));
  if (missing.length > 0) {
    throw new Error(
      `${where}: decoder ${decoder.kind} needs outputs ${missing.map((n) => `"${n}"`).join(", ")} that the ONNX graph ` +
        `lacks; it has ${session.outputNames.map((n) => `"${n}"`).join(", ")}`,
    );
  }
}

/** One session output as the decoders take it: float32, whatever numeric type the graph gives. */
export function toRawTensor(name: string, t: ort.Tensor): RawTensor {
  const data = t.data;
  if (data instanceof Float32Array) return { dims: t.dims, data };
  if (Array.isArray(data)) throw new Error(`output "${name}" is a ${t.type} tensor; detectors need numbers`);
  // Decoders work in float32; integer outputs (class ids, counts) convert exactly below 2^24.
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return { dims: t.dims, data: out };
}
