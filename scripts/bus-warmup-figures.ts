// What the daemon's bus warm-up (src/bus/warmup.ts) buys and costs: each run is a fresh
// process that binds a publisher, warms it up or not, then publishes 300 detections
// messages of six boxes at 100 per second, timing each publish (encoding and the hand-over
// to zeromq.js). Runs alternate cold and warm so that the machine's drift lands on both.
//
//   npx tsx scripts/bus-warmup-figures.ts [--pairs 5]
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { BusPublisher } from "../src/bus/publisher.ts";
import { warmUpBus } from "../src/bus/warmup.ts";

const MESSAGES = 300;

async function child(warm: boolean): Promise<void> {
  const bus = await BusPublisher.bind(["tcp://127.0.0.1:0"], { sendHighWaterMark: 1000 });
  const warmMs = warm ? (await warmUpBus()).ms : 0;
  const detections = Array.from({ length: 6 }, (_, i) => ({
    box: [10 + 90 * i, 20, 60 + 90 * i, 200] as [number, number, number, number],
    score: 0.9 - 0.1 * i,
    classId: 0,
    label: "person",
    ...(i % 2 === 0 ? { trackId: BigInt(i + 1), rangeM: 5 + i, ttcS: 3, inCorridor: true } : {}),
  }));
  const ms: number[] = [];
  for (let i = 0; i < MESSAGES; i++) {
    const t = process.hrtime.bigint();
    bus.publishMessage("detections", { model: "m", frameWidthPx: 768, frameHeightPx: 576, detections }, { cameraId: "c", frameSeq: i, tIngestMonoNs: t });
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    await new Promise((r) => setTimeout(r, 10));
  }
  await bus.close();
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  process.stdout.write(JSON.stringify({ warm, warmMs, p50: q(0.5), p99: q(0.99), max: s[s.length - 1], over1ms: ms.filter((x) => x > 1).length }) + "\n");
}

interface Row {
  warm: boolean;
  warmMs: number;
  p50: number;
  p99: number;
  max: number;
  over1ms: number;
}

function parent(pairs: number): void {
  const rows: Row[] = [];
  for (let i = 0; i < pairs; i++) {
    for (const warm of i % 2 === 0 ? [false, true] : [true, false]) {
      const r = spawnSync(process.execPath, ["--import", "tsx", import.meta.filename, "--child", warm ? "warm" : "cold"], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
      rows.push(JSON.parse(r.stdout) as Row);
    }
  }
  const range = (xs: number[], d = 2): string => `${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}`;
  process.stdout.write(`first ${MESSAGES} detections messages of a fresh process, publish time per message (ms), ${pairs} runs each:\n\n`);
  process.stdout.write("| bus warm-up | cost at start ms | p50 | p99 | max | messages over 1 ms |\n|---|---|---|---|---|---|\n");
  for (const warm of [false, true]) {
    const rs = rows.filter((r) => r.warm === warm);
    process.stdout.write(
      `| ${warm ? "on (2000 messages)" : "off"} | ${warm ? range(rs.map((r) => r.warmMs), 0) : "0"} | ${range(rs.map((r) => r.p50), 3)} | ${range(rs.map((r) => r.p99))} | ${range(rs.map((r) => r.max), 1)} | ${range(rs.map((r) => r.over1ms), 0)} |\n`,
    );
  }
}

const { values } = parseArgs({ options: { pairs: { type: "string", default: "5" }, child: { type: "string" } } });
if (values.child !== undefined) await child(values.child === "warm");
else parent(Number(values.pairs));
