// The live view's HTTP endpoint on plain node:http: the page, its state, and per camera the
// latest annotated frame as a JPEG and as an MJPEG stream. Bound to loopback unless
// configured otherwise, like /metrics: it shows the camera's picture to whoever connects.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { listenOn, type Listening } from "../util/http-listen.ts";
import type { LiveView } from "./live-view.ts";
import { MjpegClient } from "./mjpeg.ts";
import { viewPage } from "./page.ts";

export interface ViewServerOptions {
  host: string;
  port: number;
  view: LiveView;
  /** the body of /state.json; bigints are written as numbers */
  state: () => unknown;
  /** how long GET frame.jpg waits for a frame before answering 503; default 1000 */
  frameTimeoutMs?: number;
}

export interface ViewServer extends Listening {
  close(): Promise<void>;
}

const ROUTES = "/, /state.json, /cameras/ID/frame.jpg, /cameras/ID/stream.mjpeg";
const CAMERA_ROUTE = /^\/cameras\/([^/]+)\/(frame\.jpg|stream\.mjpeg)$/;

export async function startViewServer(opts: ViewServerOptions): Promise<ViewServer> {
  const server: Server = createServer((req, res) => {
    try {
      handle(req, res, opts);
    } catch (e) {
      if (!res.headersSent) text(res, 500, `internal error: ${e instanceof Error ? e.message : String(e)}\n`);
      else res.destroy();
    }
  });
  const at = await listenOn(server, opts.host, opts.port, "live view", "view.port");
  let closing: Promise<void> | null = null;
  return {
    ...at,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        // MJPEG streams never end by themselves.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function handle(req: IncomingMessage, res: ServerResponse, opts: ViewServerOptions): void {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  const m = CAMERA_ROUTE.exec(path);
  if (path !== "/" && path !== "/state.json" && m === null) {
    text(res, 404, `not found: ${path} (routes: ${ROUTES})\n`);
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    text(res, 405, `method ${req.method} not allowed on ${path}\n`);
    return;
  }
  const { view } = opts;
  if (path === "/") {
    send(res, 200, "text/html; charset=utf-8", viewPage(view.cameraIds));
    return;
  }
  if (path === "/state.json") {
    send(res, 200, "application/json", JSON.stringify(opts.state(), (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v)) + "\n");
    return;
  }
  const camera = safeDecode(m![1]);
  if (camera === null || !view.has(camera)) {
    text(res, 404, `no camera ${JSON.stringify(camera ?? m![1])} (cameras: ${view.cameraIds.join(", ")})\n`);
    return;
  }
  if (m![2] === "stream.mjpeg") {
    if (req.method === "HEAD") {
      res.writeHead(200, { "Content-Type": "multipart/x-mixed-replace", "Cache-Control": "no-store" });
      res.end();
      return;
    }
    view.addStreamClient(camera, (onClose) => new MjpegClient(res, onClose));
    return;
  }
  const timeoutMs = opts.frameTimeoutMs ?? 1000;
  // A frame up to one timeout old is still "the latest"; an older one is replaced first.
  void view.nextFrame(camera, timeoutMs, timeoutMs).then((f) => {
    if (res.destroyed) return;
    if (f === null) {
      res.setHeader("Retry-After", "1");
      text(res, 503, `no annotated frame of camera ${camera} within ${timeoutMs} ms (the daemon is starting, or the camera delivers no frames); retry\n`);
      return;
    }
    res.setHeader("X-Frame-Seq", String(f.seq));
    send(res, 200, "image/jpeg", f.jpeg);
  });
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

function send(res: ServerResponse, code: number, contentType: string, body: string | Buffer): void {
  res.writeHead(code, { "Content-Type": contentType, "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

function text(res: ServerResponse, code: number, body: string): void {
  send(res, code, "text/plain; charset=utf-8", body);
}
