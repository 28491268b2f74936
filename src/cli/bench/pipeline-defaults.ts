// `perceptd bench pipeline`'s defaults, apart from the bench itself so that the CLI can
// show them in --help without loading ONNX Runtime.

/** Timed frames per scenario: session runs for (a)-(a3), bus messages for (b)-(d), (c2) and (c3). */
export const DEFAULT_PIPELINE_FRAMES = 300;
/**
 * Untimed runs of (a) and first messages of (b)-(d), (c2) and (c3) left out of the window: the
 * first runs allocate arenas and fill caches, and a daemon's first frames pay for V8
 * compiling its frame path. With 5, (c)'s first frames often stood out (in one run on the
 * 2-core build VM, with no scrape in the window, the first three took 36-45 ms end to end
 * against a p50 of 20); with 100 (about 3 s at (c)'s rate) none of five runs showed it.
 */
export const DEFAULT_PIPELINE_WARMUP = 100;
/** (c) runs at this fraction of (a)'s throughput: busy, but with room for slow frames. */
export const DEFAULT_PACED_FRACTION = 0.6;
/** (d) runs at this multiple of (a)'s throughput. */
export const DEFAULT_OVERLOAD_FACTOR = 3;
