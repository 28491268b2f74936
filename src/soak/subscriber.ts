// The soak's subscriber: a BusClient on every topic that keeps up (it only records), so the
// E2E checks of every message (counter gaps, CRC, data id, schema version, staleness,
// REPEATED / WRONG_SEQUENCE) judge the daemon and the bus, not a slow reader. For each
// detections message it measures ingest -> receipt from the header's monotonic ingest time
// (CLOCK_MONOTONIC is one clock for every process on the machine) and publish -> receipt.
// A second, pausable subscriber serves the fault plan's subscriber-pause.
import { BusClient, type BusEvent, type CurveClientKeys, type TopicName } from "../bus/client/index.ts";
import type { Alert, WireHealthState } from "../bus/codec.ts";

export type ContractKind = "gap" | "repeated" | "error" | "stale";

export interface ContractEvent {
  /** performance.now() when seen */
  at: number;
  topic: TopicName;
  kind: ContractKind;
  /** messages missing, for a gap; 1 otherwise */
  count: number;
  detail: string;
}

export interface HealthSeen {
  at: number;
  state: WireHealthState;
  reasons: string[];
}

export interface AlertEvent {
  at: number;
  kind: "raised" | "cleared";
  /** camera / kind / track */
  key: string;
  level: string;
}

/** Detections, as columns (hours of them stay compact). */
export interface DetectionsSeen {
  /** performance.now() at receipt */
  at: number[];
  /** ingest -> receipt, ms */
  e2eMs: number[];
  /** publish -> receipt, ms (the bus alone) */
  busMs: number[];
}

/** The number of messages a WRONG_SEQUENCE detail says are missing ("... 3 messages missing"); 0 for a counter that went back. */
export function missingCount(detail: string | undefined): number {
  const m = /: (\d+) messages? missing/.exec(detail ?? "");
  return m ? Number(m[1]) : 0;
}

export interface CheckingSubscriberOptions {
  endpoints: readonly string[];
  curve?: CurveClientKeys;
}

export class CheckingSubscriber {
  readonly detections: DetectionsSeen = { at: [], e2eMs: [], busMs: [] };
  readonly health: HealthSeen[] = [];
  readonly alerts: AlertEvent[] = [];
  readonly contract: ContractEvent[] = [];
  /** receipt times per topic (performance.now()), for rates and inter-message gaps */
  readonly arrivals: Record<TopicName, number[]> = { detections: [], health: [], alerts: [] };
  /** set when the receive loop itself failed (not a message: the socket) */
  failure: string | null = null;
  private readonly client: BusClient;
  private readonly active = new Map<bigint, { key: string; level: string }>();
  private readonly loop: Promise<void>;

  constructor(opts: CheckingSubscriberOptions) {
    this.client = new BusClient({ endpoints: opts.endpoints, curve: opts.curve, receiveHighWaterMark: 100_000 });
    this.loop = this.run();
  }

  /** Messages received so far, all topics. */
  get messages(): number {
    return this.arrivals.detections.length + this.arrivals.health.length + this.arrivals.alerts.length;
  }

  /** Messages missing so far (counter gaps), all topics. */
  get gaps(): number {
    return this.contract.filter((c) => c.kind === "gap").reduce((a, c) => a + c.count, 0);
  }

  async close(): Promise<void> {
    this.client.close();
    await this.loop;
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const ev = await this.client.receive();
        if (ev === null) return;
        this.record(ev, process.hrtime.bigint());
      }
    } catch (e) {
      this.failure = e instanceof Error ? e.message : String(e);
    }
  }

  private record(ev: BusEvent, receivedNs: bigint): void {
    if (ev.kind === "stale") {
      this.contract.push({ at: ev.at, topic: ev.topic, kind: "stale", count: 1, detail: ev.detail });
      return;
    }
    if (ev.kind === "error") {
      this.contract.push({ at: ev.at, topic: ev.topic, kind: "error", count: 1, detail: ev.detail });
      return;
    }
    if (ev.e2e === "REPEATED") {
      this.contract.push({ at: ev.at, topic: ev.topic, kind: "repeated", count: 1, detail: ev.detail ?? "" });
      return;
    }
    if (ev.e2e === "WRONG_SEQUENCE") this.contract.push({ at: ev.at, topic: ev.topic, kind: "gap", count: Math.max(1, missingCount(ev.detail)), detail: ev.detail ?? "" });
    this.arrivals[ev.topic].push(ev.at);
    switch (ev.topic) {
      case "detections":
        this.detections.at.push(ev.at);
        this.detections.e2eMs.push(Number(receivedNs - ev.header.tIngestMonoNs) / 1e6);
        this.detections.busMs.push(Number(receivedNs - ev.header.tPublishMonoNs) / 1e6);
        return;
      case "health":
        this.health.push({ at: ev.at, state: ev.body.state, reasons: ev.body.reasons });
        return;
      case "alerts":
        this.alertSet(ev.at, ev.body.alerts);
        return;
    }
  }

  /** Raises and clears, from the re-sent alert set: an id that appears is raised, one that goes is cleared. */
  private alertSet(at: number, alerts: readonly Alert[]): void {
    const now = new Set<bigint>();
    for (const a of alerts) {
      now.add(a.alertId);
      if (!this.active.has(a.alertId)) {
        const key = `${a.cameraId}/${a.kind}/${a.trackId}`;
        this.active.set(a.alertId, { key, level: a.level });
        this.alerts.push({ at, kind: "raised", key, level: a.level });
      }
    }
    for (const [id, a] of this.active) {
      if (now.has(id)) continue;
      this.active.delete(id);
      this.alerts.push({ at, kind: "cleared", key: a.key, level: a.level });
    }
  }
}

/**
 * A subscriber the fault plan can pause: it reads (and discards) until pause(), then reads
 * nothing until resume(), so ZeroMQ's queues for it fill past their high-water mark as a
 * stuck ECU's would. What it lost shows as counter gaps once it reads again.
 */
export class PausableSubscriber {
  private readonly client: BusClient;
  private paused: Promise<void> | null = null;
  private release: (() => void) | null = null;
  private readonly loop: Promise<void>;
  /** messages missing, as counter gaps seen by this subscriber since it last resumed */
  missedSinceResume = 0;

  constructor(endpoints: readonly string[], curve?: CurveClientKeys) {
    this.client = new BusClient({ endpoints, curve, topics: ["detections", "health"], receiveHighWaterMark: 10 });
    this.loop = this.run();
  }

  pause(): void {
    this.paused ??= new Promise((r) => (this.release = r));
  }

  resume(): void {
    this.missedSinceResume = 0;
    this.release?.();
    this.paused = null;
    this.release = null;
  }

  async close(): Promise<void> {
    this.resume();
    this.client.close();
    await this.loop;
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        if (this.paused) await this.paused;
        const ev = await this.client.receive();
        if (ev === null) return;
        if (ev.kind === "message" && ev.e2e === "WRONG_SEQUENCE") this.missedSinceResume += missingCount(ev.detail);
      }
    } catch {
      // closed under it
    }
  }
}
