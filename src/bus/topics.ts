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
  /** message schema carried in the second frame */
  readonly message: string;
  /** encoding of the second frame; JSON until the protobuf contract lands */
  readonly encoding: "json";
  /** nominal publish rate */
  readonly rate: TopicRate;
  /** a consumer that has seen nothing newer than this treats the topic's state as stale */
  readonly staleAfterMs: number;
  readonly description: string;
}

const table = {
  detections: {
    name: "detections",
    message: "perceptd.Detections",
    encoding: "json",
    rate: "per-frame",
    // Several frames at any sane camera rate; a detector that lost this much has stalled.
    staleAfterMs: 500,
    description: "objects found in one processed frame of one camera (encoder: src/bus/detections-message.ts)",
  },
  // The publishers of `health` and `alerts` come with the bus-contract issue; they are
  // declared now so consumers, tests and the prefix check see the whole namespace early.
  health: {
    name: "health",
    message: "perceptd.Health",
    encoding: "json",
    rate: { hz: 10 },
    staleAfterMs: 300,
    description: "daemon and per-camera liveness, sent at a fixed rate whether or not anything changed (publisher: bus-contract issue)",
  },
  alerts: {
    name: "alerts",
    message: "perceptd.Alerts",
    encoding: "json",
    // Re-sent as state (not as edges) so a subscriber that joins late learns the current
    // alerts within one period; the rate is provisional until the bus-contract issue.
    rate: { hz: 2 },
    staleAfterMs: 1500,
    description: "currently active alerts, re-sent at a fixed rate (publisher: bus-contract issue; rate provisional)",
  },
} as const satisfies Record<string, TopicSpec>;

export type TopicName = keyof typeof table;

export const TOPICS: Readonly<Record<TopicName, TopicSpec>> = table;

export const TOPIC_NAMES: readonly TopicName[] = Object.keys(table) as TopicName[];

export function topicSpec(name: TopicName): TopicSpec {
  return table[name];
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
  for (const other of Object.keys(table))
    if (other !== key && other.startsWith(key))
      throw new Error(`bus topic table: "${key}" is a prefix of "${other}"; a SUB socket subscribed to "${key}" would also receive "${other}"`);
}
