// One timed `session.run` as every raw reference of the bench times it: the run alone, with
// ORT's outputs freed afterwards, untimed, as the daemon's worker frees them
// (src/infer/worker.ts). Left to V8, those output buffers bring collections that land
// inside later runs: a reference that pays for them is a slower loop than the one the
// daemon is held to. Apart from raw-model.ts so that the side-by-side sessions' worker
// threads (raw-session-worker.ts) can use it without loading GStreamer.
import type * as ort from "onnxruntime-node";
import { releaseTensors } from "../../util/release-array-buffer.ts";

/** One `session.run` on `tensor`, timed in ms; its outputs are freed afterwards, untimed. */
export async function timedRun(session: ort.InferenceSession, inputName: string, tensor: ort.Tensor): Promise<number> {
  const t0 = process.hrtime.bigint();
  const out = await session.run({ [inputName]: tensor });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  releaseTensors(Object.values(out));
  return ms;
}
