// The daemon's health as one state derived from explicit reasons.
//
//   STARTING --ready--> OK <--> DEGRADED
//       \                \        |
//        \                v       v
//         `------------> FAULT <--'        any state --stop--> STOPPING (final)
//
// Nothing sets the state directly: monitors raise and clear reasons (camera_stall for
// camera "front", inference_hang for worker "shared", ...), each reason has a severity, and
// the state is the worst severity among the active reasons (OK when none; STARTING until
// markReady() unless a FAULT reason is already active). So a state can never be left
// behind by a forgotten "back to OK", two monitors cannot fight over it, and the published
// health says exactly why it is what it is.
//
// FAULT is not latched here: a fault that clears (a hung worker replaced) leaves FAULT.
// Giving up is the monitors' decision (monitors.ts), which then ends the process.
//
// Pure: no timers, no I/O; the clocks are injected so tests can drive time.
import { HEALTH_REASONS, REASON_SEVERITY, type HealthReason, type HealthState, type Severity } from "../core/health.ts";

export interface ActiveReason {
  reason: HealthReason;
  /** who raised it: a camera id, a worker, a topic, "main" */
  source: string;
  severity: Severity;
  /** monotonic clock (ms) when it was raised */
  sinceMs: number;
  /** free text for logs and the published health, e.g. "no frame for 812 ms" */
  detail?: string;
}

/** What made the state change. */
export type HealthCause =
  | { kind: "raised"; reason: HealthReason; source: string; detail?: string }
  | { kind: "cleared"; reason: HealthReason; source: string }
  | { kind: "ready" }
  | { kind: "stopping" };

export interface HealthTransition {
  from: HealthState;
  to: HealthState;
  cause: HealthCause;
  /** active reasons after the change, oldest first */
  reasons: readonly ActiveReason[];
  /** monotonic clock, ms (for durations) */
  tMs: number;
  /** Date.now(), for humans and log correlation */
  wallTimeMs: number;
}

/** A reason raised or cleared, whether or not the state changed (a second camera stalling while DEGRADED). */
export interface ReasonChange {
  change: Extract<HealthCause, { kind: "raised" | "cleared" }>;
  state: HealthState;
  tMs: number;
}

/** The sink monitors report to; HealthStateMachine is one, tests may use another. */
export interface ReasonSink {
  /** Returns true when the reason was not active for this source before. */
  raise(reason: HealthReason, source: string, detail?: string): boolean;
  /** Returns true when the reason was active for this source. */
  clear(reason: HealthReason, source: string): boolean;
  isActive(reason: HealthReason, source: string): boolean;
}

export interface HealthSnapshot {
  state: HealthState;
  /** monotonic ms of the last transition (start-up counts as one) */
  sinceMs: number;
  reasons: ActiveReason[];
}

export interface HealthStateMachineOptions {
  /** monotonic milliseconds (default performance.now) */
  clock?: () => number;
  /** wall clock for HealthTransition.wallTimeMs (default Date.now) */
  wallClock?: () => number;
  onTransition?: (t: HealthTransition) => void;
  onReasonChange?: (c: ReasonChange) => void;
}

const SEVERITY_RANK: Record<Severity, number> = { degraded: 1, fault: 2 };

export class HealthStateMachine implements ReasonSink {
  private readonly clock: () => number;
  private readonly wallClock: () => number;
  private readonly onTransition: ((t: HealthTransition) => void) | undefined;
  private readonly onReasonChange: ((c: ReasonChange) => void) | undefined;
  /** keyed by reason + "\0" + source; Map keeps insertion order, so reasons list oldest first */
  private readonly active = new Map<string, ActiveReason>();
  private ready = false;
  private stopping = false;
  private current: HealthState = "starting";
  private sinceMs: number;

  constructor(opts: HealthStateMachineOptions = {}) {
    this.clock = opts.clock ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? Date.now;
    this.onTransition = opts.onTransition;
    this.onReasonChange = opts.onReasonChange;
    this.sinceMs = this.clock();
  }

  get state(): HealthState {
    return this.current;
  }

  /** Start-up is done (model warm, bus bound, cameras started): leave STARTING. */
  markReady(): void {
    if (this.ready) return;
    this.ready = true;
    this.update({ kind: "ready" });
  }

  /** Shutdown began: STOPPING from now on, whatever is raised or cleared later. */
  markStopping(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.update({ kind: "stopping" });
  }

  raise(reason: HealthReason, source: string, detail?: string): boolean {
    checkReason(reason);
    const key = keyOf(reason, source);
    const existing = this.active.get(key);
    if (existing !== undefined) {
      // Same condition, fresher words (e.g. a longer stall); not a change of state.
      if (detail !== undefined) existing.detail = detail;
      return false;
    }
    const entry: ActiveReason = { reason, source, severity: REASON_SEVERITY[reason], sinceMs: this.clock() };
    if (detail !== undefined) entry.detail = detail;
    this.active.set(key, entry);
    this.update(detail === undefined ? { kind: "raised", reason, source } : { kind: "raised", reason, source, detail });
    return true;
  }

  clear(reason: HealthReason, source: string): boolean {
    if (!this.active.delete(keyOf(reason, source))) return false;
    this.update({ kind: "cleared", reason, source });
    return true;
  }

  /** Clears every reason a source raised (a camera that ended, a worker that was replaced). */
  clearSource(source: string): number {
    let n = 0;
    for (const a of [...this.active.values()]) if (a.source === source && this.clear(a.reason, a.source)) n++;
    return n;
  }

  isActive(reason: HealthReason, source: string): boolean {
    return this.active.has(keyOf(reason, source));
  }

  /** Active reasons, oldest first (copies). */
  reasons(): ActiveReason[] {
    return [...this.active.values()].map((a) => ({ ...a }));
  }

  /** Number of sources each reason is active for (every reason listed, 0 when inactive), for a gauge. */
  reasonCounts(): Record<HealthReason, number> {
    const counts = Object.fromEntries(HEALTH_REASONS.map((r) => [r, 0])) as Record<HealthReason, number>;
    for (const a of this.active.values()) counts[a.reason]++;
    return counts;
  }

  snapshot(): HealthSnapshot {
    return { state: this.current, sinceMs: this.sinceMs, reasons: this.reasons() };
  }

  private derive(): HealthState {
    if (this.stopping) return "stopping";
    let worst = 0;
    for (const a of this.active.values()) worst = Math.max(worst, SEVERITY_RANK[a.severity]);
    if (worst === SEVERITY_RANK.fault) return "fault";
    // Reasons raised during start-up (a camera not delivering yet) are kept and show once ready.
    if (!this.ready) return "starting";
    return worst === SEVERITY_RANK.degraded ? "degraded" : "ok";
  }

  private update(cause: HealthCause): void {
    const from = this.current;
    const to = this.derive();
    const tMs = this.clock();
    this.current = to;
    if (from !== to) this.sinceMs = tMs;
    // Callbacks run after the state is consistent; a throwing listener is a bug to surface,
    // but must not leave a monitor half-way through its bookkeeping.
    if ((cause.kind === "raised" || cause.kind === "cleared") && this.onReasonChange !== undefined) {
      const cb = this.onReasonChange;
      guarded(() => cb({ change: cause, state: to, tMs }));
    }
    if (from !== to && this.onTransition !== undefined) {
      const cb = this.onTransition;
      const t: HealthTransition = { from, to, cause, reasons: this.reasons(), tMs, wallTimeMs: this.wallClock() };
      guarded(() => cb(t));
    }
  }
}

/** One short sentence per reason, for Health.reasons on the bus, STATUS= and logs. */
export function describeReason(a: ActiveReason): string {
  return a.detail === undefined ? `${a.reason} (${a.source})` : `${a.reason} (${a.source}): ${a.detail}`;
}

/** "ok", or the state and its reasons on one line: systemd's STATUS=, a log message. */
export function statusLine(state: HealthState, reasons: readonly ActiveReason[]): string {
  if (reasons.length === 0) return state;
  return `${state}: ${reasons.map((a) => `${a.reason} (${a.source})`).join(", ")}`;
}

function keyOf(reason: HealthReason, source: string): string {
  return `${reason}\0${source}`;
}

function checkReason(reason: string): void {
  // Callers outside the type system (JS, casts) would otherwise add a reason of no severity.
  if (!Object.hasOwn(REASON_SEVERITY, reason)) throw new RangeError(`unknown health reason ${JSON.stringify(reason)} (known: ${HEALTH_REASONS.join(", ")})`);
}

function guarded(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    setImmediate(() => {
      throw err;
    });
  }
}
