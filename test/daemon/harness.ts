// Drives the real daemon from outside, as an integrator would: a YAML config in a temp
// folder, `node bin/perceptd.js run`, JSON logs on stdout, a real ZeroMQ subscriber.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { Subscriber } from "zeromq";
import { decodeDetections, type DetectionsMessage } from "../../src/bus/detections-message.ts";

export const REPO = resolve(import.meta.dirname, "../..");
export const VTEST = join(REPO, ".cache/fixtures/vtest.avi");

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => (typeof addr === "object" && addr ? res(addr.port) : rej(new Error("no port"))));
    });
  });
}

export async function writeConfig(config: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "perceptd-daemon-"));
  const path = join(dir, "config.yaml");
  await writeFile(path, stringify(config));
  return path;
}

export interface RunningDaemon {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  stderr: () => string;
  /** resolves with the exit code (or the signal name) */
  exited: Promise<number | string>;
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function runDaemon(args: string[], env: NodeJS.ProcessEnv = {}): RunningDaemon {
  const child = spawn(process.execPath, [join(REPO, "bin/perceptd.js"), ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buf = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const l = JSON.parse(line) as Record<string, unknown>;
        logs.push(l);
        for (const w of [...waiters]) if (w.pred(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((res) => child.on("exit", (code, sig) => res(code ?? sig ?? -1)));
  return {
    child,
    logs,
    stderr: () => err,
    exited,
    waitForLog(pred, timeoutMs = 60_000) {
      const hit = logs.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err.slice(-2000)}; logs: ${JSON.stringify(logs.slice(-5))}`)), timeoutMs);
        waiters.push({ pred, resolve: (l) => (clearTimeout(t), res(l)) });
        void exited.then(() => setTimeout(() => rej(new Error(`daemon exited before the log line; stderr: ${err.slice(-2000)}`)), 50));
      });
    },
  };
}

/** Collects detections messages until stopped. */
export async function collectDetections(endpoint: string): Promise<{ messages: DetectionsMessage[]; raw: Buffer[][]; close: () => void }> {
  const sub = new Subscriber();
  sub.connect(endpoint);
  sub.subscribe("detections");
  const messages: DetectionsMessage[] = [];
  const raw: Buffer[][] = [];
  let open = true;
  void (async () => {
    try {
      for await (const frames of sub) {
        raw.push(frames);
        messages.push(decodeDetections(frames[1]));
        if (!open) break;
      }
    } catch {
      // closed
    }
  })();
  return {
    messages,
    raw,
    close: () => {
      open = false;
      sub.close();
    },
  };
}

export function baseConfig(busPort: number, camera: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    log: { level: "info", format: "json" },
    cameras: [{ id: "cam0", source: camera }],
    bus: { endpoints: [`tcp://127.0.0.1:${busPort}`] },
    metrics: { enabled: true, host: "127.0.0.1", port: 0 },
    inference: { warmupRuns: 1 },
    status: { mode: "off" },
    ...extra,
  };
}
