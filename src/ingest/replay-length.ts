// Whether a replayed file ended earlier than its container says. A file cut short (a copy
// interrupted, a recorder that lost power) decodes up to the cut and then reads as a normal
// end of stream, so without this check a replay of 15 frames out of 795 ends with exit 0
// and not a word.
//
// What the container says: GStreamer's duration query (MP4, Matroska: the header's
// duration), and for AVI the frame count in its header, read here, because avidemux builds
// its index by scanning a file that has lost its index at the end and then reports the
// duration of what it found.
import { closeSync, openSync, readSync } from "node:fs";

/** How much of the file's start holds the AVI headers (hdrl comes first, well within this). */
const AVI_HEAD_BYTES = 64 * 1024;

/** A shortfall below this many seconds, or this fraction of the declared length, is rounding, not a cut. */
export const TRUNCATION_TOLERANCE_S = 1;
export const TRUNCATION_TOLERANCE_FRACTION = 0.02;

/**
 * The frame count an AVI file's headers declare: the OpenDML total (dmlh, files over 1 GB),
 * else the video stream's length (strh of a vids stream), else the main header's total (avih).
 * Null when `head` is not an AVI file or holds no such header.
 */
export function aviDeclaredFrames(head: Uint8Array): number | null {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const fourcc = (at: number): string => String.fromCharCode(head[at], head[at + 1], head[at + 2], head[at + 3]);
  if (head.length < 12 || fourcc(0) !== "RIFF" || fourcc(8) !== "AVI ") return null;
  // Set inside walk(); a record, because TypeScript does not see a closure assign a local.
  const found: { avih?: number; strh?: number; dmlh?: number } = {};
  // Chunks and LISTs, depth first; LIST bodies are walked, other chunks skipped (sizes padded to even).
  const walk = (from: number, to: number): void => {
    let at = from;
    while (at + 8 <= to) {
      const id = fourcc(at);
      const size = view.getUint32(at + 4, true);
      const body = at + 8;
      if (id === "LIST" && body + 4 <= to) {
        const kind = fourcc(body);
        if (kind === "movi") return; // the frames: the headers are all before them
        walk(body + 4, Math.min(to, body + size));
      } else if (id === "avih" && body + 20 <= to) {
        found.avih = view.getUint32(body + 16, true);
      } else if (id === "strh" && body + 36 <= to && fourcc(body) === "vids" && found.strh === undefined) {
        found.strh = view.getUint32(body + 32, true);
      } else if (id === "dmlh" && body + 4 <= to) {
        found.dmlh = view.getUint32(body, true);
      }
      at = body + size + (size % 2);
    }
  };
  walk(12, head.length);
  const declared = [found.dmlh, found.strh, found.avih].find((n) => n !== undefined && n > 0);
  return declared ?? null;
}

/** aviDeclaredFrames of a file on disk; null when unreadable or not an AVI file. */
export function aviDeclaredFramesOf(path: string): number | null {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const head = new Uint8Array(AVI_HEAD_BYTES);
    const n = readSync(fd, head, 0, head.length, 0);
    return aviDeclaredFrames(head.subarray(0, n));
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface ReplayLength {
  /** media seconds played up to the end of stream */
  playedS: number;
  /** media seconds the container declares */
  declaredS: number;
}

export interface ReplayMeasures {
  /** frames delivered in this pass */
  frames: number;
  /** nominal frame rate from the caps; null when unknown */
  fps: number | null;
  /** wall-clock seconds from the first frame of the pass to the last (a paced replay plays in real time and may drop frames); null for an unpaced one */
  pacedSpanS: number | null;
  /** GStreamer's duration query, seconds; <= 0 when unknown */
  durationS: number;
  /** aviDeclaredFrames of the file; null when not an AVI */
  aviFrames: number | null;
}

/** The played and declared lengths when a replay ended short of what its container says; null when it did not (or nothing is known). */
export function replayEndedEarly(m: ReplayMeasures): ReplayLength | null {
  if (m.fps === null || m.fps <= 0) return null;
  const byCount = m.frames / m.fps;
  // A paced replay drops frames the consumer was too slow for, so its count can fall short
  // of what played; its real-time span cannot.
  const playedS = m.pacedSpanS === null ? byCount : Math.max(byCount, m.pacedSpanS + 1 / m.fps);
  const declaredS = Math.max(m.durationS > 0 ? m.durationS : 0, m.aviFrames !== null ? m.aviFrames / m.fps : 0);
  if (declaredS <= 0) return null;
  const shortfall = declaredS - playedS;
  if (shortfall <= Math.max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_FRACTION * declaredS)) return null;
  return { playedS, declaredS };
}
