// Worker thread of scripts/cpu-gaps.ts, plain JavaScript because a worker does not inherit
// tsx's loader. Reads the monotonic clock in a tight loop for workerData.seconds and counts
// the gaps between consecutive reads longer than each of workerData.thresholdsMs.
import { parentPort, workerData } from "node:worker_threads";

const { seconds, thresholdsMs } = workerData;
const over = thresholdsMs.map(() => 0);
let maxMs = 0;
let lostMs = 0;
// performance.now(), not hrtime.bigint(): no allocation per read, so no collections in the
// loop to mistake for lost time.
const start = performance.now();
const end = start + seconds * 1e3;
let prev = start;
for (;;) {
  const t = performance.now();
  const gap = t - prev;
  prev = t;
  if (t > end) break;
  if (gap > thresholdsMs[0]) {
    lostMs += gap;
    for (let i = 0; i < thresholdsMs.length; i++) if (gap > thresholdsMs[i]) over[i]++;
    if (gap > maxMs) maxMs = gap;
  }
}
parentPort.postMessage({ over, maxMs, lostMs, spunMs: prev - start });
