// What SIGINT, SIGTERM and SIGHUP do to `perceptd run`, in every phase of its life. The
// handlers are installed before anything slow (the model load, its warm-up) and stay until
// the process exits, so no signal ever meets Node's default action (which kills the
// process: exit 130, 143, or 129 "Hangup" for SIGHUP).
//
//   phase      SIGINT / SIGTERM                                SIGHUP
//   starting   stop: what has started is closed, exit 0         ignored, logged
//   running    orderly stop (frame in flight published,         reload the config
//              bus flushed), exit 0
//   stopping   second signal: exit at once with 128 + the       ignored, logged
//              signal's number (130 SIGINT, 143 SIGTERM),
//              the stop left unfinished
//   stopped    ignored, logged (the process is exiting)         ignored, logged
//
// 128 + the signal number is what a shell reports for a process a signal ended: the stop
// did not complete, and a service manager or script can tell that from an orderly exit.
import { constants } from "node:os";
import type { Logger } from "pino";

export type DaemonPhase = "starting" | "running" | "stopping" | "stopped";

/** The exit status of a stop forced by a second signal. */
export function forcedExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

export interface DaemonSignalsOptions {
  logger: Logger;
  /** SIGHUP while running. */
  reload: () => void;
  /** Ends the process now with this code (a forced stop cannot wait for the event loop to drain). */
  exit?: (code: number) => void;
}

export class DaemonSignals {
  private phaseNow: DaemonPhase = "starting";
  private readonly abortStart = new AbortController();
  private stop: (() => void) | null = null;
  private readonly log: Logger;
  private readonly reload: () => void;
  private readonly exit: (code: number) => void;
  private readonly onStop = (sig: NodeJS.Signals): void => this.stopSignal(sig);
  private readonly onHangup = (): void => this.hangup();

  constructor(opts: DaemonSignalsOptions) {
    this.log = opts.logger;
    this.reload = opts.reload;
    // The one place `perceptd run` ends the process itself: a forced stop must not wait for
    // the work still in flight that it is abandoning.
    this.exit = opts.exit ?? ((code) => process.exit(code));
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
      case "stopping": {
        const code = forcedExitCode(sig);
        this.log.warn({ signal: sig, exitCode: code }, `second signal (${sig}) during the stop: exiting now with ${code}, the stop unfinished`);
        this.exit(code);
        return;
      }
      case "stopped":
        this.log.info({ signal: sig }, "signal received after the stop: already exiting");
        return;
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
