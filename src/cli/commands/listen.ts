// `perceptd listen`: a bus subscriber on the command line. Prints every message with its
// end-to-end state (src/bus/client/e2e.ts), and a line when a topic goes silent past its
// staleness timeout even though nothing arrives. --json gives one object per line for jq and
// scripts. Connects where the daemon's config says it binds unless --endpoint says otherwise.
import type { Command } from "commander";
import { BusClient, type BusEvent, type BusMessageEvent } from "../../bus/client/subscriber.ts";
import { readPublicKey, readSecretKeyFile, type CurveClientKeys } from "../../bus/curve.ts";
import { TOPIC_NAMES, parseTopicName, type TopicName } from "../../bus/topics.ts";
import { ConfigError, loadConfig } from "../../config/load.ts";
import { EX_CONFIG, ExitError } from "./run.ts";

interface ListenFlags {
  endpoint: string[];
  config: string;
  topic: string[];
  json?: boolean;
  curveServerKey?: string;
  curveKeyFile?: string;
  count?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function register(program: Command): void {
  program
    .command("listen")
    .description("subscribe to the daemon's bus and print each message with its end-to-end check (OK, REPEATED, WRONG_SEQUENCE, ERROR, NO_NEW_DATA)")
    .option("-e, --endpoint <endpoint>", "bus endpoint, tcp://host:port or ipc://path (repeatable; default: the first tcp endpoint in --config)", collect, [])
    .option("-c, --config <path>", "daemon configuration to take the endpoint from", "config/default.yaml")
    .option("-t, --topic <topic>", `topic to subscribe to (repeatable; default: all of ${TOPIC_NAMES.join(", ")})`, collect, [])
    .option("--json", "one JSON object per line: topic, e2e, detail, header and payload (64-bit integers as strings)")
    .option("--curve-server-key <key|file>", "the daemon's CURVE public key, in Z85 or as its NAME.key file; needs --curve-key-file")
    .option("--curve-key-file <path>", "this subscriber's key pair: a NAME.key_secret file from `perceptd keys` (mode 0600), its public key listed in the daemon's bus.curve.allowedClientKeys")
    .option("-n, --count <n>", "exit after this many messages (NO_NEW_DATA lines not counted)")
    .addHelpText(
      "after",
      "\nE2E states: OK (counter +1), REPEATED (same counter), WRONG_SEQUENCE (messages lost or reordered,\n" +
        "or the daemon restarted), ERROR (CRC, decoding, schema version or data id wrong), NO_NEW_DATA (no new\n" +
        "message within the topic's staleness timeout; printed when it happens). A message whose publisher\n" +
        "flags it Header.valid=false shows NOT VALID. SIGINT/SIGTERM exit 0.",
    )
    .action(async (flags: ListenFlags) => {
      const topics = flags.topic.map(parseTopicName);
      const count = flags.count === undefined ? Infinity : parseCount(flags.count);
      const { endpoints, curveFromConfig } = flags.endpoint.length > 0 ? { endpoints: flags.endpoint, curveFromConfig: false } : await endpointsFromConfig(flags.config);
      const curve = await curveKeys(flags);
      if (curveFromConfig && !curve)
        throw new Error(`${flags.config} turns CURVE on (bus.curve.enabled): pass --curve-server-key (the daemon's public key) and --curve-key-file (an allowed key pair)`);
      await listen({ endpoints, topics, json: flags.json ?? false, curve, count });
    });
}

function parseCount(s: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--count must be a whole number >= 1, got "${s}"`);
  return n;
}

async function endpointsFromConfig(path: string): Promise<{ endpoints: string[]; curveFromConfig: boolean }> {
  let config;
  try {
    ({ config } = await loadConfig(path));
  } catch (e) {
    if (e instanceof ConfigError) throw new ExitError(`${e.message}\n(listen reads the bus endpoint from it; pass --endpoint to skip it)`, EX_CONFIG);
    throw e;
  }
  const bound = config.bus.endpoints.find((e) => e.startsWith("tcp://")) ?? config.bus.endpoints[0];
  return { endpoints: [connectableEndpoint(bound, path)], curveFromConfig: config.bus.curve.enabled };
}

/** Where to connect to reach a bind endpoint: a wildcard address is reached on loopback. */
export function connectableEndpoint(bound: string, configPath = "the config"): string {
  const m = /^tcp:\/\/(.*):([^:\]]+)$/.exec(bound);
  if (!m) return bound;
  const [, host, port] = m;
  if (port === "0" || port === "*") throw new Error(`${configPath} binds ${bound}, a port chosen at start; pass --endpoint with the port the daemon logged ("bus bound")`);
  return host === "*" || host === "0.0.0.0" ? `tcp://127.0.0.1:${port}` : bound;
}

async function curveKeys(flags: ListenFlags): Promise<CurveClientKeys | undefined> {
  if (flags.curveServerKey === undefined && flags.curveKeyFile === undefined) return undefined;
  if (flags.curveServerKey === undefined) throw new Error("--curve-key-file needs --curve-server-key (the daemon's public key)");
  if (flags.curveKeyFile === undefined)
    throw new Error("--curve-server-key needs --curve-key-file: this subscriber's own key pair, whose public key the daemon admits (make one with perceptd keys)");
  const serverPublicKey = await readPublicKey(flags.curveServerKey, "--curve-server-key");
  const own = await readSecretKeyFile(flags.curveKeyFile, "--curve-key-file");
  return { serverPublicKey, ...own };
}

interface ListenOptions {
  endpoints: string[];
  topics: TopicName[];
  json: boolean;
  curve: CurveClientKeys | undefined;
  count: number;
}

async function listen(opts: ListenOptions): Promise<void> {
  const client = new BusClient({ endpoints: opts.endpoints, topics: opts.topics, curve: opts.curve });
  // Monotonic times are only comparable on the machine that took them.
  const sameHost = opts.endpoints.every((e) => e.startsWith("ipc://") || /^tcp:\/\/(127\.|localhost:|\[::1\]:)/.test(e));
  const stop = (): void => client.close();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // A closed pipe (`| head`) ends the listener quietly, as it does for any Unix filter.
  const onStdoutError = (): void => client.close();
  process.stdout.on("error", onStdoutError);
  if (!opts.json)
    process.stderr.write(`listening on ${client.endpoints.join(", ")} to ${client.topics.join(", ")}${opts.curve ? " (CURVE)" : ""}; Ctrl-C ends\n`);
  let messages = 0;
  try {
    for await (const ev of client) {
      await writeLine(opts.json ? JSON.stringify(jsonLine(ev)) : textLine(ev, sameHost));
      if (ev.kind !== "stale" && ++messages >= opts.count) break;
    }
  } finally {
    client.close();
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    process.stdout.off("error", onStdoutError);
  }
}

/** Waits for stdout to take the line: a slow reader slows the listener, and ZeroMQ's high-water mark (visible as WRONG_SEQUENCE) takes the excess. */
function writeLine(line: string): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(line + "\n")) resolve();
    else process.stdout.once("drain", resolve);
  });
}

export function jsonLine(ev: BusEvent): Record<string, unknown> {
  switch (ev.kind) {
    case "message": {
      const { header, ...payload } = ev.json;
      return { topic: ev.topic, e2e: ev.e2e, ...(ev.detail ? { detail: ev.detail } : {}), header, payload };
    }
    case "error":
      return { topic: ev.topic, e2e: ev.e2e, detail: ev.detail };
    case "stale":
      return { topic: ev.topic, e2e: ev.e2e, detail: ev.detail, silentForMs: Math.round(ev.silentForMs) };
  }
}

function textLine(ev: BusEvent, sameHost: boolean): string {
  const head = `${clock()}  ${ev.topic.padEnd(10)}  ${ev.e2e.padEnd(14)}`;
  if (ev.kind !== "message") return `${head}  ${ev.detail}`;
  const h = ev.header;
  const parts = [`#${h.counter}`];
  if (!h.valid) parts.push("NOT VALID");
  if (h.cameraId) parts.push(`${h.cameraId} frame ${h.frameSeq}`);
  parts.push(summary(ev));
  if (sameHost && h.tIngestMonoNs > 0n) parts.push(`age ${(Number(process.hrtime.bigint() - h.tIngestMonoNs) / 1e6).toFixed(1)} ms since ingest`);
  if (ev.detail) parts.push(`(${ev.detail})`);
  return `${head}  ${parts.join("  ")}`;
}

function summary(ev: BusMessageEvent): string {
  switch (ev.topic) {
    case "detections": {
      const d = ev.body.detections;
      const shown = d.slice(0, 5).map((x) => `${x.label} ${x.score.toFixed(2)}`);
      return `${d.length} object${d.length === 1 ? "" : "s"}${d.length ? `: ${shown.join(", ")}${d.length > 5 ? ", ..." : ""}` : ""}`;
    }
    case "health": {
      const b = ev.body;
      const cams = b.cameras.map((c) => `${c.cameraId} ${c.state.replace(/^STATE_/, "")} ${c.fps.toFixed(1)} fps`).join(", ");
      return [
        b.state.replace(/^STATE_/, ""),
        `${b.fps.toFixed(1)} fps, e2e p50 ${b.latencyE2eP50Ms.toFixed(1)} ms p99 ${b.latencyE2eP99Ms.toFixed(1)} ms`,
        cams && `cameras: ${cams}`,
        b.reasons.length > 0 && `reasons: ${b.reasons.join("; ")}`,
      ]
        .filter(Boolean)
        .join("  ");
    }
    case "alerts": {
      const a = ev.body.alerts;
      if (a.length === 0) return "no alerts";
      return a
        .map((x) =>
          [
            x.level.replace(/^LEVEL_/, ""),
            x.kind.replace(/^KIND_/, ""),
            x.valid ? "" : "(not valid)",
            x.cameraId,
            x.trackId > 0n ? `track ${x.trackId}` : "",
            x.rangeM !== undefined ? `${x.rangeM.toFixed(1)} m` : "",
            x.ttcS !== undefined ? `ttc ${x.ttcS.toFixed(1)} s` : "",
          ]
            .filter(Boolean)
            .join(" "),
        )
        .join("; ");
    }
  }
}

function clock(): string {
  const d = new Date();
  const p = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
