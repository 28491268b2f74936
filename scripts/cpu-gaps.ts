// How often this machine takes a busy core away, and for how long: the floor under every
// latency tail the daemon and its benchmarks measure here.
//
//   npx tsx scripts/cpu-gaps.ts [--seconds 20] [--spinners N]
//
// N worker threads (default: one per core) each read the monotonic clock in a tight loop
// and count the gaps between consecutive reads: a gap of a few ms is time the thread was
// off its core (another thread, the guest kernel, or the hypervisor running something
// else). Run once with a spinner per core (as during inference, when ORT's threads fill
// every core) and once with one core left free, and compare. Nothing else should run
// meanwhile; the script says how much other processes used.
import os from "node:os";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { systemBusyNs } from "../src/util/system-cpu.ts";

/** Gap thresholds, ms. */
const THRESHOLDS_MS = [0.5, 1, 2, 5, 10, 20];
const SPINNER = new URL("./cpu-gaps-spinner.mjs", import.meta.url);

/** What cpu-gaps-spinner.mjs posts back. */
interface SpinResult {
  /** gaps longer than each threshold, in THRESHOLDS_MS order */
  over: number[];
  maxMs: number;
  /** sum of the gaps longer than the first threshold */
  lostMs: number;
  spunMs: number;
}

/** This process's CPU time, all threads, in ns. */
function ownNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1e3;
}

function positive(name: string, text: string | undefined, fallback: number, integer: boolean): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!(Number.isFinite(v) && v > 0 && (!integer || Number.isInteger(v)))) {
    throw new Error(`cpu-gaps: --${name} must be a positive ${integer ? "integer" : "number"}, got "${text}"`);
  }
  return v;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: "string" }, spinners: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    console.log("usage: npx tsx scripts/cpu-gaps.ts [--seconds 20] [--spinners N (default: one per core)]");
    return;
  }
  const cores = os.availableParallelism();
  const seconds = positive("seconds", values.seconds, 20, false);
  const spinners = positive("spinners", values.spinners, cores, true);
  console.log(`${spinners} spinner(s) on ${cores} core(s) for ${seconds} s (${os.cpus()[0]?.model ?? "unknown CPU"})`);

  const busy0 = systemBusyNs();
  const own0 = ownNs();
  const results = await Promise.all(
    Array.from(
      { length: spinners },
      (_, k) =>
        new Promise<SpinResult>((resolve, reject) => {
          const w = new Worker(SPINNER, { workerData: { seconds, thresholdsMs: THRESHOLDS_MS }, name: `spinner-${k + 1}` });
          w.once("message", (r: SpinResult) => resolve(r));
          w.once("error", reject);
          w.once("exit", (code) => {
            if (code !== 0) reject(new Error(`cpu-gaps: spinner ${k + 1} exited with code ${code}`));
          });
        }),
    ),
  );
  const busy1 = systemBusyNs();
  const own1 = ownNs();

  const head = THRESHOLDS_MS.map((t) => `>${t} ms`.padStart(9)).join("");
  console.log(`spinner ${head}   max ms  lost ms  gaps >1 ms per s`);
  results.forEach((r, k) => {
    const perS = r.over[THRESHOLDS_MS.indexOf(1)] / (r.spunMs / 1e3);
    console.log(`${String(k + 1).padStart(7)} ${r.over.map((n) => String(n).padStart(9)).join("")} ${r.maxMs.toFixed(2).padStart(8)} ${r.lostMs.toFixed(1).padStart(8)} ${perS.toFixed(2).padStart(17)}`);
  });
  if (busy0 !== null && busy1 !== null) {
    const otherPct = ((busy1 - busy0 - (own1 - own0)) / (seconds * 1e9)) * 100;
    console.log(`other processes and the kernel: about ${Math.max(0, otherPct).toFixed(1)} % of one core meanwhile (from /proc/stat)`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
