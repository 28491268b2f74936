// The end-to-end check of one topic at a receiver, after AUTOSAR E2E: from each message's
// counter and from how long no new message has arrived, it derives a state a consumer can act
// on. Pure: no sockets, no timers; time comes from an injected clock, so tests can move it.
//
// States:
//   OK              the counter is one more than the last valid message's
//   REPEATED        the counter equals the last one: the same message again (no new data)
//   WRONG_SEQUENCE  any other counter: messages lost (a gap), reordered, or the publisher
//                   restarted (the counter went back); the new counter becomes the reference,
//                   so the stream is OK again from the next message on
//   ERROR           the frame failed its own checks (CRC, layout, protobuf, schema_version,
//                   data_id); it changes nothing else
//   NO_NEW_DATA     no new message (OK or WRONG_SEQUENCE) within the topic's staleAfterMs;
//                   also the state before the first message
// The transport is all this judges: a message whose Header.valid is false (content not fit
// to act on, see the .proto) is new data here, and honouring that flag is the consumer's job.
// The first valid message is OK: with no reference yet, any counter is in sequence.

export type E2EState = "OK" | "NO_NEW_DATA" | "REPEATED" | "WRONG_SEQUENCE" | "ERROR";

export const E2E_STATES: readonly E2EState[] = ["OK", "NO_NEW_DATA", "REPEATED", "WRONG_SEQUENCE", "ERROR"];

export interface E2EResult {
  state: E2EState;
  /** for WRONG_SEQUENCE and REPEATED: what was expected and what came */
  detail?: string;
}

export interface E2EMonitorOptions {
  /** from the topic table: silence longer than this is NO_NEW_DATA */
  staleAfterMs: number;
  /** milliseconds on a monotonic clock (default performance.now()) */
  now?: () => number;
}

export class E2EMonitor {
  private readonly staleAfterMs: number;
  private readonly now: () => number;
  private lastCounter: bigint | null = null;
  /** when the last valid message arrived, or when monitoring began */
  private lastNewAt: number;
  private staleReported = false;
  private current: E2EState = "NO_NEW_DATA";

  constructor(opts: E2EMonitorOptions) {
    if (!(opts.staleAfterMs > 0)) throw new Error(`e2e: staleAfterMs must be > 0, got ${opts.staleAfterMs}`);
    this.staleAfterMs = opts.staleAfterMs;
    this.now = opts.now ?? (() => performance.now());
    this.lastNewAt = this.now();
  }

  /** The state after the latest message or timeout. */
  get state(): E2EState {
    return this.current;
  }

  /** The counter of the last valid message; null before the first. */
  get reference(): bigint | null {
    return this.lastCounter;
  }

  /** A message whose frame checks passed, carrying `counter`. */
  received(counter: bigint): E2EResult {
    let result: E2EResult;
    const last = this.lastCounter;
    if (last === null || counter === last + 1n) {
      result = { state: "OK" };
    } else if (counter === last) {
      // Not new data: the staleness clock keeps running.
      result = { state: "REPEATED", detail: `counter ${counter} again` };
      this.current = result.state;
      return result;
    } else {
      const gap = counter - last - 1n;
      result = {
        state: "WRONG_SEQUENCE",
        detail:
          counter > last
            ? `counter ${counter} after ${last}: ${gap} message${gap === 1n ? "" : "s"} missing`
            : `counter ${counter} after ${last}: went back (reordered, or the publisher restarted)`,
      };
    }
    this.lastCounter = counter;
    this.lastNewAt = this.now();
    this.staleReported = false;
    this.current = result.state;
    return result;
  }

  /** A frame that failed its checks; it is not data, so staleness and the reference stay. */
  failed(detail: string): E2EResult {
    this.current = "ERROR";
    return { state: "ERROR", detail };
  }

  /**
   * NO_NEW_DATA once, when the topic has just gone silent past staleAfterMs; null otherwise
   * (still fresh, or already reported for this silence). Call it whenever convenient:
   * before each receive, and at deadline().
   */
  poll(): E2EResult | null {
    if (this.staleReported || this.now() - this.lastNewAt < this.staleAfterMs) return null;
    this.staleReported = true;
    this.current = "NO_NEW_DATA";
    return { state: "NO_NEW_DATA", detail: `no new data for ${Math.round(this.now() - this.lastNewAt)} ms (stale after ${this.staleAfterMs} ms)` };
  }

  /** When poll() will next report NO_NEW_DATA (on the injected clock); null if it already has for this silence. */
  deadline(): number | null {
    return this.staleReported ? null : this.lastNewAt + this.staleAfterMs;
  }

  /** How long no new message has arrived, in ms. */
  silentForMs(): number {
    return this.now() - this.lastNewAt;
  }
}
