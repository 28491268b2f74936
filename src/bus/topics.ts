// Every topic on the perceptd bus, declared once, in the manner of openpilot's
// cereal/services.py: a subscriber (or a watchdog, or a log replayer) can look up how often a
// topic should arrive and when its last message must be treated as stale, instead of each
// consumer guessing its own numbers.
//
// The topic name is the first frame of every multipart message; ZeroMQ SUB filtering is a
// byte-prefix match on that frame, so no name may be a prefix of another (checked below at
// load time, because a violation would silently leak one topic into another's subscribers).

/** "per-frame": one message per processed camera frame, so the rate follows the camera and the detector. */
export type TopicRate = { hz: number } | "per-frame";

export interface TopicSpec {
  /** wire name: the first frame of every message */
  readonly name: string;
  /** fully qualified protobuf message type of the second frame, declared in proto/perceptd.proto */
  readonly message: string;
  /**
   * Header.data_id of every message on the topic (a DataId value in the .proto): covered by
   * the CRC, so a receiver catches a message that reached the wrong topic. Never 0, never reused.
   */
  readonly dataId: number;
  /** encoding of the second frame */
  readonly encoding: "protobuf";
  /** nominal publish rate */
  readonly rate: TopicRate;
  /** a consumer that has seen nothing newer than this treats the topic's state as stale (E2E NO_NEW_DATA) */
  readonly staleAfterMs: number;
  readonly description: string;
}

const table = {
  detections: {
    name: "detections",
    message: "perceptd.v1.Detections",
    dataId: 1,
    encoding: "protobuf",
    rate: "per-frame",
    // Several frames at any sane camera rate; a detector that lost this much has stalled.
    staleAfterMs: 500,
    description: "objects found in one processed frame of one camera (published by the daemon per result)",
  },
  health: {
    name: "health",
    message: "perceptd.v1.Health",
    dataId: 2,
    encoding: "protobuf",
    rate: { hz: 10 },
    // Three periods: one late or lost message is jitter, three in a row is a dead publisher.
    staleAfterMs: 300,
    description: "daemon and per-camera state, sent at a fixed rate whether or not anything changed",
  },
  alerts: {
    name: "alerts",
    message: "perceptd.v1.Alerts",
    dataId: 3,
    encoding: "protobuf",
    // Re-sent as state (not as edges) so a subscriber that joins late learns the current
    // alerts within one period.
    rate: { hz: 5 },
    // Five periods: alerts feed a human (a warning display), for whom a second of silence
    // is the longest an outdated "no alert" may stand.
    staleAfterMs: 1000,
    description: "every alert active now, re-sent at a fixed rate (an empty list: none)",
  },
} as const satisfies Record<string, TopicSpec>;

export type TopicName = keyof typeof table;

export const TOPICS: Readonly<Record<TopicName, TopicSpec>> = table;

export const TOPIC_NAMES: readonly TopicName[] = Object.keys(table) as TopicName[];

export function topicSpec(name: TopicName): TopicSpec {
  return table[name];
}

/** The nominal rate of a topic published at a fixed rate, in Hz (the default of its publishHz key). */
export function fixedRateHz(name: TopicName): number {
  const rate: TopicRate = table[name].rate;
  if (rate === "per-frame") throw new RangeError(`topic ${name} is published per frame, not at a fixed rate`);
  return rate.hz;
}

/**
 * The lowest whole publish rate whose period is shorter than the topic's staleAfterMs, so a
 * subscriber never sees it stale between two messages: the floor of its publishHz key.
 */
export function minFreshHz(name: TopicName): number {
  return Math.floor(1000 / table[name].staleAfterMs) + 1;
}

/** The topic whose messages carry this Header.data_id, or null. */
export function topicOfDataId(dataId: number): TopicName | null {
  for (const name of TOPIC_NAMES) if (table[name].dataId === dataId) return name;
  return null;
}

export function isTopicName(s: string): s is TopicName {
  return Object.hasOwn(table, s);
}

/** For names from outside the type system (CLI flags, config): throws listing the known topics. */
export function parseTopicName(s: string): TopicName {
  if (!isTopicName(s)) throw new Error(`unknown bus topic "${s}" (known: ${TOPIC_NAMES.join(", ")})`);
  return s;
}

/** How often a topic's messages should arrive, for rate checks and status lines; null for per-frame topics. */
export function nominalPeriodMs(name: TopicName): number | null {
  const r = table[name].rate;
  return r === "per-frame" ? null : 1000 / r.hz;
}

for (const [key, spec] of Object.entries(table)) {
  if (spec.name !== key) throw new Error(`bus topic table: entry "${key}" has name "${spec.name}"`);
  // 0 is what a protobuf reader sees when the field is missing, so it cannot identify a topic.
  if (!Number.isInteger(spec.dataId) || spec.dataId < 1 || spec.dataId > 0xffff_ffff) throw new Error(`bus topic table: "${key}" has data_id ${spec.dataId}; it must be a uint32 other than 0`);
  for (const [otherKey, other] of Object.entries(table))
    if (otherKey !== key && other.dataId === spec.dataId) throw new Error(`bus topic table: "${key}" and "${otherKey}" share data_id ${spec.dataId}`);
  for (const other of Object.keys(table))
    if (other !== key && other.startsWith(key))
      throw new Error(`bus topic table: "${key}" is a prefix of "${other}"; a SUB socket subscribed to "${key}" would also receive "${other}"`);
}
