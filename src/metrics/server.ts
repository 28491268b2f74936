// /metrics (Prometheus text format) and /healthz (JSON) on plain node:http. Bound to
// loopback unless configured otherwise: the endpoint is unauthenticated and a vehicle's
// network is not a place to expose process internals by default.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import type { HealthState } from "../core/health.ts";
import { listenOn } from "../util/http-listen.ts";

/**
 * What /healthz answers in each state. DEGRADED answers 200: the daemon still publishes (some
 * of it late, or a camera missing), and what a 503 makes a load balancer, a container
 * orchestrator or a watchdog script do (take it out, restart it) would leave the vehicle
 * with no perception at all for the length of a restart and the model's warm-up. Why it is
 * degraded is in the body and on the bus. FAULT, STARTING and STOPPING answer 503: nothing
 * trustworthy is published then. systemd's own watchdog follows the same line (fed unless
 * FAULT; src/health/systemd.ts).
 */
export const HEALTHZ_STATUS_CODE: Readonly<Record<HealthState, 200 | 503>> = {
  starting: 503,
  ok: 200,
  degraded: 200,
  fault: 503,
  stopping: 503,
};

export interface Health {
  /** the daemon's health state in its own words (src/core/health.ts); the answer's status code follows HEALTHZ_STATUS_CODE */
  status: HealthState;
  details?: Record<string, unknown>;
}

export interface MetricsServerOptions {
  /** default 127.0.0.1 */
  host?: string;
  /** 0: any free port (read it back from the result) */
  port: number;
  /** called on every GET /healthz; a throw or rejection answers 500 */
  health: () => Health | Promise<Health>;
}

export interface MetricsServer {
  host: string;
  port: number;
  /** http://host:port, with brackets around an IPv6 host */
  url: string;
  /** Stops listening and cuts open keep-alive connections (a scraper's would hold close() for seconds). */
  close(): Promise<void>;
}

export async function startMetricsServer(metrics: { registry: Registry }, opts: MetricsServerOptions): Promise<MetricsServer> {
  const host = opts.host ?? "127.0.0.1";
  const { registry } = metrics;

  const server = createServer((req, res) => {
    handle(req, res, registry, opts.health).catch((e: unknown) => {
      // Headers may be gone already if the client hung up mid-response; nothing left to tell it.
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", `internal error: ${message(e)}\n`);
      else res.destroy();
    });
  });

  const at = await listenOn(server, host, opts.port, "metrics server", "metrics.port");
  let closing: Promise<void> | null = null;
  return {
    ...at,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, registry: Registry, health: MetricsServerOptions["health"]): Promise<void> {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (path !== "/metrics" && path !== "/healthz") {
    send(res, 404, "text/plain; charset=utf-8", `not found: ${path} (try /metrics or /healthz)\n`);
    return;
  }
  // HEAD is what curl -I and some probes send; node:http leaves out the body by itself.
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    send(res, 405, "text/plain; charset=utf-8", `method ${req.method} not allowed on ${path}\n`);
    return;
  }
  if (path === "/metrics") {
    send(res, 200, registry.contentType, await registry.metrics());
    return;
  }
  let h: Health;
  try {
    h = await health();
  } catch (e) {
    send(res, 500, "application/json", JSON.stringify({ status: "error", error: `health check failed: ${message(e)}` }) + "\n");
    return;
  }
  send(res, HEALTHZ_STATUS_CODE[h.status], "application/json", JSON.stringify({ status: h.status, details: h.details ?? {} }) + "\n");
}

function send(res: ServerResponse, code: number, contentType: string, body: string): void {
  res.writeHead(code, { "Content-Type": contentType, "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
