// One MJPEG client (multipart/x-mixed-replace, which browsers show in an <img>). A client
// that reads slower than frames come gets fewer of them: a frame is written only when the
// previous one has left Node's buffer, so each client holds at most one frame in memory
// and the daemon never waits on a socket.
import type { ServerResponse } from "node:http";

const BOUNDARY = "perceptdframe";

export class MjpegClient {
  private closed = false;

  constructor(
    private readonly res: ServerResponse,
    onClose: () => void,
  ) {
    res.writeHead(200, {
      "Content-Type": `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      "Cache-Control": "no-store",
      Connection: "close",
    });
    res.on("close", () => {
      this.closed = true;
      onClose();
    });
  }

  /** Writes one frame, or returns false (skipped) while the client still drains the last one. */
  send(jpeg: Buffer): boolean {
    if (this.closed || this.res.writableNeedDrain || this.res.destroyed) return false;
    this.res.write(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
    this.res.write(jpeg);
    this.res.write("\r\n");
    return true;
  }

  end(): void {
    if (!this.closed) this.res.end();
  }
}
