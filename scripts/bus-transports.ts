// What one message costs between two processes on this machine, by transport, side by
// side in one run: perceptd's bus (its BusPublisher and encoder, received and decoded as a
// subscriber does), a bare zeromq.js PUB/SUB pair, and a plain TCP socket. The floor under
// the pipeline bench's publish->receipt, and how much of it is ZeroMQ's.
//
//   npx tsx scripts/bus-transports.ts [--rate 32] [--messages 300] [--warmup 100] [--rounds 2]
//
// Each round runs the three one after another, each with a fresh sending process at the
// same rate and with the same message size (that of perceptd's message, measured in its
// block), discarding the first --warmup messages. Latency is the sender's tick (its
// monotonic clock, just before it encodes and sends) to the receiver taking the message
// from the socket (the same clock: both processes read CLOCK_MONOTONIC). perceptd's sender
// warms its publishing path first, as the daemon does (src/bus/warmup.ts); the bare
// senders have next to no code of their own to warm. Nothing else should run meanwhile.
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import net from "node:net";
import { Subscriber } from "zeromq";
import { collectGarbage } from "../src/cli/bench/collect-garbage.ts";
import { BUS_FLOOR_BOUND_MSG, BUS_FLOOR_PUBLISHER, collectDetections, runNodeProcess, waitForEndpoint, type RunningDaemon } from "../src/cli/bench/daemon-process.ts";
import { latencyStats, type LatencyStats } from "../src/cli/bench/model-bench.ts";
import { SENDER_BOUND_MSG, TOPIC, type SenderTransport } from "./bus-transports-sender.ts";

const SENDER = path.join(import.meta.dirname, "bus-transports-sender.ts");
const BOUND_TIMEOUT_MS = 30_000;

type Transport = "perceptd" | SenderTransport;
const LABELS: Record<Transport, string> = { perceptd: "perceptd bus", zeromq: "bare zeromq.js", tcp: "plain TCP socket" };

interface Block {
  transport: Transport;
  /** sender's tick to receipt, ms */
  samplesMs: number[];
  /** bytes on the wire per message (topic frame included for the ZeroMQ two) */
  bytes: number;
}

interface Settings {
  rate: number;
  messages: number;
  warmup: number;
  rounds: number;
}

function option(name: string, text: string | undefined, fallback: number, check: (v: number) => boolean, what: string): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!check(v)) throw new Error(`bus-transports: --${name} must be ${what}, got "${text}"`);
  return v;
}

const msSince = (tNs: bigint, receivedNs: bigint): number => Number(receivedNs - tNs) / 1e6;

/** Resolves once `want` messages are in, rejects if the sender dies or goes quiet first. */
function untilCount(proc: RunningDaemon, count: () => number, want: number, rate: number): Promise<void> {
  const limitMs = 5_000 + (want / rate) * 2_000;
  const started = Date.now();
  return new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (count() >= want) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - started > limitMs) {
        clearInterval(timer);
        reject(new Error(`bus-transports: ${count()} of ${want} messages after ${limitMs} ms; sender stderr: ${proc.stderr().slice(-800)}`));
      }
    }, 20);
    void proc.exited.then((code) => {
      clearInterval(timer);
      if (count() < want) reject(new Error(`bus-transports: the sender exited (${String(code)}) after ${count()} of ${want} messages; stderr: ${proc.stderr().slice(-800)}`));
    });
  });
}

async function perceptdBlock(s: Settings): Promise<Block> {
  const proc = runNodeProcess("bus floor publisher", ["--import", "tsx", BUS_FLOOR_PUBLISHER, String(s.rate)]);
  try {
    const endpoint = await waitForEndpoint(proc, BUS_FLOOR_BOUND_MSG, BOUND_TIMEOUT_MS);
    const sub = await collectDetections(endpoint);
    try {
      await untilCount(proc, () => sub.messages.length, s.warmup + s.messages, s.rate);
    } finally {
      sub.close();
    }
    const want = s.warmup + s.messages;
    const samplesMs = sub.messages.slice(s.warmup, want).map((m, i) => msSince(m.tIngestNs, sub.receivedNs[s.warmup + i]));
    const bytes = sub.raw[0].reduce((a, f) => a + f.length, 0);
    return { transport: "perceptd", samplesMs, bytes };
  } finally {
    await proc.stop(5_000);
  }
}

async function senderBlock(transport: SenderTransport, s: Settings, bytes: number): Promise<Block> {
  const payloadBytes = transport === "zeromq" ? bytes - TOPIC.length : bytes;
  const proc = runNodeProcess(`${transport} sender`, ["--import", "tsx", SENDER, transport, String(s.rate), String(payloadBytes)]);
  const received: number[] = [];
  const want = s.warmup + s.messages;
  const take = (payload: Buffer, atNs: bigint): void => {
    if (payload.length !== payloadBytes) throw new Error(`bus-transports: a ${transport} message of ${payload.length} bytes, sent ${payloadBytes}`);
    if (received.length < want) received.push(msSince(payload.readBigUInt64LE(0), atNs));
  };
  let close = (): void => {};
  try {
    const endpoint = await waitForEndpoint(proc, SENDER_BOUND_MSG, BOUND_TIMEOUT_MS);
    if (transport === "zeromq") {
      const sub = new Subscriber();
      sub.connect(endpoint);
      sub.subscribe(TOPIC);
      close = () => sub.close();
      void (async () => {
        for await (const [, payload] of sub) take(payload, process.hrtime.bigint());
      })().catch(() => undefined); // ends with close()
    } else {
      const { port } = new URL(endpoint);
      const socket = net.connect(Number(port), "127.0.0.1");
      socket.setNoDelay(true);
      close = () => socket.destroy();
      let pending: Buffer = Buffer.alloc(0);
      socket.on("data", (d: Buffer) => {
        const t = process.hrtime.bigint();
        pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
        while (pending.length >= payloadBytes) {
          take(pending.subarray(0, payloadBytes), t);
          pending = pending.subarray(payloadBytes);
        }
      });
    }
    await untilCount(proc, () => received.length, want, s.rate);
    return { transport, samplesMs: received.slice(s.warmup, want), bytes };
  } finally {
    close();
    await proc.stop(5_000);
  }
}

const fmt = (ms: number): string => (ms < 10 ? ms.toFixed(3) : ms.toFixed(1));

function statsLine(b: Block): string {
  const st = latencyStats(b.samplesMs);
  return `${LABELS[b.transport]} p50 ${fmt(st.p50Ms)} p99 ${fmt(st.p99Ms)} max ${fmt(st.maxMs)}`;
}

function table(blocks: Block[]): string[] {
  const pooled = (t: Transport): LatencyStats => latencyStats(blocks.filter((b) => b.transport === t).flatMap((b) => b.samplesMs));
  const tcp = pooled("tcp");
  const rows = (["perceptd", "zeromq", "tcp"] as const).map((t) => {
    const st = pooled(t);
    return [LABELS[t], String(st.runs), fmt(st.p50Ms), fmt(st.p99Ms), fmt(st.maxMs), `${(st.p50Ms / tcp.p50Ms).toFixed(2)}x`, `${(st.p99Ms / tcp.p99Ms).toFixed(2)}x`];
  });
  const head = ["transport", "messages", "p50 ms", "p99 ms", "max ms", "p50 / TCP", "p99 / TCP"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")} |`;
  return [line(head), `| ${widths.map((w, i) => (i === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)).join(" | ")} |`, ...rows.map(line)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rate: { type: "string" }, messages: { type: "string" }, warmup: { type: "string" }, rounds: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("usage: npx tsx scripts/bus-transports.ts [--rate 32 (messages/s)] [--messages 300] [--warmup 100 (discarded)] [--rounds 2]");
    return;
  }
  const positiveInt = (v: number): boolean => Number.isInteger(v) && v > 0;
  const s: Settings = {
    rate: option("rate", values.rate, 32, (v) => Number.isFinite(v) && v > 0 && v <= 1000, "messages/s above 0 and at most 1000"),
    messages: option("messages", values.messages, 300, (v) => positiveInt(v) && v >= 2, "an integer of at least 2"),
    warmup: option("warmup", values.warmup, 100, (v) => Number.isInteger(v) && v >= 0, "an integer of at least 0"),
    rounds: option("rounds", values.rounds, 2, positiveInt, "a positive integer"),
  };
  console.log(
    `bus transports: ${s.rounds} round(s) of ${s.messages} messages at ${s.rate}/s per transport, after ${s.warmup} discarded, between two processes on loopback ` +
      `(${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, Node ${process.version})`,
  );
  const blocks: Block[] = [];
  for (let r = 1; r <= s.rounds; r++) {
    const round: Block[] = [];
    for (const t of ["perceptd", "zeromq", "tcp"] as const) {
      process.stderr.write(`round ${r}/${s.rounds}: ${LABELS[t]}, ${s.warmup + s.messages} messages (~${Math.ceil((s.warmup + s.messages) / s.rate)} s)...\n`);
      // Out of the timed blocks, as the pipeline bench does (collect-garbage.ts says why).
      collectGarbage();
      round.push(t === "perceptd" ? await perceptdBlock(s) : await senderBlock(t, s, round[0].bytes));
    }
    console.log(`round ${r}: ${round.map(statsLine).join("; ")}`);
    blocks.push(...round);
  }
  console.log(`all rounds, sender's tick to receipt, ${blocks[0].bytes} bytes a message:`);
  for (const l of table(blocks)) console.log(l);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
