// Data specs, the loader's errors, the out-of-scene guard and the frame cache, on real files:
// vtest.avi and pictures made here, plus the built-in sets' definitions.
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writePng } from "../../../src/ingest/image-file.ts";
import { augment, describeAugment, planAugment } from "../../../src/model/data/augment.ts";
import { buildFrameCache, openFrameCacheFor, prepareFrames } from "../../../src/model/data/build.ts";
import { readDatasets, localPath } from "../../../src/model/data/datasets.ts";
import { FrameCache } from "../../../src/model/data/frame-cache.ts";
import { checkDataPurpose } from "../../../src/model/data/guard.ts";
import { parseFrameRange, resolveDataSpecs } from "../../../src/model/data/spec.ts";

const VTEST = resolve(".cache/fixtures/vtest.avi");
const HAVE_VTEST = existsSync(VTEST);
const TARGET = { width: 96, height: 64, resize: "stretch" } as const;
const datasets = readDatasets();

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-data-"));
  await mkdir(join(dir, "pics", "sub"), { recursive: true });
  const pic = (w: number, h: number, v: number) => ({ width: w, height: h, data: new Uint8Array(w * h * 3).map((_, i) => (i * v) % 251) });
  await writePng(join(dir, "pics", "a.png"), pic(40, 30, 7));
  await writePng(join(dir, "pics", "sub", "b.png"), pic(31, 17, 3));
  await writeFile(join(dir, "pics", "notes.txt"), "not a picture");
  await mkdir(join(dir, "empty"));
  await writeFile(join(dir, "broken.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("data specs", () => {
  it("frame ranges: first-last, a step, an open end; bad ones say what is expected", () => {
    expect(parseFrameRange("0-197", "x")).toEqual({ first: 0, last: 197, step: 1 });
    expect(parseFrameRange("0-197:2", "x")).toEqual({ first: 0, last: 197, step: 2 });
    expect(parseFrameRange("198-", "x")).toEqual({ first: 198, last: null, step: 1 });
    expect(() => parseFrameRange("9-3", "x")).toThrow(/ends before it starts/);
    expect(() => parseFrameRange("a-b", "x")).toThrow(/FIRST-LAST/);
  });

  it("a folder gives its pictures in name order, sub-folders included, other files left out", async () => {
    const sel = await resolveDataSpecs([join(dir, "pics")]);
    expect(sel.sources.map((s) => s.path)).toEqual([join(dir, "pics", "a.png"), join(dir, "pics", "sub", "b.png")]);
  });

  it("a missing folder or file is named", async () => {
    await expect(resolveDataSpecs([join(dir, "nowhere/")])).rejects.toThrow(/nowhere.* does not exist/);
  });

  it("an empty folder is an error naming it, not an empty set", async () => {
    await expect(resolveDataSpecs([join(dir, "empty")])).rejects.toThrow(new RegExp(`folder ${join(dir, "empty")} holds no pictures`));
  });

  it("an unknown built-in set lists the real ones", async () => {
    await expect(resolveDataSpecs(["corpus:everything"])).rejects.toThrow(/corpus:calibration, corpus:validation, corpus:out-of-scene/);
  });

  it("an unreadable picture fails when loaded, naming the file", async () => {
    const sel = await resolveDataSpecs([join(dir, "broken.jpg")]);
    await expect(buildFrameCache(sel, TARGET, { dir: join(dir, "cache-broken") })).rejects.toThrow(/broken\.jpg: truncated or corrupt JPEG/);
  });

  it.skipIf(!HAVE_VTEST)("a frame range past the end of a video names the file and its length", async () => {
    const sel = await resolveDataSpecs([`${VTEST}:790-800`]);
    await expect(buildFrameCache(sel, TARGET, { dir: join(dir, "cache-past") })).rejects.toThrow(/vtest\.avi: frame range 790-800 goes past the end of the video: it has 795 frames \(0-794\)/);
  });
});

describe("the out-of-scene guard", () => {
  it("refuses an out-of-scene file for calibration and training, naming it, even copied and renamed", async () => {
    const ref = datasets.sets["corpus:out-of-scene"].items.find((i) => i.path.endsWith("quickie-jpeg-example.jpg"))!;
    const original = localPath(ref);
    if (!existsSync(original)) return expect.fail(`${original} is missing: run scripts/setup.sh (it fetches the data sets)`);
    const copy = join(dir, "my-car.jpg");
    await copyFile(original, copy);
    const sel = await resolveDataSpecs([copy]);
    for (const purpose of ["calibration", "training", "validation"] as const) {
      expect(() => checkDataPurpose(sel, purpose, datasets)).toThrow(new RegExp(`my-car\\.jpg: refused for ${purpose}: this file is in the corpus:out-of-scene set \\(gimp-help-en/tutorials/quickie-jpeg-example\\.jpg`));
    }
    expect(() => checkDataPurpose(sel, "evaluation", datasets)).not.toThrow();
  });

  it("refuses validation files for calibration, not for validation", async () => {
    const ref = datasets.sets["corpus:validation"].items[0];
    const sel = await resolveDataSpecs([localPath(ref)]);
    expect(() => checkDataPurpose(sel, "calibration", datasets)).toThrow(/in the corpus:validation set/);
    expect(() => checkDataPurpose(sel, "validation", datasets)).not.toThrow();
  });

  it.skipIf(!HAVE_VTEST)("vtest.avi: the calibration quarter is allowed, a held-out frame is refused", async () => {
    expect(() => checkDataPurpose({ name: "x", specs: [], sources: [] }, "calibration", datasets)).not.toThrow();
    const ok = { name: "x", specs: [], sources: [{ kind: "video" as const, path: VTEST, sha256: datasets.sets["vtest:held-out"].items[0].sha256, frames: parseFrameRange("0-197:3", "x"), augment: 0 }] };
    expect(() => checkDataPurpose(ok, "calibration", datasets)).not.toThrow();
    const all = await resolveDataSpecs([VTEST]);
    expect(() => checkDataPurpose(all, "calibration", datasets)).toThrow(/vtest\.avi: refused for calibration: frames 198-794 of this video are in the vtest:held-out set .* every frame includes frame 198/);
    const prepared = prepareFrames([`${VTEST}:190-200`], TARGET, { purpose: "training", dir: join(dir, "never") });
    await expect(prepared).rejects.toThrow(/range 190-200 includes frame 198/);
  });

  it("a frame cache folder built from out-of-scene data is refused for training when opened, naming the file", async () => {
    const ref = datasets.sets["corpus:out-of-scene"].items.find((i) => i.path.endsWith("pexels_double_decker_bus.jpg"))!;
    const sel = await resolveDataSpecs([localPath(ref)]);
    const out = join(dir, "cache-oos");
    await buildFrameCache(sel, TARGET, { dir: out });
    await expect(openFrameCacheFor(out, "training")).rejects.toThrow(/frame cache .*cache-oos .*pexels_double_decker_bus\.jpg: refused for training: this file is in the corpus:out-of-scene set/);
    const ok = await openFrameCacheFor(out, "evaluation");
    expect(ok.index.count).toBe(1);
    await ok.close();
  });

  it("every out-of-scene and validation file is refused for calibration (the definitions themselves)", () => {
    for (const name of ["corpus:out-of-scene", "corpus:validation"]) {
      for (const ref of datasets.sets[name].items) {
        const sel = { name: "x", specs: [], sources: [{ kind: "image" as const, path: ref.path, sha256: ref.sha256, frames: null, augment: 0 }] };
        expect(() => checkDataPurpose(sel, "calibration", datasets), `${name}: ${ref.path}`).toThrow(/refused for calibration/);
      }
    }
    const calibration = new Set(datasets.sets["corpus:calibration"].items.map((i) => i.sha256));
    for (const ref of datasets.sets["corpus:out-of-scene"].items) expect(calibration.has(ref.sha256), `${ref.path} is in calibration`).toBe(false);
  });
});

describe("augmentation", () => {
  it("is deterministic per seed and records what it did", () => {
    const img = { width: 50, height: 40, data: new Uint8Array(50 * 40 * 3).map((_, i) => (i * 13) % 256) };
    for (const seed of [1, 2, 3, 42, 99]) {
      const plan = planAugment(seed);
      expect(planAugment(seed)).toEqual(plan);
      const a = augment(img, plan, seed);
      const b = augment(img, plan, seed);
      expect(Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)), `seed ${seed}: ${describeAugment(plan)}`).toBe(0);
      if (plan.crop !== null) expect(a.width).toBeLessThan(img.width);
    }
    const kinds = new Set(Array.from({ length: 200 }, (_, s) => describeAugment(planAugment(s)).split(",").map((p) => p.replace(/\(.*/, ""))).flat());
    for (const op of ["flip", "crop", "color", "gray", "blur", "noise", "jpeg"]) expect(kinds.has(op), `some seed draws ${op}`).toBe(true);
  });
});

describe.skipIf(!HAVE_VTEST)("the frame cache", () => {
  it("holds the daemon-fitted frames and augmented copies, with an index a reader (and numpy) can use", async () => {
    const sel = await resolveDataSpecs([`${VTEST}:0-5:5`, join(dir, "pics", "a.png")], { augment: 1 });
    const out = join(dir, "cache");
    const built = await buildFrameCache(sel, TARGET, { dir: out });
    expect(built.built).toBe(true);
    // 2 video frames + 2 copies, 1 picture + 1 copy
    expect(built.index.count).toBe(6);
    expect(built.index.items.map((i) => [i.source, i.frame, i.augment === null])).toEqual([
      [0, 0, true],
      [0, 5, true],
      [0, 0, false],
      [0, 5, false],
      [1, null, true],
      [1, null, false],
    ]);
    expect(built.index.items[0]).toMatchObject({ sourceWidth: 768, sourceHeight: 576 });
    const again = await buildFrameCache(sel, TARGET, { dir: out });
    expect(again.built, "an up-to-date cache is reused").toBe(false);
    const rebuilt = await buildFrameCache(sel, TARGET, { dir: join(dir, "cache2"), force: true });
    expect(rebuilt.index.sha256, "a rebuild gives the same bytes").toBe(built.index.sha256);
    const cache = await FrameCache.open(out, { verify: true });
    try {
      const bytes = await readFile(join(out, "frames.u8"));
      expect(bytes.length).toBe(6 * 96 * 64 * 3);
      const third = await cache.frame(2);
      expect(Buffer.compare(Buffer.from(third), bytes.subarray(2 * 96 * 64 * 3, 3 * 96 * 64 * 3))).toBe(0);
      await expect(cache.frame(6)).rejects.toThrow(/no frame 6 \(it has 6\)/);
    } finally {
      await cache.close();
    }
  });
});

describe("fetching the data sets", () => {
  it("a file whose checksum does not match names the package and the file (from the cached npm tarball, no network)", async () => {
    const key = "@vladmandic/human";
    const pkg = datasets.packages[key];
    if (pkg.kind !== "npm") return expect.fail(`${key} is an npm package in models/datasets.json`);
    const tarballs = resolve(".cache/datasets/.tarballs");
    if (!existsSync(join(tarballs, `vladmandic-human-${pkg.version}.tgz`))) return expect.fail("run scripts/setup.sh first (it fetches the data sets)");
    const { fetchDatasets } = await import("../../../src/model/data/fetch.ts");
    const cacheDir = join(dir, "datasets");
    await mkdir(cacheDir, { recursive: true });
    // the real tarball, reached through the same .tarballs folder
    const { symlink } = await import("node:fs/promises");
    await symlink(tarballs, join(cacheDir, ".tarballs"));
    const wrong = "0".repeat(64);
    const fake = { ...datasets, sets: { only: { purpose: "calibration" as const, description: "", items: [{ package: key, path: "assets/samples.jpg", sha256: wrong }] } }, reserved: [] };
    await expect(fetchDatasets({ datasets: fake, cacheDir })).rejects.toThrow(new RegExp(`package @vladmandic/human: assets/samples\\.jpg has sha256 [0-9a-f]{64}, models/datasets\\.json pins ${wrong}`));
    const missing = { ...fake, sets: { only: { ...fake.sets.only, items: [{ package: key, path: "assets/no-such.jpg", sha256: wrong }] } } };
    await expect(fetchDatasets({ datasets: missing, cacheDir })).rejects.toThrow(/package @vladmandic\/human: @vladmandic\/human@3\.3\.6 has no package\/assets\/no-such\.jpg/);
  });
  it("a package pinned to another architecture comes from Debian's archive when apt cannot get it, checked by its sha256", async () => {
    const { DEBIAN_ARCHIVE, debSpec, fetchDatasets } = await import("../../../src/model/data/fetch.ts");
    // hostname is 10 kB; its arm64 build is foreign on an amd64 host, whose apt has no lists for it
    const key = "hostname-arm64";
    const pkg = {
      kind: "deb" as const,
      name: "hostname",
      version: "3.23+nmu1",
      sha256: "bca52b7f2e41ce01e28036be755442f04b6795885c361ed4f8d28648622c399e",
      arch: "arm64",
      pool: "pool/main/h/hostname/hostname_3.23+nmu1_arm64.deb",
      root: "usr/share/doc/hostname",
      licence: "GPL-2+",
    };
    expect(debSpec(pkg), "apt-get download is asked for the pinned architecture").toBe("hostname:arm64=3.23+nmu1");
    expect(DEBIAN_ARCHIVE).toBe("http://deb.debian.org/debian");
    const cacheDir = join(dir, "datasets-arch");
    const item = { package: key, path: "copyright", sha256: "94189fc5a9a7b7224d96e1a0cfdfe9be0df2018b04bf21d591627ab96b30cad1" };
    const defs = { ...datasets, packages: { [key]: pkg }, sets: { only: { purpose: "calibration" as const, description: "", items: [item] } }, reserved: [] };
    const got = await fetchDatasets({ datasets: defs, cacheDir });
    expect(got.fetched).toEqual([key]);
    expect(await readFile(localPath(item, cacheDir), "utf8")).toMatch(/^Format: /);
    const wrongDeb = { ...defs, packages: { [key]: { ...pkg, sha256: "0".repeat(64) } } };
    await expect(fetchDatasets({ datasets: wrongDeb, cacheDir: join(dir, "datasets-arch-2") })).rejects.toThrow(
      /package hostname-arm64: hostname_3\.23\+nmu1_arm64\.deb has sha256 bca52b7f[0-9a-f]+, models\/datasets\.json pins 0{64}/,
    );
    if (process.arch === "arm64") return; // there apt itself gets the arm64 package and never asks the archive
    const wrongPool = { ...defs, packages: { [key]: { ...pkg, pool: "pool/main/h/hostname/no-such_arm64.deb" } } };
    await expect(fetchDatasets({ datasets: wrongPool, cacheDir: join(dir, "datasets-arch-3") })).rejects.toThrow(
      /package hostname-arm64: apt-get download failed \(.+\), and so did http:\/\/deb\.debian\.org\/debian\/pool\/main\/h\/hostname\/no-such_arm64\.deb: HTTP 404/s,
    );
  });

  it("a package pinned to one architecture must name its .deb in the archive", async () => {
    const raw = JSON.parse(await readFile("models/datasets.json", "utf8")) as { packages: Record<string, Record<string, unknown>> };
    delete raw.packages.kphotoalbum.pool;
    const path = join(dir, "datasets-no-pool.json");
    await writeFile(path, JSON.stringify(raw));
    expect(() => readDatasets(path)).toThrow(/packages\.kphotoalbum.*arch and pool go together/s);
  });
});
