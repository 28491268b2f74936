#!/usr/bin/env node
// libuv reads UV_THREADPOOL_SIZE once, when its pool first starts, so it is set here before
// anything uses the pool. Each camera parks two pool threads in GStreamer (bus poll and
// appsink pull); 16 leaves room for six cameras plus fs/dns/zlib. See src/ingest/threadpool.ts.
process.env.UV_THREADPOOL_SIZE ??= "16";

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
process.exitCode = await main(process.argv.slice(2));
