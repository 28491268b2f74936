// systemd service notification (sd_notify(3)): READY=1 once the daemon serves, WATCHDOG=1
// while it is healthy enough to keep, STOPPING=1 at shutdown, STATUS=... for
// `systemctl status`. See systemd/perceptd.service for the unit that expects these.
//
// The datagram goes out through libsystemd's own sd_notify() (the sd-notify package, an
// optional native dependency built against libsystemd-dev). Node has no unix datagram
// sockets, and the alternatives were worse: the unix-dgram package copies the address
// with strncpy and passes sizeof(sockaddr_un) as its length, so abstract "@name" sockets
// (which need a leading NUL and an exact length) are unreachable; running systemd-notify(1)
// sends from a child PID, which NotifyAccess=main rejects. libsystemd handles path and
// abstract sockets, and whatever systemd adds later, exactly as systemd expects.
//
// This module parses NOTIFY_SOCKET and WATCHDOG_USEC itself, so "not under systemd" is a
// no-op decided here (no native code needed), the watchdog interval is known, and a
// malformed value is an error with a message rather than a silent nothing.
import { createRequire } from "node:module";
import type { HealthState } from "../core/health.ts";

/**
 * Fields the daemon adds to its READY=1 datagram (sd_notify(3) reserves X_ for programs'
 * own variables; systemd ignores them). Whoever started the daemon with a NOTIFY_SOCKET of
 * its own (`perceptd soak`, the daemon tests) learns from them where the daemon listens,
 * ports chosen at start (port 0) included. This is the declared readiness signal: nothing
 * outside the daemon reads its log text to know it is ready.
 */
export const READY_FIELDS = {
  /** the bound bus endpoints, space-separated */
  bus: "X_PERCEPTD_BUS",
  /** the metrics server's base URL, or "off" */
  metrics: "X_PERCEPTD_METRICS",
  /** the live view's base URL, or "off" */
  view: "X_PERCEPTD_VIEW",
} as const;

export type NotifySocket =
  /** a socket file, e.g. /run/systemd/notify */
  | { kind: "path"; path: string }
  /** Linux abstract namespace: "@name" in the variable, a leading NUL on the wire */
  | { kind: "abstract"; name: string };

/** Sends one notification datagram. */
export interface NotifyTransport {
  send(message: string): void;
}

/**
 * NOTIFY_SOCKET as systemd sets it: an absolute path, or "@" and an abstract name. Unset or
 * empty: null (not started by systemd with Type=notify). Anything else throws: systemd
 * would not set it, and ignoring it would leave a Type=notify unit hanging in "activating".
 */
export function parseNotifySocket(value: string | undefined): NotifySocket | null {
  if (value === undefined || value === "") return null;
  if (value.startsWith("/")) return { kind: "path", path: value };
  if (value.startsWith("@") && value.length > 1) return { kind: "abstract", name: value.slice(1) };
  throw new RangeError(`NOTIFY_SOCKET=${JSON.stringify(value)}: expected an absolute socket path or @abstract-name`);
}

/**
 * How often to send WATCHDOG=1, in ms: half of WATCHDOG_USEC, as sd_watchdog_enabled(3)
 * recommends, so one late ping never trips it. null when systemd expects no pings: no or
 * no valid WATCHDOG_USEC, or WATCHDOG_PID names another process (we were started by a
 * wrapper that inherited the variables; the pings are its job).
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number | null {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[0-9]+$/.test(usec)) return null;
  const us = Number(usec);
  if (!Number.isSafeInteger(us) || us <= 0) return null;
  const forPid = env.WATCHDOG_PID;
  if (forPid !== undefined && forPid !== "" && forPid !== String(pid)) return null;
  return us / 2000;
}

/** Send WATCHDOG=1 only while not FAULT: a faulted daemon is to be restarted by systemd. */
export function shouldFeedWatchdog(state: HealthState): boolean {
  return state !== "fault";
}

interface SdNotifyBinding {
  sendState(state: string): void;
}

function isSdNotifyBinding(m: unknown): m is SdNotifyBinding {
  return typeof m === "object" && m !== null && typeof (m as { sendState?: unknown }).sendState === "function";
}

/**
 * libsystemd's sd_notify() through the sd-notify package, or null when the package or its
 * native build is missing (it is an optional dependency: no libsystemd-dev, not Linux).
 * sd_notify() reads NOTIFY_SOCKET from the process environment at each call, and sends
 * nothing when it is unset. It reports no errors through this binding.
 */
export function nativeTransport(): NotifyTransport | null {
  let mod: unknown;
  try {
    mod = createRequire(import.meta.url)("sd-notify");
  } catch {
    return null;
  }
  if (!isSdNotifyBinding(mod)) return null;
  const binding = mod;
  return { send: (message) => binding.sendState(message) };
}

export interface SystemdNotifierOptions {
  /** default process.env; the native transport always reads process.env itself */
  env?: NodeJS.ProcessEnv;
  pid?: number;
  /** default nativeTransport() */
  transport?: NotifyTransport | null;
  /** false: never ping the watchdog (config health.systemdWatchdog: off) */
  watchdog?: boolean;
}

const FIELD_NAME = /^[A-Z][A-Z0-9_]*$/;

export class SystemdNotifier {
  readonly socket: NotifySocket | null;
  /** half of WATCHDOG_USEC, ms; null when no pings are expected */
  readonly watchdogMs: number | null;
  private readonly transport: NotifyTransport | null;

  private constructor(socket: NotifySocket | null, watchdogMs: number | null, transport: NotifyTransport | null) {
    this.socket = socket;
    this.watchdogMs = watchdogMs;
    this.transport = transport;
  }

  /**
   * Reads NOTIFY_SOCKET and WATCHDOG_USEC. Throws when NOTIFY_SOCKET is set but malformed,
   * or set while no transport can be loaded: under Type=notify the unit would otherwise sit
   * in "activating" until TimeoutStartSec and fail with no word on why.
   */
  static fromEnv(opts: SystemdNotifierOptions = {}): SystemdNotifier {
    const env = opts.env ?? process.env;
    const socket = parseNotifySocket(env.NOTIFY_SOCKET);
    if (socket === null) return new SystemdNotifier(null, null, null);
    const transport = opts.transport === undefined ? nativeTransport() : opts.transport;
    if (transport === null) {
      throw new Error(
        "NOTIFY_SOCKET is set (started by systemd with Type=notify) but the sd-notify native module is not available; " +
          "install libsystemd-dev, then `npm rebuild sd-notify` (scripts/setup.sh does both)",
      );
    }
    const watchdogMs = opts.watchdog === false ? null : watchdogIntervalMs(env, opts.pid ?? process.pid);
    return new SystemdNotifier(socket, watchdogMs, transport);
  }

  /** A notifier that never sends (not under systemd; tests). */
  static disabled(): SystemdNotifier {
    return new SystemdNotifier(null, null, null);
  }

  /** True when notifications go anywhere. */
  get enabled(): boolean {
    return this.socket !== null && this.transport !== null;
  }

  /**
   * Sends the fields as one datagram, "KEY=value" lines in the given order (systemd applies
   * one datagram atomically, e.g. READY=1 with its STATUS). Returns false when disabled.
   */
  notify(fields: Readonly<Record<string, string | number>>): boolean {
    const lines = Object.entries(fields).map(([k, v]) => {
      if (!FIELD_NAME.test(k)) throw new RangeError(`sd_notify field name ${JSON.stringify(k)}: expected upper-case letters, digits and '_'`);
      return `${k}=${oneLine(String(v))}`;
    });
    if (lines.length === 0) throw new RangeError("sd_notify: no fields to send");
    if (!this.enabled || this.transport === null) return false;
    this.transport.send(lines.join("\n"));
    return true;
  }

  /** Start-up is complete: systemd moves the unit to "active" and starts dependents. `extra`: X_ fields (READY_FIELDS) in the same datagram. */
  ready(status?: string, extra: Readonly<Record<string, string>> = {}): boolean {
    return this.notify({ READY: 1, ...(status === undefined ? {} : { STATUS: status }), ...extra });
  }

  /** Feeds the watchdog (WatchdogSec=). Normally through WatchdogFeeder, which applies the health policy. */
  watchdog(): boolean {
    return this.notify({ WATCHDOG: 1 });
  }

  /** Shutdown has begun: `systemctl status` shows "deactivating" instead of a failure to come. */
  stopping(status?: string): boolean {
    return this.notify(status === undefined ? { STOPPING: 1 } : { STOPPING: 1, STATUS: status });
  }

  /** Free-form one-line status for `systemctl status`. */
  status(text: string): boolean {
    return this.notify({ STATUS: text });
  }

  /**
   * Asks for more time in the current start or stop phase (EXTEND_TIMEOUT_USEC): for a
   * TensorRT engine build on first start, which can outlast TimeoutStartSec.
   */
  extendTimeout(ms: number): boolean {
    if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`extendTimeout: ms must be a positive number, got ${ms}`);
    return this.notify({ EXTEND_TIMEOUT_USEC: Math.round(ms * 1000) });
  }
}

/** Monotonic milliseconds. */
type Clock = () => number;

/**
 * Sends WATCHDOG=1 at the notifier's interval while the health state allows it
 * (shouldFeedWatchdog). Drive it with feed(state) from a timer that runs anyway (the
 * health tick), or start(() => state) for its own timer. Either way the pings only flow
 * while the main thread's event loop turns, which is half of what the watchdog checks; the
 * state is the other half.
 */
export class WatchdogFeeder {
  readonly intervalMs: number | null;
  private readonly notifier: SystemdNotifier;
  private readonly clock: Clock;
  private lastFedMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private fedCount = 0;
  private withheldCount = 0;

  constructor(notifier: SystemdNotifier, opts: { clock?: Clock } = {}) {
    this.notifier = notifier;
    this.intervalMs = notifier.enabled ? notifier.watchdogMs : null;
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** WATCHDOG=1 sent so far. */
  get fed(): number {
    return this.fedCount;
  }

  /** Pings due but withheld because of the state. */
  get withheld(): number {
    return this.withheldCount;
  }

  /**
   * Sends a ping when one is due (intervalMs since the last) and the state allows it.
   * Returns "fed", "withheld" (due, but FAULT), or "idle" (not due, or no watchdog).
   */
  feed(state: HealthState): "fed" | "withheld" | "idle" {
    if (this.intervalMs === null) return "idle";
    const now = this.clock();
    if (this.lastFedMs !== null && now - this.lastFedMs < this.intervalMs) return "idle";
    if (!shouldFeedWatchdog(state)) {
      this.withheldCount++;
      return "withheld";
    }
    this.notifier.watchdog();
    this.lastFedMs = now;
    this.fedCount++;
    return "fed";
  }

  /** Own timer, for when no health tick runs yet (start-up). No-op without a watchdog. */
  start(state: () => HealthState): void {
    if (this.intervalMs === null || this.timer !== null) return;
    // A quarter of the interval: a ping is never more than that late behind being due.
    this.timer = setInterval(() => this.feed(state()), Math.max(10, this.intervalMs / 4));
    this.timer.unref();
    this.feed(state());
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

function oneLine(s: string): string {
  // A newline would start a new field: STATUS text must not be able to send READY=1.
  return s.replace(/[\r\n]+/g, " ");
}
