// Entry file of a raw-loop worker thread (raw-sessions.ts). A worker does not inherit tsx's
// loader (see src/infer/worker-bootstrap.mjs for why), so it registers tsx itself, resolved
// from this file, then loads the real entry.
import { register } from "tsx/esm/api";

register();
await import("./raw-session-worker.ts");
