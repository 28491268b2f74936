// The model as the bench's raw references run it, with nothing of the daemon around it:
// frames decoded and resized up front (untimed) and a session made with the daemon's
// worker's options; timed-run.ts times each run. Shared by the raw loops in
// this process ((a), (a3), pipeline-bench.ts) and by the (c3) publisher in a child process
// (bus-floor-publisher.ts), so that every reference runs the model the same way.
import * as ort from "onnxruntime-node";
import { toOrtTensor } from "../../infer/input-tensor.ts";
import { createSession } from "../../infer/session.ts";
import { probeVideo, readVideoFrames } from "../../ingest/gst/video-file.ts";
import { readManifest, readVerifiedModel, resolveModel, type ModelEntry } from "../../infer/manifest.ts";
import { prepareInput, spreadFrameIndices } from "./model-bench.ts";

export interface RawModel {
  name: string;
  path: string;
  input: ModelEntry["input"];
  bytes: Uint8Array;
}

/** The manifest's model `name` (or its default), checked against the manifest's checksum. */
export async function loadRawModel(manifestPath: string, name: string | undefined): Promise<RawModel> {
  const manifest = await readManifest(manifestPath);
  const model = resolveModel(manifest, manifestPath, name);
  return { name: model.name, path: model.path, input: model.entry.input, bytes: await readVerifiedModel(model) };
}

/** `count` frames spread over `video`, each resized to the model's input; `onDecoded(done, total)` after each. */
export async function decodeRawFrames(
  video: string,
  count: number,
  input: ModelEntry["input"],
  onDecoded: (done: number, total: number) => void = () => undefined,
): Promise<ort.Tensor[]> {
  const info = await probeVideo(video);
  const wanted = spreadFrameIndices(info.frames, count);
  const wantedSet = new Set(wanted);
  const tensors: ort.Tensor[] = [];
  onDecoded(0, wanted.length);
  for await (const f of readVideoFrames(video, { select: (i) => wantedSet.has(i), maxFrames: wanted.length })) {
    // The decoded frame is a view on GStreamer's buffer; only the model-size input is kept.
    tensors.push(toOrtTensor(prepareInput(f.image, input), input));
    onDecoded(tensors.length, wanted.length);
  }
  if (tensors.length === 0) throw new Error(`${video}: no frames decoded`);
  return tensors;
}

export interface RawSessionSettings {
  /** ORT intra-op threads (0: ORT decides), as inference.intraOpThreads */
  threads: number;
  /** as inference.allowSpinning */
  spinning: boolean;
}

/** A CPU session made as the daemon's worker makes it from the config (same keys, same defaults). */
export async function createRawSession(model: RawModel, settings: RawSessionSettings): Promise<ort.InferenceSession> {
  const { session } = await createSession(model.bytes, {
    executionProviders: ["cpu"],
    intraOpThreads: settings.threads,
    interOpThreads: 1,
    allowSpinning: settings.spinning,
    source: model.path,
  });
  return session;
}
