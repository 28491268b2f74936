// `perceptd run`: the daemon. Loads and checks the config, starts the stages, prints a
// status line on a terminal, and stops cleanly on SIGINT/SIGTERM or when a replayed file
// ends. Exit codes: 0 clean stop, 1 start-up failure, 66 (EX_NOINPUT) a replay could not be
// read, 70 (EX_SOFTWARE) the health monitors gave up, 78 (EX_CONFIG) invalid configuration,
// or ended by SIGINT/SIGTERM itself (a shell's 130, 143) when a second one cut the stop short
// (src/daemon/signals.ts).
import type { Command } from "commander";
import { ConfigError, describeConfig, loadConfig } from "../../config/load.ts";
import { Daemon, EXIT_FATAL, EXIT_SOURCE_FAILED, StartAborted } from "../../daemon/daemon.ts";
import { PHASE_LOG } from "../../daemon/log-messages.ts";
import { DaemonSignals } from "../../daemon/signals.ts";
import { formatStatus } from "../../daemon/status-line.ts";
import type { Config } from "../../config/schema.ts";
import { maskRtspCredentials } from "../../ingest/pipeline-description.ts";
import { threadpoolRefusal } from "../../ingest/threadpool.ts";
import { createLogger } from "../../util/logger.ts";

export const EX_CONFIG = 78;

/** Thrown for a failure whose exit code is not 1. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

interface RunOptions {
  config: string;
  set: string[];
  helpConfig?: boolean;
  checkConfig?: boolean;
}

export function register(program: Command): void {
  program
    .command("run")
    .description("run the daemon: cameras -> detector -> ZeroMQ bus, with Prometheus metrics")
    .option("-c, --config <path>", "YAML configuration file", "config/default.yaml")
    .option("--set <key=value>", "override a config key (repeatable), e.g. --set model.scoreThreshold=0.5", (v: string, prev: string[]) => [...prev, v], [])
    .option("--check-config", "validate the configuration, print it resolved, and exit")
    .option("--help-config", "describe every configuration key with its default, and exit")
    .addHelpText(
      "after",
      "\nEnvironment: PERCEPTD_<SECTION>__<KEY>=value overrides a key (e.g. PERCEPTD_METRICS__PORT=0);\n" +
        "order: file < environment < --set. SIGINT/SIGTERM stop cleanly (exit 0), during start-up too; a second\n" +
        "one ends the process at once by that signal (status 130, 143). SIGHUP reloads (ignored unless running).\n" +
        "Exit codes: 0 stopped or every replay ended, 1 start-up failure, 66 a replay could not be read,\n" +
        "70 the health monitors gave up (systemd restarts), 78 invalid configuration.",
    )
    .action(async (opts: RunOptions) => {
      if (opts.helpConfig) {
        process.stdout.write(describeConfig() + "\n");
        return;
      }
      let loaded;
      try {
        loaded = await loadConfig(opts.config, { set: opts.set });
      } catch (e) {
        if (e instanceof ConfigError) throw new ExitError(e.message, EX_CONFIG);
        throw e;
      }
      // Before anything starts: with too few pool threads camera N+1 fails to start and the
      // daemon would run half its cameras (the threadpool is sized in bin/ before node's starts).
      const poolTooSmall = threadpoolRefusal(loaded.config.cameras.length);
      if (poolTooSmall !== null) throw new ExitError(`${loaded.path}: ${poolTooSmall}`, EX_CONFIG);
      if (opts.checkConfig) {
        process.stdout.write(JSON.stringify(withMaskedCredentials(loaded.config), null, 2) + "\n");
        return;
      }
      await runDaemon(loaded.config, loaded.sources, opts);
    });
}

/** The config as --check-config prints it: RTSP user and password masked as the logs mask them (the output lands in terminals, tickets and CI logs). */
function withMaskedCredentials(config: Config): Config {
  return {
    ...config,
    cameras: config.cameras.map((c) => {
      if (c.source.type === "rtsp") return { ...c, source: { ...c.source, url: maskRtspCredentials(c.source.url) } };
      if (c.source.type === "pipeline") return { ...c, source: { ...c.source, pipeline: maskRtspCredentials(c.source.pipeline) } };
      return c;
    }),
  };
}

async function runDaemon(config: Config, sources: string[], opts: RunOptions): Promise<void> {
  const logger = createLogger(config.log);
  // SIGHUP re-reads the same file with the same overrides; an invalid file is rejected
  // and the running settings stay as they were.
  let daemon: Daemon | undefined;
  const reload = (): void => {
    loadConfig(opts.config, { set: opts.set })
      .then((next) => {
        const r = daemon?.reload(next.config);
        if (!r) return;
        logger.info({ applied: r.applied, needsRestart: r.needsRestart }, PHASE_LOG.reloaded);
        if (r.needsRestart.length > 0) logger.warn({ keys: r.needsRestart }, `SIGHUP: ${r.needsRestart.join(", ")} changed but take effect only after a restart`);
      })
      .catch((e: unknown) => logger.error({ err: e instanceof Error ? e.message : String(e) }, PHASE_LOG.reloadRejected));
  };
  // Before anything slow: a signal during the model load or warm-up must not meet Node's
  // default action (src/daemon/signals.ts has the table).
  const signals = new DaemonSignals({ logger, reload });
  signals.install();
  logger.info({ sources, node: process.version }, "perceptd starting");
  try {
    daemon = await Daemon.start({ config, logger, signal: signals.startSignal, onStopping: () => signals.stopping() });
  } catch (e) {
    if (!(e instanceof StartAborted)) throw e;
    signals.stopped();
    logger.info({ reason: "signal" }, "perceptd exiting (stopped during start-up)");
    return;
  }
  const d = daemon;
  signals.running(() => void d.stop("signal"));

  const showStatus = config.status.mode === "on" || (config.status.mode === "auto" && process.stderr.isTTY === true);
  const timer = showStatus ? setInterval(() => process.stderr.write(`\r\x1b[2K${formatStatus(d.status())}`), config.status.intervalMs) : undefined;

  const reason = await d.stopped;
  signals.stopped();
  if (timer) {
    clearInterval(timer);
    process.stderr.write(`\r\x1b[2K${formatStatus(d.status())}\n`);
  }
  logger.info({ reason }, "perceptd exiting");
  if (reason === "fatal") throw new ExitError("health monitors gave up (see the log); exiting for the service manager to restart perceptd", EXIT_FATAL);
  if (reason === "source-failed") throw new ExitError("a video source failed and will not be restarted (see the camera error in the log)", EXIT_SOURCE_FAILED);
}
