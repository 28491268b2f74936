// The daemon's logger: pino, writing JSON lines to stdout (journald stores them as they
// are) or readable lines on a terminal.
//
// Choices, and why:
// - `time` is epoch milliseconds (pino's default), not an ISO string: no per-line date
//   formatting, no time-zone ambiguity, and the number compares directly with the
//   millisecond timestamps in bus messages. journald adds its own wall-clock timestamp
//   anyway, and the pretty format renders `time` readably.
// - `level` is written as its name ("warn"), not pino's number (40), so
//   `journalctl -o cat | jq 'select(.level == "error")'` needs no lookup table.
// - Writes are synchronous (pino.destination sync, pino-pretty's formatter called in
//   line): the lines written just before a crash are the ones that explain it, and the
//   daemon logs events, not frames, so a blocking write costs nothing that matters.
//   No pino transport: transports run in a worker thread, and the daemon's threads are
//   for inference.
import { pino } from "pino";
import type { DestinationStream, Logger } from "pino";
import { prettyFactory } from "pino-pretty";

export type { Logger };
/** Least severe level written, in pino's names; the config schema takes its enum from here. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** auto: readable lines on a terminal, JSON otherwise (journald). */
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
}

/** Bindings of a subsystem's child logger: `logger.child({ component: "ingest", camera: "front" })`. */
export interface LogBindings {
  component: string;
  camera?: string;
  [key: string]: unknown;
}

/** Where lines go; `isTTY` (as on process.stdout) decides the "auto" format. */
export type LogStream = DestinationStream & { isTTY?: boolean };

export function createLogger(opts: LoggerOptions, stream?: LogStream): Logger {
  const isTty = stream === undefined ? process.stdout.isTTY === true : stream.isTTY === true;
  const dest: DestinationStream = stream ?? pino.destination({ dest: 1, sync: true });
  if (resolveLogFormat(opts.format, isTty) === "json") {
    return pino({ level: opts.level, formatters: { level: (label) => ({ level: label }) } }, dest);
  }
  const prettify = prettyFactory({
    colorize: isTty && !process.env.NO_COLOR,
    translateTime: "SYS:HH:MM:ss.l",
    singleLine: true,
    ignore: "pid,hostname,component,camera",
    messageFormat: (log, messageKey) => {
      const where = [log.component, log.camera].filter((v) => typeof v === "string").join("/");
      const msg = String(log[messageKey] ?? "");
      return where ? `[${where}] ${msg}` : msg;
    },
  });
  return pino({ level: opts.level }, { write: (line: string) => dest.write(prettify(line)) });
}

export function resolveLogFormat(format: LogFormat, isTty: boolean): "json" | "pretty" {
  if (format === "auto") return isTty ? "pretty" : "json";
  return format;
}

/**
 * Changes the level at run time (SIGHUP). Child loggers follow their parent's level (pino
 * children inherit it through the prototype chain) unless they were given their own with
 * `child(bindings, { level })` or `child.level = ...`; those keep it.
 */
export function setLevel(logger: Logger, level: LogLevel): void {
  logger.level = level;
}
