// Entry file of the live view's render thread: registers tsx resolved from this file, as
// src/infer/worker-bootstrap.mjs explains, then loads the real entry.
import { register } from "tsx/esm/api";

register();
await import("./render-thread.ts");
