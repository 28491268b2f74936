#!/bin/sh
':' //; d=$(dirname "$(readlink -f "$0")")/..; case $(uname -m) in x86_64) a=x64;; aarch64|arm64) a=arm64;; *) a=none;; esac; n="$d/node_modules/node-linux-$a/bin/node"; if [ -x "$n" ]; then exec "$n" --disable-sigusr1 "$0" "$@"; fi; exec node "$0" "$@"
// The line above is shell to /bin/sh and a string and a comment to JavaScript. Run directly
// (systemd's ExecStart, a user, npm's bin link), it execs the project's own Node.js runtime
// (node_modules/node-linux-<arch>: Node 24 LTS, installed by npm ci from the lockfile, see
// docs/running.md) with --disable-sigusr1, keeping the process id, so systemd's notify and
// watchdog see the daemon itself; without that runtime, the first node on PATH.

// libuv reads UV_THREADPOOL_SIZE once, when its pool first starts, so it is set here before
// anything uses the pool. Each camera parks two pool threads in GStreamer (bus poll and
// appsink pull): `run` gets 36, enough for the 16 cameras a config may list at most plus
// fs/dns/zlib (RUN_THREADPOOL_SIZE in src/ingest/threadpool.ts); the offline commands run a
// pipeline or two and keep 16. A smaller value set in the environment is the user's; `run`
// refuses a config it is too small for (exit 78) instead of stalling.
process.env.UV_THREADPOOL_SIZE ??= process.argv[2] === "run" ? "36" : "16";

// Started by some other node (`node bin/perceptd.js`, a test runner, a Dockerfile's exec
// form): run again on the project's runtime, or on this node with --disable-sigusr1.
const { reexecOnRuntime } = await import("./runtime.js");
await reexecOnRuntime(import.meta.url);

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
