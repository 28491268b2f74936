// The main thread's end of the render thread (render-thread.ts): one worker, requests
// answered in order, pixels moved by transfer both ways.
import { Worker } from "node:worker_threads";
import type { LetterboxTransform } from "../core/types.ts";
import type { RgbImage } from "../core/rgb-image.ts";
import type { OverlayScene } from "./overlay.ts";
import type { RenderReply, RenderRequest } from "./render-protocol.ts";

const ENTRY = new URL("./render-thread-bootstrap.mjs", import.meta.url);

interface Pending {
  resolve: (img: RgbImage) => void;
  reject: (e: Error) => void;
}

export class Renderer {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | null = null;
  private readonly exited: Promise<number>;

  constructor(private readonly maxSide: number) {
    this.worker = new Worker(ENTRY, { name: "perceptd-view-render" });
    // An idle render thread must not keep a finished process alive.
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once("exit", resolve));
    this.worker.on("message", (reply: RenderReply) => this.onReply(reply));
    this.worker.on("error", (e) => this.fail(new Error(`view render thread failed: ${e.message}`, { cause: e })));
    void this.exited.then((code) => this.fail(new Error(`view render thread exited (code ${code})`)));
  }

  /** Renders `pixels` (the model input; detached by the call) with `scene` drawn on it. */
  render(pixels: Uint8Array, transform: LetterboxTransform, scene: OverlayScene): Promise<RgbImage> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    const buffer = pixels.byteOffset === 0 && pixels.byteLength === pixels.buffer.byteLength ? pixels.buffer : pixels.slice().buffer;
    const req: RenderRequest = { id, pixels: buffer as ArrayBuffer, transform, scene, maxSide: this.maxSide };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(req, [req.pixels]);
    });
  }

  private onReply(reply: RenderReply): void {
    const p = this.pending.get(reply.id);
    if (p === undefined) return;
    this.pending.delete(reply.id);
    if (reply.ok) p.resolve({ width: reply.width, height: reply.height, data: new Uint8Array(reply.pixels) });
    else p.reject(new Error(`view render: ${reply.error}`));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.fail(new Error("view render thread closed"));
    await this.worker.terminate();
  }
}
