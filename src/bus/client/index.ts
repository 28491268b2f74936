// The bus client's public surface, for TypeScript programs that consume perceptd's bus.
export { BusClient, type BusClientOptions, type BusErrorEvent, type BusEvent, type BusMessageEvent, type BusStaleEvent } from "./subscriber.ts";
export { E2EMonitor, E2E_STATES, type E2EMonitorOptions, type E2EResult, type E2EState } from "./e2e.ts";
export { decodeFrame, FrameError, type BodyOf, type DecodedFrame, type FrameErrorReason, type Header } from "../codec.ts";
export { readPublicKey, readSecretKeyFile, type CurveClientKeys } from "../curve.ts";
export { TOPICS, TOPIC_NAMES, type TopicName, type TopicSpec } from "../topics.ts";
