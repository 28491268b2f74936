// Delay before restarting a failed camera. Pure, with the random source passed in, so the
// schedule can be checked exactly in tests.
import type { RestartOptions } from "./source-spec.ts";

/** The backoff part of a camera's restart block. */
export type RestartConfig = Pick<RestartOptions, "initialBackoffMs" | "maxBackoffMs" | "jitter">;

/**
 * Delay in whole milliseconds before restart number `attempt` (1 for the first restart
 * after a healthy run, 2 for the next consecutive one, ...):
 * min(initialBackoffMs * 2^(attempt-1), maxBackoffMs), then spread by ±jitter of itself.
 *
 * The jitter is applied after the cap, so a delay at the ceiling may exceed maxBackoffMs by
 * up to the jitter fraction. Clamping it back would put every camera that lost the same
 * network switch at exactly maxBackoffMs again, which is what the jitter is there to avoid.
 */
export function nextBackoffMs(restart: RestartConfig, attempt: number, random: () => number = Math.random): number {
  const { initialBackoffMs, maxBackoffMs, jitter } = restart;
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`nextBackoffMs: attempt must be an integer >= 1, got ${String(attempt)}`);
  }
  if (!(initialBackoffMs >= 0) || !(maxBackoffMs >= 0)) {
    throw new RangeError(`nextBackoffMs: backoff bounds must be >= 0, got ${initialBackoffMs} and ${maxBackoffMs}`);
  }
  if (!(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(`nextBackoffMs: jitter must be within [0, 1], got ${String(jitter)}`);
  }
  // The exponent is capped so a long outage's attempt count cannot overflow to Infinity
  // (0 * Infinity would be NaN); 2^52 exceeds any ceiling the schema allows anyway.
  const base = Math.min(initialBackoffMs * 2 ** Math.min(attempt - 1, 52), maxBackoffMs);
  const r = random();
  if (!(r >= 0 && r <= 1)) throw new RangeError(`nextBackoffMs: random() must return a number in [0, 1], got ${String(r)}`);
  return Math.max(0, Math.round(base * (1 + jitter * (2 * r - 1))));
}
