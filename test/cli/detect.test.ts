// The real CLI in a child process (bin/perceptd.js through tsx), on the shipped models and
// vtest.avi: what a user or a script sees, exit codes included.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFrameSpec } from "../../src/cli/commands/detect.ts";
import { readVideoFrames } from "../../src/ingest/gst/video-file.ts";
import { readImageFile, writePng } from "../../src/ingest/image-file.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../src/infer/manifest.ts";
import { perceptd } from "./run-cli.ts";
import { DEFAULT_MODEL, literal } from "../daemon/harness.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const VIDEO = ".cache/fixtures/vtest.avi";



interface JsonDetection {
  file: string;
  frame: number;
  class: string;
  score: number;
  box: [number, number, number, number];
}

function parseLines(stdout: string): JsonDetection[] {
  const lines = stdout.split("\n").filter((l) => l !== "");
  return lines.map((l) => JSON.parse(l) as JsonDetection);
}

function expectWellFormed(d: JsonDetection, file: string, width: number, height: number): void {
  expect(Object.keys(d)).toEqual(["file", "frame", "class", "score", "box"]);
  expect(d.file).toBe(file);
  expect(d.score).toBeGreaterThan(0);
  expect(d.score).toBeLessThanOrEqual(1);
  expect(Math.round(d.score * 1e4) / 1e4).toBe(d.score);
  expect(d.box).toHaveLength(4);
  for (const v of d.box) expect(Math.round(v * 10) / 10).toBe(v);
  const [x1, y1, x2, y2] = d.box;
  expect(0 <= x1 && x1 < x2 && x2 <= width && 0 <= y1 && y1 < y2 && y2 <= height).toBe(true);
}

let dir: string;
let png: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-cli-"));
  png = join(dir, "vtest-frame30.png");
  for await (const f of readVideoFrames(VIDEO, { select: (i) => i === 30, maxFrames: 1 })) await writePng(png, f.image);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("perceptd detect on an image", () => {
  it("prints JSON lines with the people in a vtest frame", async () => {
    const r = await perceptd("detect", png, "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const dets = parseLines(r.stdout);
    for (const d of dets) {
      expectWellFormed(d, png, 768, 576);
      expect(d.frame).toBe(0);
    }
    expect(dets.filter((d) => d.class === "person").length).toBeGreaterThanOrEqual(3);
  });

  it("prints a table, a per-frame summary and the run summary, and writes --out as PNG", async () => {
    const out = join(dir, "annotated.png");
    const r = await perceptd("detect", png, "--out", out, "--classes", "person,car", "--score-threshold", "0.5");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ +frame +class +score +box x1, y1, x2, y2$/m);
    expect(r.stdout).toMatch(/^ +0 +person +0\.\d{4} +[\d.]+, +[\d.]+, +[\d.]+, +[\d.]+$/m);
    expect(r.stdout).toMatch(/^frame 0: \d+ detections? \(person \d+(, car \d+)?\)$/m);
    expect(r.stdout).toMatch(new RegExp(`^model ${literal(DEFAULT_MODEL)} .*execution provider cpu, 1 frame, mean inference \\d+\\.\\d ms`, "m"));
    expect(r.stdout).toContain(`annotated image written to ${out}`);
    expect(r.stdout).not.toMatch(/truck|bird/);

    const bytes = await readFile(out);
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const annotated = await readImageFile(out);
    const original = await readImageFile(png);
    expect([annotated.width, annotated.height]).toEqual([768, 576]);
    expect(Buffer.from(annotated.data).equals(Buffer.from(original.data))).toBe(false);
  });

  it("tells images by content, not by file name", async () => {
    const disguised = join(dir, "frame.dat");
    await writeFile(disguised, await readFile(png));
    const r = await perceptd("detect", disguised, "--json", "--classes", "person");
    expect(r.code).toBe(0);
    expect(parseLines(r.stdout).length).toBeGreaterThanOrEqual(3);
  });

  it("uses the model and manifest given on the command line", async () => {
    // A one-model manifest elsewhere, pointing at the shipped file.
    const base = resolveModel(await readManifest(DEFAULT_MANIFEST_PATH), DEFAULT_MANIFEST_PATH, "centernet");
    const manifest = join(dir, "manifest.json");
    await writeFile(
      manifest,
      JSON.stringify({ schemaVersion: 1, default: "cn", models: { cn: { ...base.entry, file: base.path } } }),
    );
    const ok = await perceptd("detect", png, "--manifest", manifest);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^model cn \(/m);
    expect(ok.stdout).toMatch(/person/);

    const missing = await perceptd("detect", png, "--manifest", manifest, "--model", "nanodet");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`perceptd: model "nanodet" is not in ${manifest}; known models: cn\n`);
  });
});

describe("perceptd detect on a video", () => {
  it("runs on the selected frames, prints JSON lines and writes the last frame with --out", async () => {
    const out = join(dir, "video.png");
    const r = await perceptd("detect", VIDEO, "--frames", "0-20:10", "--json", "--out", out);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const dets = parseLines(r.stdout);
    for (const d of dets) expectWellFormed(d, VIDEO, 768, 576);
    expect(new Set(dets.map((d) => d.frame))).toEqual(new Set([0, 10, 20]));
    for (const frame of [0, 10, 20]) {
      expect(dets.filter((d) => d.frame === frame && d.class === "person").length).toBeGreaterThanOrEqual(2);
    }
    // Frames come out in order.
    expect(dets.map((d) => d.frame)).toEqual([...dets.map((d) => d.frame)].sort((a, b) => a - b));

    const annotated = await readImageFile(out);
    expect([annotated.width, annotated.height]).toEqual([768, 576]);
    let frame20: Uint8Array | null = null;
    for await (const f of readVideoFrames(VIDEO, { select: (i) => i === 20, maxFrames: 1 })) frame20 = f.image.data.slice();
    let same = 0;
    const a = annotated.data;
    const b = frame20 as unknown as Uint8Array;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    // Frame 20 under a few boxes: nearly every byte unchanged, some drawn over.
    expect(same / a.length).toBeGreaterThan(0.95);
    expect(same).toBeLessThan(a.length);
  });

  it("prints a table per frame and a summary", async () => {
    const r = await perceptd("detect", VIDEO, "--frames", "5,12", "--classes", "person");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^frame 5: \d+ detections? \(person \d+\)$/m);
    expect(r.stdout).toMatch(/^frame 12: \d+ detections? \(person \d+\)$/m);
    expect(r.stdout).not.toMatch(/^frame (?!5:|12:)\d+:/m);
    expect(r.stdout).toMatch(/execution provider cpu, 2 frames, mean inference/);
  });
});

describe("perceptd detect errors", () => {
  const cases: [string, string[], RegExp][] = [
    ["a missing file", ["detect", "/no/such/clip.avi"], /^perceptd: \/no\/such\/clip\.avi: no such file$/],
    ["an unknown model", ["detect", VIDEO, "--model", "yolo9000"], /^perceptd: model "yolo9000" is not in .*; known models: .*nanodet/],
    ["a bad --frames spec", ["detect", VIDEO, "--frames", "10-2"], /^perceptd: bad --frames spec "10-2": "10-2": range ends before it starts$/],
    ["a non-numeric --frames spec", ["detect", VIDEO, "--frames", "0-40:x"], /^perceptd: bad --frames spec "0-40:x"/],
    ["a score threshold above 1", ["detect", VIDEO, "--score-threshold", "1.5"], /^perceptd: --score-threshold must be a number in \[0, 1\], got "1\.5"$/],
    ["a score threshold that is not a number", ["detect", VIDEO, "--score-threshold", "high"], /got "high"$/],
    ["an unknown class", ["detect", VIDEO, "--classes", "person,unicorn"], new RegExp(`^perceptd: model "${literal(DEFAULT_MODEL)}" has no class "unicorn"; valid classes: person, `)],
    ["--out that is not .png, .mp4 or .mkv", ["detect", VIDEO, "--out", "x.jpg"], /^perceptd: --out writes a PNG image \(\.png\) or an annotated video \(\.mp4, \.mkv\), got "x\.jpg"$/],
    ["--from-bus without a video --out", ["detect", VIDEO, "--from-bus", "tcp://127.0.0.1:5555", "--out", "x.png"], /^perceptd: --from-bus draws a recording with a daemon's detections: it needs --out NAME\.mp4 or NAME\.mkv$/],
    ["--from-bus with no endpoint", ["detect", VIDEO, "--from-bus", "localhost:5555", "--out", "x.mp4"], /^perceptd: --from-bus must be a bus endpoint, tcp:\/\/host:port or ipc:\/\/path, got "localhost:5555"$/],
    ["--camera without --from-bus", ["detect", VIDEO, "--camera", "front"], /^perceptd: --camera, --bus-timeout and --config go with --from-bus$/],
    ["--out in a missing folder", ["detect", VIDEO, "--out", "/no/such/dir/x.png"], /^perceptd: --out \/no\/such\/dir\/x\.png: folder \/no\/such\/dir does not exist$/],
    ["frames past the end of the video", ["detect", VIDEO, "--frames", "5000"], /^perceptd: --frames "5000" selects no frame of .*vtest\.avi/],
  ];
  it.each(cases)("exits 1 with one clear line for %s", async (_what, args, message) => {
    const r = await perceptd(...args);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.endsWith("\n")).toBe(true);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr.trimEnd()).toMatch(message);
  });

  it("exits 1 naming the file when it is neither an image nor a video", async () => {
    const text = join(dir, "notes.txt");
    await writeFile(text, "not a picture\n".repeat(100));
    const r = await perceptd("detect", text);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^perceptd: ${text}: not a JPEG/PNG image, and GStreamer could not decode it as video: `));
  });

  it("exits 1 naming the file for a truncated PNG", async () => {
    const cut = join(dir, "cut.png");
    await writeFile(cut, (await readFile(png)).subarray(0, 5000));
    const r = await perceptd("detect", cut);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^perceptd: ${cut}: truncated PNG`));
  });

  it("exits 2 for command-line usage errors", async () => {
    const unknown = await perceptd("detect", VIDEO, "--no-such-option");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^perceptd: unknown option '--no-such-option'/);
    const missing = await perceptd("detect");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^perceptd: missing required argument 'input'/);
  });
});

describe("perceptd help", () => {
  it("prints usage for the program", async () => {
    const r = await perceptd("--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: perceptd \[options\] \[command\]/);
    expect(r.stdout).toMatch(/^ {2}detect \[options\] <input>/m);
    expect(r.stdout).toMatch(/^ {2}models/m);
    expect(r.stdout).toMatch(/^ {2}bench/m);
  });

  it("prints usage for detect", async () => {
    const r = await perceptd("detect", "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: perceptd detect \[options\] <input>/);
    for (const flag of ["--model", "--json", "--out", "--score-threshold", "--classes", "--frames", "--manifest"]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain("last selected frame");
  });

  it("prints the package version", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
    const r = await perceptd("--version");
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});

describe("parseFrameSpec", () => {
  const pick = (spec: string, upTo = 60): number[] => {
    const s = parseFrameSpec(spec);
    return Array.from({ length: upTo + 1 }, (_, i) => i).filter((i) => s.has(i));
  };

  it("reads single frames, lists, ranges, steps and open ranges", () => {
    expect(pick("5")).toEqual([5]);
    expect(pick("0,12,30")).toEqual([0, 12, 30]);
    expect(pick("0-40:10")).toEqual([0, 10, 20, 30, 40]);
    expect(pick("3-7")).toEqual([3, 4, 5, 6, 7]);
    expect(pick("50-")).toEqual([50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60]);
    expect(pick("0-:25")).toEqual([0, 25, 50]);
    expect(pick(" 1 , 2-4:2 ")).toEqual([1, 2, 4]);
    expect(parseFrameSpec("0-40:10,100").last).toBe(100);
    expect(parseFrameSpec("0,10-").last).toBe(Number.POSITIVE_INFINITY);
  });

  it("rejects malformed specs, quoting them", () => {
    for (const bad of ["", "a", "-5", "5-3", "0-10:0", "1,,2", "1.5", "0-10:2:3", "0:5"]) {
      expect(() => parseFrameSpec(bad), bad).toThrow(`bad --frames spec ${JSON.stringify(bad)}`);
    }
  });
});
