// `perceptd data` as a user runs it: list the sets, build a cache, refuse test data for calibration.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writePng } from "../../src/ingest/image-file.ts";
import { perceptd } from "./run-cli.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-data-cli-"));
  await writePng(join(dir, "p.png"), { width: 30, height: 20, data: new Uint8Array(30 * 20 * 3).fill(90) });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("perceptd data", () => {
  it("lists the built-in sets with their purpose", async () => {
    const r = await perceptd("data", "list");
    expect(r.code, r.stderr).toBe(0);
    for (const line of [/^corpus:calibration \(calibration, \d+ source\(s\)\)/m, /^corpus:validation \(validation/m, /^corpus:out-of-scene \(test/m, /^vtest:held-out \(test/m]) {
      expect(r.stdout).toMatch(line);
    }
  });

  it("builds a cache for a model's input and says where, how many frames and how big", async () => {
    const out = join(dir, "cache");
    const r = await perceptd("data", "build", join(dir, "p.png"), "--model", "centernet-u8", "--augment", "2", "--out", out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(out);
    expect(r.stdout).toMatch(/3 frames of 512x512 \(stretch\), 2\.4 MB, from 1 source\(s\); built in/);
    const again = await perceptd("data", "build", join(dir, "p.png"), "--model", "centernet-u8", "--augment", "2", "--out", out);
    expect(again.stdout).toMatch(/already up to date/);
  }, 60_000);

  it("refuses out-of-scene data asked for calibration", async () => {
    const r = await perceptd("data", "build", "corpus:out-of-scene", "--purpose", "calibration", "--out", join(dir, "never"));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refused for calibration: this file is in the corpus:out-of-scene set/);
  });
});
