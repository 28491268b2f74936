#!/usr/bin/env node
// libuv reads UV_THREADPOOL_SIZE once, when its pool first starts, so it is set here before
// anything uses the pool. Each camera parks two pool threads in GStreamer (bus poll and
// appsink pull): `run` gets 36, enough for the 16 cameras a config may list at most plus
// fs/dns/zlib (RUN_THREADPOOL_SIZE in src/ingest/threadpool.ts); the offline commands run a
// pipeline or two and keep 16. A smaller value set in the environment is the user's; `run`
// refuses a config it is too small for (exit 78) instead of stalling.
process.env.UV_THREADPOOL_SIZE ??= process.argv[2] === "run" ? "36" : "16";

// A reader that closed our stdout early (`perceptd run --help | head`) wants no more output:
// end quietly, as a C tool does on SIGPIPE, instead of printing an EPIPE stack trace.
process.stdout.on("error", (err) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

// The CLI is TypeScript run through tsx's loader, so a fresh clone needs no build step.
const { register } = await import("tsx/esm/api");
register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
// Exit now rather than when the event loop drains: the native modules' threads (GStreamer's
// bus polls, ONNX Runtime's pools) take a while to wind down, and a signal that arrives
// while Node tears down meets the default action (`perceptd run` stopped cleanly, then
// killed by a late SIGINT: exit 130). stdout and stderr are synchronous on Linux (files,
// pipes, terminals), so nothing written is lost.
process.exit(code);
