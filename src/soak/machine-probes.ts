// What the soak's sampler reads from the machine rather than from the daemon's /metrics:
// a process's resident memory, CPU (in total and by thread group), open files, the thermal
// zones, and on a Jetson tegrastats. Each reader returns null (or nothing) where the source
// does not exist, so a soak on a laptop or in a container still runs; the report says what
// was not available.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";

export interface ProcessSample {
  rssBytes: number;
  /** user + system CPU time so far, ns (from the threads' schedstat, or the process's ticks) */
  cpuNs: number;
  /** CPU time so far by thread group (see threadGroup), ns */
  groupCpuNs: Record<string, number>;
  threads: number;
  fds: number | null;
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/**
 * Thread names are all the grouping there is: GStreamer names its streaming threads
 * "<element>:<pad>", libuv its pool "libuv-worker"; Node's workers, ONNX Runtime's pool and
 * V8's helpers all stay "node", so they share a group.
 */
export function threadGroup(pid: number, tid: number, name: string): string {
  if (tid === pid) return "main thread";
  if (name.includes(":")) return "GStreamer";
  if (name.startsWith("libuv")) return "libuv pool";
  return "inference, ORT, V8";
}

/** /proc/<pid>: memory, CPU by thread, file descriptors; null when the process is gone or /proc is not there. */
export function sampleProcess(pid: number): ProcessSample | null {
  const status = readOr(`/proc/${pid}/status`);
  if (status === null) return null;
  const rssKb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN);
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const groupCpuNs: Record<string, number> = {};
  let cpuNs = 0;
  for (const tid of tids) {
    // schedstat: ns on a core, ns waiting, timeslices. A thread may end between readdir and read.
    const sched = readOr(`/proc/${pid}/task/${tid}/schedstat`);
    const name = readOr(`/proc/${pid}/task/${tid}/comm`)?.trim() ?? "";
    const ns = sched === null ? NaN : Number(sched.trim().split(/\s+/)[0]);
    if (!Number.isFinite(ns)) continue;
    const g = threadGroup(pid, Number(tid), name);
    groupCpuNs[g] = (groupCpuNs[g] ?? 0) + ns;
    cpuNs += ns;
  }
  let fds: number | null = null;
  try {
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    fds = null;
  }
  return { rssBytes: Number.isFinite(rssKb) ? rssKb * 1024 : NaN, cpuNs, groupCpuNs, threads: tids.length, fds };
}

/** Every readable /sys/class/thermal zone, by its type (and index where types repeat), in degrees Celsius. */
export function readThermalZones(root = "/sys/class/thermal"): Record<string, number> {
  const out: Record<string, number> = {};
  let zones: string[];
  try {
    zones = readdirSync(root).filter((z) => z.startsWith("thermal_zone"));
  } catch {
    return out;
  }
  for (const z of zones.sort()) {
    const milli = Number(readOr(`${root}/${z}/temp`)?.trim());
    if (!Number.isFinite(milli)) continue;
    const type = readOr(`${root}/${z}/type`)?.trim() || z;
    const key = type in out ? `${type} (${z})` : type;
    out[key] = milli / 1000;
  }
  return out;
}

/** One line of tegrastats, the figures a soak plots and judges by. */
export interface TegraSample {
  /** GPU load, % (GR3D_FREQ) */
  gpuPct?: number;
  /** memory controller load, % (EMC_FREQ) */
  emcPct?: number;
  /** temperatures by sensor, degrees C */
  tempsC: Record<string, number>;
  /** instantaneous power by rail, mW */
  powerMw: Record<string, number>;
}

/**
 * Parses a tegrastats line (JetPack 5 and 6 formats), e.g.
 * "RAM 2448/30536MB ... EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305,305] ... CPU@44.5C ... VDD_GPU_SOC 2361mW/2361mW ...".
 * Null when the line has none of the fields (a header or a warning).
 */
export function parseTegrastats(line: string): TegraSample | null {
  const s: TegraSample = { tempsC: {}, powerMw: {} };
  const gr3d = /GR3D_FREQ (\d+)%/.exec(line);
  if (gr3d) s.gpuPct = Number(gr3d[1]);
  const emc = /EMC_FREQ (\d+)%/.exec(line);
  if (emc) s.emcPct = Number(emc[1]);
  for (const m of line.matchAll(/\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b/g)) s.tempsC[m[1]] = Number(m[2]);
  for (const m of line.matchAll(/\b([A-Z][A-Z0-9_]*) (\d+)mW\/\d+mW/g)) s.powerMw[m[1]] = Number(m[2]);
  const any = s.gpuPct !== undefined || s.emcPct !== undefined || Object.keys(s.tempsC).length > 0 || Object.keys(s.powerMw).length > 0;
  return any ? s : null;
}

/** tegrastats running in the background, when it is on PATH (a Jetson); latest() is its newest line. */
export interface Tegrastats {
  latest(): TegraSample | null;
  stop(): void;
}

export function startTegrastats(intervalMs: number): Tegrastats | null {
  if (spawnSync("sh", ["-c", "command -v tegrastats"], { stdio: "ignore" }).status !== 0) return null;
  let child: ChildProcess;
  try {
    child = spawn("tegrastats", ["--interval", String(Math.max(100, Math.round(intervalMs)))], { stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return null;
  }
  let last: TegraSample | null = null;
  child.on("error", () => undefined);
  if (child.stdout) createInterface({ input: child.stdout }).on("line", (l) => (last = parseTegrastats(l) ?? last));
  return {
    latest: () => last,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    },
  };
}
