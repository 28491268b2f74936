// A bus subscriber for TypeScript programs: connects, subscribes, checks and decodes every
// frame, and runs one E2E monitor per topic (./e2e.ts) with the topic table's staleness
// timeouts. Pull-based: receive() waits for the next event, which is a message (with its E2E
// state), a frame that failed its checks (ERROR), or a topic going silent (NO_NEW_DATA, also
// when nothing arrives at all). Nothing is buffered on our side; a consumer that falls
// behind is protected by ZeroMQ's receive high-water mark, and the counter gaps that causes
// show up as WRONG_SEQUENCE.
//
//   const client = new BusClient({ endpoints: "tcp://127.0.0.1:5555", topics: ["detections"] });
//   for await (const ev of client) if (ev.kind === "message" && ev.topic === "detections") use(ev.body);
import { Subscriber, capability } from "zeromq";
import { FrameError, decodeFrame, type DecodedFrame } from "../codec.ts";
import type { CurveClientKeys } from "../curve.ts";
import { TOPIC_NAMES, TOPICS, type TopicName } from "../topics.ts";
import { isZ85Key } from "../z85.ts";
import { E2EMonitor, type E2EState } from "./e2e.ts";

export interface BusClientOptions {
  /** where the daemon's bus listens: tcp://host:port or ipc://path; several are all connected */
  endpoints: string | readonly string[];
  /** default: every topic */
  topics?: readonly TopicName[];
  /** the daemon's public key and ours, when its bus uses CURVE */
  curve?: CurveClientKeys;
  /** monotonic milliseconds (default performance.now()); for tests */
  now?: () => number;
  /** ZMQ_RCVHWM (default 1000) */
  receiveHighWaterMark?: number;
}

interface EventBase {
  /** when it was received or noticed, on the client's clock */
  at: number;
}

/** A frame that passed its checks, with its counter's verdict. */
export type BusMessageEvent = {
  [T in TopicName]: EventBase &
    DecodedFrame<T> & {
      kind: "message";
      e2e: Extract<E2EState, "OK" | "REPEATED" | "WRONG_SEQUENCE">;
      /** why it is REPEATED or WRONG_SEQUENCE */
      detail?: string;
    };
}[TopicName];

/** A frame that failed its checks (CRC, layout, protobuf, schema_version, data_id, frame count). */
export interface BusErrorEvent extends EventBase {
  kind: "error";
  topic: TopicName;
  e2e: "ERROR";
  detail: string;
  /** the frames as received */
  frames: Uint8Array[];
}

/** The topic has just gone silent: no new message within its staleAfterMs. Reported once per silence. */
export interface BusStaleEvent extends EventBase {
  kind: "stale";
  topic: TopicName;
  e2e: "NO_NEW_DATA";
  detail: string;
  silentForMs: number;
}

export type BusEvent = BusMessageEvent | BusErrorEvent | BusStaleEvent;

export class BusClient implements AsyncIterable<BusEvent> {
  readonly endpoints: readonly string[];
  readonly topics: readonly TopicName[];
  private readonly socket: Subscriber;
  private readonly monitors: Map<TopicName, E2EMonitor>;
  private readonly now: () => number;
  private closed = false;
  private receiving = false;

  /** Connects and subscribes at once; throws on a malformed endpoint or key. */
  constructor(opts: BusClientOptions) {
    this.endpoints = typeof opts.endpoints === "string" ? [opts.endpoints] : [...opts.endpoints];
    if (this.endpoints.length === 0) throw new Error("bus client: no endpoint to connect to");
    this.topics = opts.topics && opts.topics.length > 0 ? [...new Set(opts.topics)] : TOPIC_NAMES;
    this.now = opts.now ?? (() => performance.now());
    if (opts.curve) {
      if (!capability.curve) throw new Error("bus client: this build of zeromq has no CURVE support (libsodium)");
      for (const [k, v] of Object.entries(opts.curve)) if (!isZ85Key(v)) throw new Error(`bus client: curve.${k} is not a Z85 CURVE key (40 characters)`);
    }
    this.socket = new Subscriber({
      linger: 0,
      receiveHighWaterMark: opts.receiveHighWaterMark ?? 1000,
      ...(opts.curve ? { curveServerKey: opts.curve.serverPublicKey, curvePublicKey: opts.curve.publicKey, curveSecretKey: opts.curve.secretKey } : {}),
    });
    try {
      for (const ep of this.endpoints) this.socket.connect(ep);
    } catch (e) {
      this.socket.close();
      throw new Error(`bus client: cannot connect to ${this.endpoints.join(", ")}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    for (const t of this.topics) this.socket.subscribe(t);
    this.monitors = new Map(this.topics.map((t) => [t, new E2EMonitor({ staleAfterMs: TOPICS[t].staleAfterMs, now: this.now })]));
  }

  /** The next event; null once the client is closed. One call at a time (a ZeroMQ socket has one pending receive). */
  async receive(): Promise<BusEvent | null> {
    if (this.receiving) throw new Error("bus client: receive() called while another is pending");
    this.receiving = true;
    try {
      return await this.nextEvent();
    } finally {
      this.receiving = false;
    }
  }

  private async nextEvent(): Promise<BusEvent | null> {
    for (;;) {
      if (this.closed) return null;
      const stale = this.pollStale();
      if (stale) return stale;
      // Wake up at the next staleness deadline even if nothing arrives.
      const deadline = this.nextDeadline();
      this.socket.receiveTimeout = deadline === null ? -1 : Math.max(1, Math.ceil(deadline - this.now()));
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (e) {
        if (this.closed) return null;
        if (e instanceof Error && "code" in e && e.code === "EAGAIN") continue;
        throw e;
      }
      const ev = this.handle(frames);
      if (ev) return ev;
    }
  }

  /** The current E2E state of a subscribed topic. */
  state(topic: TopicName): E2EState {
    const m = this.monitors.get(topic);
    if (!m) throw new Error(`bus client: not subscribed to ${topic}`);
    return m.state;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<BusEvent> {
    return {
      next: async () => {
        const value = await this.receive();
        return value ? { value, done: false } : { value: undefined, done: true };
      },
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }

  private pollStale(): BusStaleEvent | null {
    for (const [topic, m] of this.monitors) {
      const r = m.poll();
      if (r) return { kind: "stale", topic, e2e: "NO_NEW_DATA", detail: r.detail ?? "", silentForMs: m.silentForMs(), at: this.now() };
    }
    return null;
  }

  private nextDeadline(): number | null {
    let next: number | null = null;
    for (const m of this.monitors.values()) {
      const d = m.deadline();
      if (d !== null && (next === null || d < next)) next = d;
    }
    return next;
  }

  private handle(frames: Buffer[]): BusEvent | null {
    const at = this.now();
    const name = frames[0]?.toString("latin1") ?? "";
    // ZeroMQ filters by prefix, so a frame on "healthz" reaches a "health" subscription. It is
    // no message of ours (the topic table is the contract): reported against the subscription
    // it came in on, like any other corrupt frame, rather than dropped without a word.
    const topic = this.topics.find((t) => t === name) ?? longestPrefix(this.topics, name);
    const monitor = topic && this.monitors.get(topic);
    if (!topic || !monitor) return null;
    const error = (detail: string): BusErrorEvent => ({ kind: "error", topic, e2e: "ERROR", detail: monitor.failed(detail).detail ?? detail, frames, at });
    if (name !== topic) return error(`unknown topic ${JSON.stringify(name)} (delivered by ZeroMQ's prefix match on the subscription ${JSON.stringify(topic)})`);
    if (frames.length !== 2) return error(`expected 2 frames (topic, payload), got ${frames.length}`);
    let decoded: DecodedFrame;
    try {
      decoded = decodeFrame(topic, frames[1]);
    } catch (e) {
      if (e instanceof FrameError) return error(`${e.reason}: ${e.message}`);
      throw e;
    }
    const r = monitor.received(decoded.header.counter);
    if (r.state === "NO_NEW_DATA" || r.state === "ERROR") throw new Error(`unreachable: e2e state ${r.state} for a valid frame`);
    // decodeFrame(topic, ...) returns the body of `topic`, which the mapped type cannot see through.
    return { ...decoded, kind: "message", e2e: r.state, detail: r.detail, at } as BusMessageEvent;
  }
}

/** The longest subscribed topic that `name` starts with, as ZeroMQ matched it. */
function longestPrefix(topics: readonly TopicName[], name: string): TopicName | undefined {
  let best: TopicName | undefined;
  for (const t of topics) if (name.startsWith(t) && (best === undefined || t.length > best.length)) best = t;
  return best;
}
