// The real daemon as a child process, driven from outside the way an integrator drives it:
// a YAML config, `node bin/perceptd.js run`, JSON logs on stdout, a real ZeroMQ subscriber.
// The one copy of this plumbing: `perceptd soak`, `perceptd bench pipeline` and the daemon
// tests (test/daemon/harness.ts) all start and stop the daemon here, so they measure and
// check the same thing.
//
// Readiness is the daemon's declared signal, not its log text: each child gets a
// NOTIFY_SOCKET of its own (notify-socket.ts), and ready() resolves with the READY=1
// datagram systemd would get, whose X_ fields (READY_FIELDS) say where the bus and the
// metrics listen. The listener is spawned just before the daemon and binds in tens of
// milliseconds; the daemon cannot send READY=1 before it has loaded and warmed its model.
//
// Children are tracked until they exit: a daemon with a looping or live source never ends
// on its own, so one left behind by a crashed bench would burn the CPU the next run
// measures. An "exit" hook kills what is left (child.kill is synchronous, so it works there);
// signals are the caller's business (see killAllDaemons). Neither helps when this process
// dies by SIGKILL (a test runner's timeout, the OOM killer), so on Linux the daemon is
// started through `setpriv --pdeathsig SIGTERM`, which asks the kernel to SIGTERM it when
// its parent goes, however that happens. setpriv execs node, so the child's pid is the
// daemon's own and signals reach it directly.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { stringify } from "yaml";
import { Subscriber } from "zeromq";
import { decodeDetections, type DetectionsMessage } from "../bus/detections-message.ts";
import { READY_FIELDS } from "../health/systemd.ts";
import { hasDisableSigusr1 } from "../../bin/runtime.js";
import { parseNotifyFields, spawnNotifyListener, uniqueNotifyAddress, type NotifyListener } from "./notify-socket.ts";

/** The repository root: bin/perceptd.js and relative config paths resolve against it. */
export const REPO_ROOT = resolve(import.meta.dirname, "../..");
export const PERCEPTD_BIN = join(REPO_ROOT, "bin/perceptd.js");

/**
 * `node ... bin/perceptd.js` as this process starts it: with --disable-sigusr1, so that on
 * the project's runtime bin/ runs the command itself rather than again in a child (which it
 * does for a node started without it; bin/runtime.js).
 */
export const PERCEPTD_ARGV: readonly string[] = [process.execPath, ...(hasDisableSigusr1() ? ["--disable-sigusr1"] : []), PERCEPTD_BIN];

/** How long ready() waits by default: a cold model load on a busy 2-core machine takes seconds, a TensorRT engine build minutes. */
export const DEFAULT_READY_TIMEOUT_MS = 120_000;

/** What the daemon's READY=1 datagram says. */
export interface DaemonReady {
  /** bound bus endpoints (real ports) */
  endpoints: string[];
  /** the metrics server's base URL; null when metrics are off */
  metricsUrl: string | null;
  /** the live view's base URL; null when the view is off */
  viewUrl: string | null;
  /** STATUS= of the datagram: the health state and reasons */
  status: string;
  /** performance.now() of this process when the datagram arrived */
  at: number;
}

export type LogLine = Record<string, unknown>;

/** A TCP port nobody listens on right now (it can be taken before it is used: prefer port 0 where the daemon reports the real one). */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => (typeof addr === "object" && addr ? res(addr.port) : rej(new Error("no port"))));
    });
  });
}

/** A UDP port free on loopback right now (for a test camera's RTP stream; it can be taken before use). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Writes `config` as YAML into a fresh temp folder; returns the file's path. */
export async function writeConfig(config: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "perceptd-daemon-"));
  const path = join(dir, "config.yaml");
  await writeFile(path, stringify(config));
  return path;
}

/** Removes a config written by writeConfig, folder and all. */
export async function removeConfig(path: string): Promise<void> {
  await rm(dirname(path), { recursive: true, force: true });
}

export interface RunningDaemon {
  child: ChildProcess;
  logs: LogLine[];
  stderr: () => string;
  /** resolves with the exit code (or the signal name) */
  exited: Promise<number | string>;
  /**
   * Resolves when the daemon sends READY=1 (model warm, bus bound, cameras started), with
   * where it listens; rejects when it exits first or timeoutMs passes, with its stderr.
   */
  ready(timeoutMs?: number): Promise<DaemonReady>;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /**
   * SIGTERM (a clean stop: the frame in flight is published, the bus flushed), then SIGKILL
   * if it has not exited within timeoutMs. Resolves with the exit code or signal name.
   */
  stop(timeoutMs?: number): Promise<number | string>;
  /** SIGKILL now if still running; for finally blocks, where waiting is not an option. */
  kill(): void;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGKILLs every daemon this process started that is still running. Synchronous, so signal and exit handlers can call it. */
export function killAllDaemons(): void {
  for (const child of live) if (isRunning(child)) child.kill("SIGKILL");
}

let pdeathsig: boolean | undefined;

/** Whether util-linux setpriv can set a parent-death signal here (checked once). */
function havePdeathsig(): boolean {
  pdeathsig ??= process.platform === "linux" && spawnSync("setpriv", ["--pdeathsig", "SIGTERM", "--", "true"], { stdio: "ignore" }).status === 0;
  return pdeathsig;
}

/**
 * Starts `node bin/perceptd.js <args>` from the repository root with a NOTIFY_SOCKET of its
 * own, collecting its JSON log lines.
 */
export interface RunDaemonOptions {
  /**
   * Start the daemon in a process group of its own, so that a Ctrl-C at the terminal
   * reaches only the caller, which stops the daemon itself (`perceptd soak`).
   */
  ownProcessGroup?: boolean;
}

export function runDaemon(args: string[], env: NodeJS.ProcessEnv = {}, opts: RunDaemonOptions = {}): RunningDaemon {
  // A caller that brings its own NOTIFY_SOCKET (a systemd test) listens itself; ready() is then not ours to give.
  const notify = env.NOTIFY_SOCKET === undefined ? spawnNotifyListener(uniqueNotifyAddress()) : null;
  const argv = [...PERCEPTD_ARGV, ...args];
  const [cmd, ...cmdArgs] = havePdeathsig() ? ["setpriv", "--pdeathsig", "SIGTERM", "--", ...argv] : argv;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (notify !== null) {
    childEnv.NOTIFY_SOCKET = notify.address;
    // No watchdog pings asked for: WATCHDOG_USEC from our own environment (a soak run under
    // systemd) belongs to us, not to the child.
    for (const k of ["WATCHDOG_USEC", "WATCHDOG_PID"]) if (env[k] === undefined) delete childEnv[k];
  }
  const child = spawn(cmd, cmdArgs, {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
    detached: opts.ownProcessGroup === true,
  });
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", killAllDaemons);
  }
  const logs: LogLine[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let buf = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let l: LogLine;
      try {
        l = JSON.parse(line) as LogLine;
      } catch {
        continue; // not a log line
      }
      logs.push(l);
      for (const w of [...waiters]) {
        if (w.pred(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((res) => {
    // "error" (spawn failed) comes without "exit"; either way the child is gone.
    child.on("error", (e) => {
      err += `\nspawn error: ${e.message}`;
      live.delete(child);
      res(-1);
    });
    child.on("exit", (code, sig) => {
      live.delete(child);
      res(code ?? sig ?? -1);
    });
  });
  void exited.then(() => notify?.close());
  const readyDatagram =
    notify === null ? Promise.reject(new Error("ready(): the caller set NOTIFY_SOCKET, so the daemon's READY=1 goes to the caller's listener")) : readySignal(notify, exited, () => err);
  readyDatagram.catch(() => undefined);
  const kill = (): void => {
    if (isRunning(child)) child.kill("SIGKILL");
  };
  return {
    child,
    logs,
    stderr: () => err,
    exited,
    ready(timeoutMs = DEFAULT_READY_TIMEOUT_MS) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`daemon sent no READY=1 within ${timeoutMs} ms; stderr: ${err.slice(-2000)}; last logs: ${JSON.stringify(logs.slice(-5))}`)), timeoutMs);
      });
      return Promise.race([readyDatagram, late]).finally(() => clearTimeout(timer));
    },
    waitForLog(pred, timeoutMs = 60_000) {
      const hit = logs.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((res, rej) => {
        const t = setTimeout(
          () => rej(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err.slice(-2000)}; logs: ${JSON.stringify(logs.slice(-5))}`)),
          timeoutMs,
        );
        waiters.push({ pred, resolve: (l) => (clearTimeout(t), res(l)) });
        // The grace period lets the last lines written before exit arrive first.
        void exited.then(() =>
          setTimeout(() => {
            clearTimeout(t);
            rej(new Error(`daemon exited before the log line; stderr: ${err.slice(-2000)}`));
          }, 50),
        );
      });
    },
    async stop(timeoutMs = 5000) {
      if (!isRunning(child)) return exited;
      child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), timeoutMs)));
      const first = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (first !== "late") return first;
      kill();
      return exited;
    },
    kill,
  };
}

/** The first READY=1 datagram on `notify`, decoded; rejects when the daemon exits before it. */
function readySignal(notify: NotifyListener, exited: Promise<number | string>, stderr: () => string): Promise<DaemonReady> {
  return new Promise((resolve, reject) => {
    const take = (datagram: string): boolean => {
      const f = parseNotifyFields(datagram);
      if (f.READY !== "1") return false;
      const bus = f[READY_FIELDS.bus];
      const metrics = f[READY_FIELDS.metrics];
      if (bus === undefined || metrics === undefined) {
        reject(new Error(`READY=1 without ${READY_FIELDS.bus} and ${READY_FIELDS.metrics}: ${JSON.stringify(datagram)}`));
        return true;
      }
      const view = f[READY_FIELDS.view];
      resolve({
        endpoints: bus.split(" ").filter(Boolean),
        metricsUrl: metrics === "off" ? null : metrics,
        viewUrl: view === undefined || view === "off" ? null : view,
        status: f.STATUS ?? "",
        at: performance.now(),
      });
      return true;
    };
    if (notify.received.some(take)) return;
    notify.onDatagram((d) => void take(d));
    notify.listening.catch((e: unknown) => reject(e instanceof Error ? e : new Error(String(e))));
    // The grace period lets a datagram sent right before the exit arrive first.
    void exited.then((code) =>
      setTimeout(() => reject(new Error(`daemon exited (${code}) before it was ready; stderr: ${stderr().slice(-2000)}`)), 100),
    );
  });
}

export interface DetectionsSubscription {
  messages: DetectionsMessage[];
  /** [topic, payload] as received */
  raw: Buffer[][];
  /** process.hrtime.bigint() when each message came out of the socket, before decoding */
  receivedNs: bigint[];
  /** the first error that ended the receive loop other than close(), e.g. an undecodable message */
  error: () => Error | null;
  close: () => void;
}

export interface CollectOptions {
  /** called once per message, after it was stored */
  onMessage?: (m: DetectionsMessage, receivedNs: bigint, index: number) => void;
}

/** Subscribes to `detections` on `endpoint` and collects messages until close(). */
export async function collectDetections(endpoint: string, opts: CollectOptions = {}): Promise<DetectionsSubscription> {
  const sub = new Subscriber();
  sub.connect(endpoint);
  sub.subscribe("detections");
  const messages: DetectionsMessage[] = [];
  const raw: Buffer[][] = [];
  const receivedNs: bigint[] = [];
  let open = true;
  let failure: Error | null = null;
  void (async () => {
    try {
      for await (const frames of sub) {
        // Taken first: decoding (JSON + schema check) is the subscriber's cost, not the pipeline's.
        const t = process.hrtime.bigint();
        const m = decodeDetections(frames[1]);
        raw.push(frames);
        receivedNs.push(t);
        messages.push(m);
        opts.onMessage?.(m, t, messages.length - 1);
        if (!open) break;
      }
    } catch (e) {
      if (open) failure = e instanceof Error ? e : new Error(String(e));
    }
  })();
  return {
    messages,
    raw,
    receivedNs,
    error: () => failure,
    close: () => {
      open = false;
      sub.close();
    },
  };
}
