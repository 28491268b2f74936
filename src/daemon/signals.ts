// What SIGINT, SIGTERM and SIGHUP do to `perceptd run`, in every phase of its life. The
// handlers are installed before anything slow (the model load, its warm-up) and stay until
// the process exits, so no first signal ever meets Node's default action (which kills the
// process: exit 130, 143, or 129 "Hangup" for SIGHUP).
//
//   phase              SIGINT / SIGTERM                               SIGHUP
//   starting           stop: what has started is closed, exit 0        ignored, logged
//   running            orderly stop (frame in flight published,        reload the config
//                      bus flushed), exit 0
//   stopping, stopped  a second one ends the process by that signal    ignored, logged
//                      at once (a shell reports 128 + its number:
//                      130 SIGINT, 143 SIGTERM), logged first
//
// Why the signal itself rather than process.exit(130): exit() runs Node's teardown, which
// waits on (or aborts in) the native threads still winding down (GStreamer, ONNX Runtime)
// and is exactly what the second signal asks to skip. It is also what a signal arriving in
// the process's last milliseconds, after JavaScript has finished, does anyway, so the
// status is the same wherever the second signal lands.
import { constants } from "node:os";
import type { Logger } from "pino";

export type DaemonPhase = "starting" | "running" | "stopping" | "stopped";

/** The exit status a shell reports for a stop forced by a second signal. */
export function forcedExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

/** Ends the process by `sig`'s default action, now. */
function dieBy(sig: NodeJS.Signals): void {
  process.removeAllListeners(sig);
  process.kill(process.pid, sig);
}

export interface DaemonSignalsOptions {
  logger: Logger;
  /** SIGHUP while running. */
  reload: () => void;
  /** Ends the process by this signal (default: its default action, now). */
  die?: (sig: NodeJS.Signals) => void;
}

export class DaemonSignals {
  private phaseNow: DaemonPhase = "starting";
  private readonly abortStart = new AbortController();
  private stop: (() => void) | null = null;
  private readonly log: Logger;
  private readonly reload: () => void;
  private readonly die: (sig: NodeJS.Signals) => void;
  private readonly onStop = (sig: NodeJS.Signals): void => this.stopSignal(sig);
  private readonly onHangup = (): void => this.hangup();

  constructor(opts: DaemonSignalsOptions) {
    this.log = opts.logger;
    this.reload = opts.reload;
    // The one place `perceptd run` ends the process itself: a forced stop must not wait for
    // the work still in flight that it is abandoning.
    this.die = opts.die ?? dieBy;
  }

  /** Aborted by a stop signal during start-up: pass to Daemon.start(). */
  get startSignal(): AbortSignal {
    return this.abortStart.signal;
  }

  get phase(): DaemonPhase {
    return this.phaseNow;
  }

  install(): void {
    process.on("SIGINT", this.onStop);
    process.on("SIGTERM", this.onStop);
    process.on("SIGHUP", this.onHangup);
  }

  /** Only for callers that go on living after the daemon (tests in-process); the CLI keeps them to the end. */
  uninstall(): void {
    process.off("SIGINT", this.onStop);
    process.off("SIGTERM", this.onStop);
    process.off("SIGHUP", this.onHangup);
  }

  /** The daemon is up; `stop` begins its orderly stop. */
  running(stop: () => void): void {
    if (this.phaseNow !== "starting") return;
    this.phaseNow = "running";
    this.stop = stop;
  }

  /** The daemon began stopping on its own (every replay ended, health gave up). */
  stopping(): void {
    if (this.phaseNow === "starting" || this.phaseNow === "running") this.phaseNow = "stopping";
  }

  /** The daemon has stopped; the process is about to exit. */
  stopped(): void {
    this.phaseNow = "stopped";
  }

  private stopSignal(sig: NodeJS.Signals): void {
    switch (this.phaseNow) {
      case "starting":
        this.phaseNow = "stopping";
        this.log.info({ signal: sig }, "signal received during start-up: closing what has started, then exiting");
        this.abortStart.abort();
        return;
      case "running":
        this.phaseNow = "stopping";
        this.log.info({ signal: sig }, "signal received");
        this.stop?.();
        return;
      case "stopping":
      case "stopped": {
        const code = forcedExitCode(sig);
        const what = this.phaseNow === "stopping" ? "during the stop" : "after the stop";
        this.log.warn({ signal: sig, exitCode: code }, `second signal (${sig}) ${what}: ending now by ${sig} (status ${code})`);
        this.die(sig);
        return;
      }
    }
  }

  private hangup(): void {
    if (this.phaseNow === "running") {
      this.reload();
      return;
    }
    this.log.warn({ signal: "SIGHUP", phase: this.phaseNow }, `SIGHUP while ${this.phaseNow}: ignored (a reload applies only to a running daemon)`);
  }
}
