// Entry file of the inference worker thread. Node 20 cannot load TypeScript by itself, and
// a worker does not inherit tsx's loader from a main thread that called register() (the
// CLI) or that vitest transforms; `execArgv: ["--import", "tsx"]` fails under vitest and
// resolves "tsx" from the working directory (a daemon under systemd may run from /). So the
// worker registers tsx itself, resolved from this file, then loads the real entry.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
