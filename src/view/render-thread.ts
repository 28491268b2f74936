// The live view's render thread: model input -> source geometry -> overlay, off the main
// thread so resampling and drawing never delay a result on its way to the bus.
import { parentPort } from "node:worker_threads";
import { drawScene } from "./overlay.ts";
import type { RenderReply, RenderRequest } from "./render-protocol.ts";
import { modelInputToSource } from "./source-frame.ts";

const port = parentPort;
if (port === null) throw new Error("render-thread.ts runs as a worker thread only");

port.on("message", (req: RenderRequest) => {
  let reply: RenderReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const t = req.transform;
    const img = modelInputToSource({ width: t.dstWidth, height: t.dstHeight, data: new Uint8Array(req.pixels) }, t, req.maxSide);
    drawScene(img, { ...req.scene, sourceWidth: t.srcWidth, sourceHeight: t.srcHeight });
    const pixels = img.data.buffer as ArrayBuffer;
    reply = { id: req.id, ok: true, width: img.width, height: img.height, pixels };
    transfer.push(pixels);
  } catch (e) {
    reply = { id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, transfer);
});
