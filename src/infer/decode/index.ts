// Registry that binds a decoder to a model's ONNX output names, so the detector only has
// to hand over session outputs by name and never knows which architecture it runs.
import type { Detection, RawTensor } from "../../core/types.ts";
import { decodeCenterNetDetections, decodeCenterNetHeads } from "./centernet.ts";
import { decodeNanoDet, type NanoDetLevel } from "./nanodet.ts";

export const DECODER_KINDS = ["nanodet-gfl", "centernet-heads", "centernet-detections"] as const;
export type DecoderKind = (typeof DECODER_KINDS)[number];

export interface NanoDetOutputNames {
  levels: readonly { stride: number; scores: string; boxes: string }[];
}
export interface CenterNetHeadsOutputNames {
  heatmap: string;
  wh: string;
}
export interface CenterNetDetectionsOutputNames {
  detections: string;
}
export interface DecoderOutputNames {
  "nanodet-gfl": NanoDetOutputNames;
  "centernet-heads": CenterNetHeadsOutputNames;
  "centernet-detections": CenterNetDetectionsOutputNames;
}

export interface DecodeOptions {
  /** Model input size in pixels; decoders return boxes in this space. */
  inputWidth: number;
  inputHeight: number;
  scoreThreshold: number;
  classFilter?: ReadonlySet<number>;
  labels: readonly string[];
  nanodetCenterOffset?: number;
}

export interface Decoder {
  readonly kind: DecoderKind;
  /** ONNX output names this decoder reads, e.g. to fetch only those from a session. */
  readonly outputNames: readonly string[];
  /** Candidates in model-input pixels; src/infer/frame-processor.ts takes them on (map back, NMS, cap). */
  decode(outputs: Readonly<Record<string, RawTensor>>, opts: DecodeOptions): Detection[];
}

function getOutput(
  kind: DecoderKind,
  outputs: Readonly<Record<string, RawTensor>>,
  name: string,
  role: string,
): RawTensor {
  if (!Object.hasOwn(outputs, name)) {
    const present = Object.keys(outputs);
    throw new Error(
      `${kind} decoder: model output "${name}" (${role}) is missing; outputs present: ` +
        (present.length > 0 ? present.map((n) => `"${n}"`).join(", ") : "(none)"),
    );
  }
  return outputs[name];
}

function requireName(kind: DecoderKind, role: string, name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new Error(`${kind} decoder: output name for ${role} must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  return name;
}

export function createDecoder<K extends DecoderKind>(kind: K, outputNames: DecoderOutputNames[K]): Decoder {
  // outputNames usually comes from a manifest file, so its shape is checked here, once,
  // rather than failing obscurely on the first frame.
  switch (kind) {
    case "nanodet-gfl": {
      const spec = outputNames as NanoDetOutputNames;
      if (!Array.isArray(spec?.levels) || spec.levels.length === 0) {
        throw new Error(`nanodet-gfl decoder: outputNames.levels must be a non-empty array`);
      }
      const levels = spec.levels.map((l, i) => ({
        stride: l.stride,
        scores: requireName(kind, `levels[${i}].scores`, l.scores),
        boxes: requireName(kind, `levels[${i}].boxes`, l.boxes),
      }));
      return {
        kind,
        outputNames: levels.flatMap((l) => [l.scores, l.boxes]),
        decode(outputs, opts) {
          const tensors: NanoDetLevel[] = levels.map((l) => ({
            stride: l.stride,
            scores: getOutput(kind, outputs, l.scores, `class scores, stride ${l.stride}`),
            boxes: getOutput(kind, outputs, l.boxes, `box distribution, stride ${l.stride}`),
          }));
          return decodeNanoDet(tensors, {
            inputWidth: opts.inputWidth,
            inputHeight: opts.inputHeight,
            scoreThreshold: opts.scoreThreshold,
            classFilter: opts.classFilter,
            labels: opts.labels,
            centerOffset: opts.nanodetCenterOffset,
          });
        },
      };
    }
    case "centernet-heads": {
      const spec = outputNames as CenterNetHeadsOutputNames;
      const heatmap = requireName(kind, "heatmap", spec?.heatmap);
      const wh = requireName(kind, "wh", spec?.wh);
      return {
        kind,
        outputNames: [heatmap, wh],
        decode(outputs, opts) {
          return decodeCenterNetHeads(
            getOutput(kind, outputs, heatmap, "heatmap"),
            getOutput(kind, outputs, wh, "wh"),
            {
              inputWidth: opts.inputWidth,
              inputHeight: opts.inputHeight,
              scoreThreshold: opts.scoreThreshold,
              classFilter: opts.classFilter,
              labels: opts.labels,
            },
          );
        },
      };
    }
    case "centernet-detections": {
      const spec = outputNames as CenterNetDetectionsOutputNames;
      const detections = requireName(kind, "detections", spec?.detections);
      return {
        kind,
        outputNames: [detections],
        decode(outputs, opts) {
          return decodeCenterNetDetections(getOutput(kind, outputs, detections, "detections"), {
            scoreThreshold: opts.scoreThreshold,
            classFilter: opts.classFilter,
            labels: opts.labels,
          });
        },
      };
    }
    default:
      throw new Error(`unknown decoder kind ${JSON.stringify(kind)}; known kinds: ${DECODER_KINDS.join(", ")}`);
  }
}
