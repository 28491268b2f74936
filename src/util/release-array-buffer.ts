// Frees an ArrayBuffer's memory now, instead of whenever V8 next collects it.
//
// Why: onnxruntime-node returns every output in a new external ArrayBuffer (1.76 MB a frame
// for the default model) and the inference worker receives every frame's pixels in another.
// V8 counts that memory as external, and to reclaim it the worker collected garbage every
// few frames, full mark-compacts among them (on the 2-core build VM, about 60 collections
// in 300 paced frames, up to 7-10 ms each; with the buffers released, 2). A detached
// buffer's memory goes at once and V8 stops counting it.
//
// How: the buffer goes into the transfer list of a postMessage on a closed MessagePort. The
// HTML structured-clone rules, which Node's MessagePort follows, serialise the message and
// detach what it transfers even when the port is closed; the message is then dropped, and
// with it the last owner of the memory (for ORT's outputs, the deleter that frees them).
// ArrayBuffer.prototype.transfer would do the same, but Node 20 has it only behind a V8
// flag, and it would also detach buffers Node marks untransferable, which this path keeps.
import { MessageChannel, type MessagePort } from "node:worker_threads";

let closedPort: MessagePort | undefined;

function portThatDropsEverything(): MessagePort {
  if (closedPort === undefined) {
    const { port1, port2 } = new MessageChannel();
    port1.close();
    port2.close();
    closedPort = port1;
  }
  return closedPort;
}

/**
 * Detaches `buf`: its memory is freed now (an external buffer's deleter runs now) and every
 * view on it reads as empty from here on, so the caller must be done with all of them.
 * Returns whether it was released. Left as they are, returning false: SharedArrayBuffers,
 * empty or already detached buffers, and buffers the runtime will not transfer (Node's
 * shared Buffer pool, anything passed to markAsUntransferable, WebAssembly memory: Node 20
 * skips those silently, Node 24 throws DataCloneError, caught here).
 */
export function releaseArrayBuffer(buf: ArrayBufferLike): boolean {
  if (!(buf instanceof ArrayBuffer) || buf.byteLength === 0) return false;
  try {
    portThatDropsEverything().postMessage(null, [buf]);
  } catch (e) {
    // Node 20 skips an untransferable buffer silently; Node 22 and later throw DataCloneError.
    if (e instanceof DOMException && e.name === "DataCloneError") return false;
    throw e;
  }
  return buf.byteLength === 0;
}

/** releaseArrayBuffer for each distinct buffer in `bufs` (views may share one); how many were released. */
export function releaseArrayBuffers(bufs: Iterable<ArrayBufferLike>): number {
  let released = 0;
  for (const b of new Set(bufs)) if (releaseArrayBuffer(b)) released++;
  return released;
}

/** A tensor as far as releasing goes: ONNX Runtime's, or anything that keeps its values in `data`. */
export interface TensorLike {
  readonly data: unknown;
}

/**
 * releaseArrayBuffers for the buffers behind each tensor's typed-array data (a string
 * tensor's array has none and is left alone); how many were released. Every view on them,
 * the tensors' own included, reads as empty afterwards.
 */
export function releaseTensors(tensors: Iterable<TensorLike>): number {
  const bufs: ArrayBufferLike[] = [];
  for (const t of tensors) if (ArrayBuffer.isView(t.data)) bufs.push(t.data.buffer);
  return releaseArrayBuffers(bufs);
}
