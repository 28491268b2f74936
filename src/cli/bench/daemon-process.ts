// The real daemon as a child process, driven from outside the way an integrator drives it:
// a YAML config in a temp folder, `node bin/perceptd.js run`, JSON logs on stdout, a real
// ZeroMQ subscriber. Shared by `perceptd bench pipeline` and the daemon tests
// (test/daemon/harness.ts), so both measure and check the same thing.
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
import { decodeDetections, type DetectionsMessage } from "../../bus/detections-message.ts";

/** The repository root: bin/perceptd.js and relative config paths resolve against it. */
export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
export const PERCEPTD_BIN = join(REPO_ROOT, "bin/perceptd.js");

/** The log line the daemon writes once the bus is bound; it carries `endpoints` and `metrics`. */
export const BUS_BOUND_MSG = "bus bound; loading model";

/** The bench's bus-alone publisher (`perceptd bench pipeline`'s (c2), and with a model (c3)), run as `node --import tsx <it> <fps> [<model-json>]`. */
export const BUS_FLOOR_PUBLISHER = join(REPO_ROOT, "src/cli/bench/bus-floor-publisher.ts");
/** The log line it writes once bound; it carries `endpoints`. */
export const BUS_FLOOR_BOUND_MSG = "bus floor bound";

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

/** Starts `node bin/perceptd.js <args>` from the repository root, collecting its JSON log lines. */
export function runDaemon(args: string[], env: NodeJS.ProcessEnv = {}): RunningDaemon {
  return runNodeProcess("daemon", [PERCEPTD_BIN, ...args], env);
}

/**
 * Starts `node <nodeArgs>` from the repository root, tracked and logged like the daemon:
 * for the bench's other child processes, which write JSON log lines as the daemon does.
 */
export function runNodeProcess(name: string, nodeArgs: string[], env: NodeJS.ProcessEnv = {}): RunningDaemon {
  const argv = [process.execPath, ...nodeArgs];
  const [cmd, ...cmdArgs] = havePdeathsig() ? ["setpriv", "--pdeathsig", "SIGTERM", "--", ...argv] : argv;
  const child = spawn(cmd, cmdArgs, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
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
  const kill = (): void => {
    if (isRunning(child)) child.kill("SIGKILL");
  };
  return {
    child,
    logs,
    stderr: () => err,
    exited,
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
            rej(new Error(`${name} exited before the log line; stderr: ${err.slice(-2000)}`));
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

/**
 * Waits for a child's log line `msg` (BUS_FLOOR_BOUND_MSG and the like) and returns the
 * first of the `endpoints` it names, where a subscriber can connect.
 */
export async function waitForEndpoint(proc: RunningDaemon, msg: string, timeoutMs: number): Promise<string> {
  const line = await proc.waitForLog((l) => l.msg === msg, timeoutMs);
  const endpoints = line.endpoints;
  if (!Array.isArray(endpoints) || typeof endpoints[0] !== "string") throw new Error(`log line "${msg}" lacks endpoints: ${JSON.stringify(line)}`);
  return endpoints[0];
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
