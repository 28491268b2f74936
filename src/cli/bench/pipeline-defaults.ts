// `perceptd bench pipeline`'s defaults, apart from the bench itself so that the CLI can
// show them in --help without loading ONNX Runtime.

/** Timed frames per scenario: session runs for the raw loop, bus messages for the daemon. */
export const DEFAULT_PIPELINE_FRAMES = 300;
/**
 * Untimed runs of the raw loop and first messages of a daemon left out of the window: the
 * first runs allocate arenas and fill caches, and a daemon's first frames pay for V8
 * compiling its frame path (with 5, the paced daemon's first frames stood out; with 100,
 * about 3 s at its rate, they did not).
 */
export const DEFAULT_PIPELINE_WARMUP = 100;
/** The paced camera runs at this fraction of the raw loop's throughput: busy, with room for slow frames. */
export const DEFAULT_PACED_FRACTION = 0.6;
/** The overloading camera runs at this multiple of the raw loop's throughput. */
export const DEFAULT_OVERLOAD_FACTOR = 3;
