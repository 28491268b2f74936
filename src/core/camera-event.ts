// What a camera source reports besides frames: ingest emits these, the health monitors and
// the daemon consume them. Pure data: no imports.

export type CameraEvent =
  /** First frame of a (re)started pipeline, with the source size it found. */
  | { type: "running"; camera: string; sourceWidth: number; sourceHeight: number }
  | { type: "eos"; camera: string }
  | { type: "loop"; camera: string; loops: number; method: "seek" | "rebuild" }
  /** A replayed file's first pass ended well before the length its container declares (a file cut short). */
  | { type: "truncated"; camera: string; path: string; playedS: number; declaredS: number; frames: number }
  /** `message` names the camera, the source and, for GStreamer errors, the element. */
  | { type: "error"; camera: string; message: string }
  /** `attempt` counts consecutive restarts since the last healthy run, from 1. */
  | { type: "restart"; camera: string; attempt: number; delayMs: number }
  /** `detail`: for reason "error", the error that ended it (the same words as the "error" event). */
  | { type: "ended"; camera: string; reason: "eos" | "error"; detail?: string };
