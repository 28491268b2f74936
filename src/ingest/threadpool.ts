// libuv threadpool sizing for GStreamer ingest. gstreamer-superficial runs every blocking
// call on Node's shared threadpool: each running pipeline parks one thread in its bus poll,
// and a live camera's appsink pull waits on another for the next frame, so a camera holds
// two threads for as long as it runs. fs, dns.lookup, zlib, crypto and ONNX Runtime's async
// session runs share the same pool; when it is exhausted they stall along with the cameras.
//
// UV_THREADPOOL_SIZE is read once, when the pool first starts, so it cannot be raised from
// inside the process: bin/perceptd.js sets it, before anything starts the pool, to
// RUN_THREADPOOL_SIZE for `perceptd run` (enough for the most cameras a config may list)
// unless the environment sets it; a smaller one set there is refused at start (exit 78).

/** Node's pool size when UV_THREADPOOL_SIZE is unset or not a positive number. */
export const DEFAULT_THREADPOOL_SIZE = 4;
/** libuv's own ceiling (UV_THREADPOOL_SIZE above it is clamped). */
export const MAX_THREADPOOL_SIZE = 1024;

/** Threads a camera holds while it runs: the bus poll and the pending appsink pull. */
export const THREADS_PER_CAMERA = 2;

/**
 * Threads kept for everything else on the pool: Node's default size, so fs, dns, zlib and
 * an inference worker's async runs get what they would get in a process without cameras.
 */
export const THREADPOOL_HEADROOM = DEFAULT_THREADPOOL_SIZE;

/** The pool size this process runs with, as libuv reads it from the environment. */
export function threadpoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number.parseInt(env.UV_THREADPOOL_SIZE ?? "", 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, MAX_THREADPOOL_SIZE) : DEFAULT_THREADPOOL_SIZE;
}

/** UV_THREADPOOL_SIZE to run `cameras` cameras with: two threads each plus headroom. */
export function requiredThreadpoolSize(cameras: number): number {
  if (!Number.isInteger(cameras) || cameras < 0) {
    throw new RangeError(`requiredThreadpoolSize: cameras must be a non-negative integer, got ${String(cameras)}`);
  }
  return Math.min(MAX_THREADPOOL_SIZE, cameras * THREADS_PER_CAMERA + THREADPOOL_HEADROOM);
}

/**
 * What bin/perceptd.js sets UV_THREADPOOL_SIZE to for `perceptd run` when the environment
 * does not: enough for MAX_CAMERAS (schema.ts) cameras. bin/ is plain JavaScript that runs
 * before TypeScript can be loaded, so it spells the number out; test/bin checks it is this.
 */
export const RUN_THREADPOOL_SIZE = 36;

/**
 * Why a config's cameras cannot run on this process's threadpool (for the exit-78 message),
 * or null when they can.
 */
export function threadpoolRefusal(cameras: number, env: NodeJS.ProcessEnv = process.env): string | null {
  const have = threadpoolSize(env);
  const want = requiredThreadpoolSize(cameras);
  if (have >= want) return null;
  return (
    `cameras: ${cameras} camera(s) need a libuv threadpool of ${want} (${THREADS_PER_CAMERA} per camera for GStreamer's bus poll ` +
    `and appsink pull, plus ${THREADPOOL_HEADROOM}), but UV_THREADPOOL_SIZE=${env.UV_THREADPOOL_SIZE ?? "(unset)"} gives ${have}: ` +
    `unset it (perceptd then sizes the pool for up to the most cameras a config may list) or set it to ${want} or more`
  );
}

/**
 * A sentence for the startup log when the pool is smaller than recommended for `cameras`,
 * or null when it is large enough. Below the recommendation cameras still start as long as
 * one thread stays free (CameraSource.start() refuses beyond that), but frames and file
 * I/O then wait on each other.
 */
export function threadpoolWarning(cameras: number, env: NodeJS.ProcessEnv = process.env): string | null {
  const have = threadpoolSize(env);
  const want = requiredThreadpoolSize(cameras);
  if (have >= want) return null;
  const source = env.UV_THREADPOOL_SIZE === undefined ? "unset, so libuv's default" : `set to ${env.UV_THREADPOOL_SIZE}`;
  return (
    `UV_THREADPOOL_SIZE is ${source} (${have} threads), but ${cameras} camera(s) need ${want}: ` +
    `${THREADS_PER_CAMERA} per camera for the GStreamer bus poll and appsink pull, plus ${THREADPOOL_HEADROOM} ` +
    `for fs, dns, zlib and inference; set UV_THREADPOOL_SIZE=${want} in the environment before node starts`
  );
}
