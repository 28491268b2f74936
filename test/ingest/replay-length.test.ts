// Telling a file cut short from one played to its end: the AVI header's frame count, and
// the played length against the declared one.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { aviDeclaredFrames, aviDeclaredFramesOf, replayEndedEarly } from "../../src/ingest/replay-length.ts";

const VTEST = join(import.meta.dirname, "../../.cache/fixtures/vtest.avi");

describe("aviDeclaredFrames", () => {
  it.skipIf(!existsSync(VTEST))("reads vtest.avi's 795 frames from its header, also from a copy cut after 2 MB", async () => {
    expect(aviDeclaredFramesOf(VTEST)).toBe(795);
    const bytes = await readFile(VTEST);
    expect(aviDeclaredFrames(bytes.subarray(0, 2_000_000))).toBe(795);
  });

  it("is null for what is not an AVI file, or a header cut before its counts", () => {
    expect(aviDeclaredFrames(new TextEncoder().encode("RIFF\0\0\0\0WAVEfmt "))).toBeNull();
    expect(aviDeclaredFrames(new Uint8Array(0))).toBeNull();
    expect(aviDeclaredFrames(new TextEncoder().encode("RIFF\x10\0\0\0AVI LIST"))).toBeNull();
    expect(aviDeclaredFramesOf("/nonexistent/clip.avi")).toBeNull();
  });
});

describe("replayEndedEarly", () => {
  const base = { fps: 10, pacedSpanS: null, durationS: -1, aviFrames: 795 };

  it("flags an unpaced replay that delivered 193 of 795 declared frames", () => {
    expect(replayEndedEarly({ ...base, frames: 193 })).toEqual({ playedS: 19.3, declaredS: 79.5 });
  });

  it("takes GStreamer's duration where the container has one (MP4, Matroska)", () => {
    expect(replayEndedEarly({ ...base, aviFrames: null, frames: 15, durationS: 60 })).toEqual({ playedS: 1.5, declaredS: 60 });
  });

  it("does not flag a file played to its end, or one short by less than a second or 2 %", () => {
    expect(replayEndedEarly({ ...base, frames: 795 })).toBeNull();
    expect(replayEndedEarly({ ...base, frames: 786 })).toBeNull();
    expect(replayEndedEarly({ ...base, aviFrames: 6000, frames: 5890 })).toBeNull(); // 11 s of 600 s
  });

  it("judges a paced replay, which drops frames a slow consumer misses, by its real-time span", () => {
    expect(replayEndedEarly({ ...base, frames: 300, pacedSpanS: 79.4 })).toBeNull();
    expect(replayEndedEarly({ ...base, frames: 50, pacedSpanS: 19.2 })).toEqual({ playedS: 19.3, declaredS: 79.5 });
  });

  it("says nothing when neither the rate nor a declared length is known", () => {
    expect(replayEndedEarly({ ...base, fps: null, frames: 10 })).toBeNull();
    expect(replayEndedEarly({ ...base, aviFrames: null, frames: 10 })).toBeNull();
  });
});
