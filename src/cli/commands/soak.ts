// `perceptd soak`: a bench soak of the daemon with a readable report (src/soak/). Exit codes:
// 0 every budget held, 1 a budget failed (or the soak ended early: a crash, a replay that
// ended), 2 bad flags or fault plan, 78 invalid configuration, 130 interrupted (the report
// is still written).
import { resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { ConfigError, loadConfig } from "../../config/load.ts";
import { formatDuration, parseDuration } from "../../soak/duration.ts";
import { FaultPlanError, readFaultPlan } from "../../soak/fault-plan.ts";
import { readBaseline, runSoak, type SoakProgress } from "../../soak/runner.ts";
import type { BudgetResult } from "../../soak/budgets.ts";
import { EX_CONFIG, ExitError } from "./run.ts";
import { markdownTable } from "../bench/table.ts";

const EXIT_USAGE = 2;

interface SoakCommandOptions {
  config: string;
  duration: number;
  window: number;
  out?: string;
  baseline?: string;
  faults?: string;
  set: string[];
}

function durationOption(flag: string, minMs: number): (value: string) => number {
  return (value) => {
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch (e) {
      throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
    }
    if (ms < minMs) throw new InvalidArgumentError(`${flag} must be at least ${formatDuration(minMs)}, got "${value}"`);
    return ms;
  };
}

function defaultOutDir(): string {
  const t = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `soak-${t}`;
}

const clock = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
};

/** A live line on a terminal; milestones only (one a line) elsewhere. */
function progressPrinter(stream: NodeJS.WriteStream): { onProgress: (p: SoakProgress) => void; done: () => void } {
  const tty = stream.isTTY === true;
  let live = false;
  const clear = (): void => {
    if (live) stream.write("\r\x1b[2K");
    live = false;
  };
  return {
    onProgress: (p) => {
      if (p.event) {
        clear();
        stream.write(`soak: ${p.event}\n`);
      }
      if (!tty) return;
      const head =
        p.phase === "measuring"
          ? `soak ${clock(p.elapsedMs)} / ${clock(p.durationMs)}  left ${clock(p.durationMs - p.elapsedMs)}  window ${Math.min(p.window, p.windows)}/${p.windows}`
          : p.phase === "warm-up"
            ? `soak warm-up, ${clock(-p.elapsedMs)} to go`
            : `soak ${p.phase}`;
      const p99 = p.recentP99Ms === null ? "-" : `${p.recentP99Ms.toFixed(1)} ms`;
      stream.write(`\r\x1b[2K${head}  e2e p99 ${p99}  msgs ${p.messages}  gaps ${p.gaps}  health ${p.health ?? "-"}`);
      live = true;
    },
    done: clear,
  };
}

export function verdictText(results: readonly BudgetResult[]): string {
  const withBaseline = results.some((r) => r.baseline !== undefined);
  const head = ["budget", "limit", "measured", ...(withBaseline ? ["baseline", "difference"] : []), "result"];
  const rows = results.map((r) => [r.name, r.limit, r.measured, ...(withBaseline ? [r.baseline?.measured ?? "-", r.baseline?.difference ?? "-"] : []), r.status.toUpperCase()]);
  return markdownTable(
    head.map((header) => ({ header })),
    rows,
  );
}

export function register(program: Command): void {
  program
    .command("soak")
    .description(
      "soak-test the daemon: run it with a config for a long time beside a subscriber that checks every message and a sampler " +
        "(metrics, memory, CPU, temperatures); judge the config's soak: budgets; write soak.json, windows.csv and report.html",
    )
    .option("-c, --config <path>", "YAML configuration the daemon runs, with its soak: budgets", "config/bench-soak.yaml")
    .option("-d, --duration <time>", "how long to measure, after the warm-up (e.g. 130s, 10m, 2h)", durationOption("--duration", 1000), parseDuration("10m"))
    .option("-w, --window <time>", "length of each window of the report", durationOption("--window", 1000), parseDuration("1m"))
    .option("-o, --out <dir>", "folder for soak.json, windows.csv and report.html (default: soak-<date>-<time>)")
    .option("--baseline <dir>", "an earlier soak's folder: overlaid in the plots, differences in the verdict")
    .option("--faults <plan.yaml>", "timed faults (camera-stall, inference-hang, subscriber-pause); see docs/soak.md")
    .option("--set <key=value>", "override a config key (repeatable), as `perceptd run --set`", (v: string, prev: string[]) => [...prev, v], [])
    .addHelpText(
      "after",
      "\nThe daemon runs as `perceptd run --config <path>`; the soak waits for its READY=1 (sd_notify), leaves the\n" +
        "config's soak.warmupS out, then measures for --duration. Budgets: `perceptd run --help-config` (soak.*).\n" +
        "Exit codes: 0 every budget held, 1 a budget failed or the soak ended early (daemon exited, replay ended),\n" +
        "2 bad flags or fault plan, 78 invalid configuration, 130 interrupted (SIGINT; the report is still written).",
    )
    .action(async (opts: SoakCommandOptions) => {
      if (opts.window > opts.duration) throw new ExitError(`--window (${formatDuration(opts.window)}) is longer than --duration (${formatDuration(opts.duration)})`, EXIT_USAGE);
      let loaded;
      try {
        loaded = await loadConfig(opts.config, { set: opts.set });
      } catch (e) {
        if (e instanceof ConfigError) throw new ExitError(e.message, EX_CONFIG);
        throw e;
      }
      let faults;
      try {
        faults = opts.faults === undefined ? undefined : await readFaultPlan(opts.faults, loaded.config.cameras.map((c) => c.id), opts.duration);
      } catch (e) {
        if (e instanceof FaultPlanError) throw new ExitError(e.message, EXIT_USAGE);
        throw e;
      }
      let baseline;
      try {
        baseline = opts.baseline === undefined ? undefined : await readBaseline(opts.baseline);
      } catch (e) {
        throw new ExitError(e instanceof Error ? e.message : String(e), EXIT_USAGE);
      }
      const outDir = resolve(opts.out ?? defaultOutDir());
      const controller = new AbortController();
      let interrupts = 0;
      const onSigint = (): void => {
        interrupts++;
        if (interrupts > 1) process.exit(130);
        process.stderr.write("\nsoak: SIGINT: ending early and writing the report (again to quit at once)\n");
        controller.abort();
      };
      process.on("SIGINT", onSigint);
      process.on("SIGTERM", onSigint);
      const printer = progressPrinter(process.stderr);
      const setArgs = opts.set.flatMap((s) => ["--set", s]);
      let outcome;
      try {
        outcome = await runSoak({
          configPath: loaded.path,
          config: loaded.config,
          extraArgs: setArgs,
          durationMs: opts.duration,
          windowMs: opts.window,
          outDir,
          baseline,
          faults,
          command: `perceptd soak ${process.argv.slice(3).join(" ")}`.trim(),
          onProgress: printer.onProgress,
          signal: controller.signal,
        });
      } finally {
        printer.done();
        process.off("SIGINT", onSigint);
        process.off("SIGTERM", onSigint);
      }
      const r = outcome.result;
      process.stdout.write(`\n${verdictText(r.verdict.results)}\n\n`);
      process.stdout.write(`${r.verdict.pass ? "PASS" : "FAIL"}: ${r.windows.length} window(s) over ${formatDuration(r.measuredS * 1000)}\n`);
      for (const f of outcome.files) process.stdout.write(`wrote ${f}\n`);
      if (outcome.exitCode !== 0) {
        const failedNames = r.verdict.results.filter((x) => x.status === "fail").map((x) => x.name);
        throw new ExitError(outcome.exitCode === 130 ? "interrupted; the report covers what was measured" : `budgets failed: ${failedNames.join("; ")}`, outcome.exitCode);
      }
    });
}
