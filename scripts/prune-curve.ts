// The pruning curve: nanodet pruned at a few ratios with the shipped variants' recipe
// (src/model/pruned-variants.ts: reconstruction-aware selection, kept counts in multiples of
// 16, calibration on corpus:calibration + vtest:calibration), each point after
//   none       pruning alone (with the bias compensation of removed channels),
//   LS         plain least-squares recovery (a small ridge toward zero),
//   ridge      least squares regularised toward the original weights, strength on corpus:validation,
//   fine-tuned distillation from nanodet-u8 (the variant built by `perceptd models build-pruned`, where one has this ratio),
// against the dense model: latency side by side in this one run (ONNX Runtime CPU; recovery and
// fine-tuning change weights, not shapes, so the rows of a ratio share one measurement),
// person AP@0.5 on vtest:held-out and recall of the dense model's confident objects on
// corpus:out-of-scene, every frame of both.
//
//   npx tsx scripts/prune-curve.ts [--ratios 0.25,0.4] [--runs 30] [--threads 2] [--out docs/pruning-curve.md] [--graphs-only] [--dir D] [--no-build]
//
// Graphs go to --dir (default .cache/prune-curve/) and are reused when there (delete them to
// rebuild); a fine-tuned graph is looked for in models/, .cache/build-pruned/ and --dir; the ridge
// point of a shipped variant is the build's own intermediate (.cache/build-pruned/<name>-recovered.onnx)
// when `perceptd models build-pruned` left it. --graphs-only builds the missing graphs and stops;
// --no-build leaves the points without a graph out instead of building them.
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatFixed, markdownTable } from "../src/cli/bench/table.ts";
import { BAR } from "../src/model/eval/bar.ts";
import { resolveModelArg } from "../src/model/eval/model-arg.ts";
import { evaluateOnSets, type SetAgreement } from "../src/model/eval/set-agreement.ts";
import { DEFAULT_MANIFEST_PATH, MODELS_DIR, readManifest, readVerifiedModel, type ResolvedModel } from "../src/infer/manifest.ts";
import { decodeModel } from "../src/model/onnx/serialize.ts";
import { graphStats } from "../src/model/onnx/shape-inference.ts";
import { measureSideBySide } from "../src/model/prune/latency.ts";
import { runPrune } from "../src/model/prune/pipeline.ts";
import { machine } from "../src/model/prune/report.ts";
import { PRUNED_VARIANTS, type PrunedVariantSpec } from "../src/model/pruned-variants.ts";
import { writeFileAtomic } from "../src/util/atomic-write.ts";

const ROOT = resolve(MODELS_DIR, "..");
const RECOVERIES = ["none", "LS", "ridge", "fine-tuned"] as const;
type Recovery = (typeof RECOVERIES)[number];

const { values: args } = parseArgs({
  options: {
    ratios: { type: "string", default: "0.25,0.4" },
    runs: { type: "string", default: "30" },
    threads: { type: "string" },
    out: { type: "string", default: "docs/pruning-curve.md" },
    "graphs-only": { type: "boolean", default: false },
    dir: { type: "string", default: join(ROOT, ".cache", "prune-curve") },
    "no-build": { type: "boolean", default: false },
  },
});
const DIR = resolve(args.dir);
const ratios = args.ratios.split(",").map(Number);
if (ratios.some((r) => !(r > 0 && r < 1))) throw new Error(`--ratios: expected fractions in (0, 1), got ${args.ratios}`);
const runs = Number(args.runs);
const threads = args.threads === undefined ? undefined : Number(args.threads);
const log = (m: string): void => void process.stderr.write(`prune-curve: ${m}\n`);

/** The shipped recipe at this ratio: the variant of that ratio, else p40's recipe with the ratio changed. */
function recipeFor(ratio: number): { spec: PrunedVariantSpec; shipped: boolean } {
  const shipped = PRUNED_VARIANTS.find((s) => s.ratio === ratio);
  if (shipped) return { spec: shipped, shipped: true };
  const base = PRUNED_VARIANTS.find((s) => s.name === "nanodet-p40")!;
  return { spec: { ...base, name: `nanodet-r${Math.round(ratio * 1000)}`, ratio }, shipped: false };
}

async function graphFor(spec: PrunedVariantSpec, shipped: boolean, recovery: Recovery): Promise<string | null> {
  const tag = `r${Math.round(spec.ratio * 1000)}`;
  if (recovery === "fine-tuned") {
    if (!shipped) return null;
    // in models/ when it shipped; a build that did not ship leaves it in .cache/build-pruned/
    const kept = [join(MODELS_DIR, `${spec.name}.onnx`), join(ROOT, ".cache", "build-pruned", `${spec.name}.onnx`), join(DIR, `${spec.name}.onnx`)].find((f) => existsSync(f));
    return kept ?? null;
  }
  if (recovery === "ridge" && shipped) {
    const built = join(ROOT, ".cache", "build-pruned", `${spec.name}-recovered.onnx`);
    if (existsSync(built)) return built;
  }
  const out = join(DIR, `nanodet-${tag}-${recovery.toLowerCase()}.onnx`);
  if (existsSync(out)) return out;
  if (args["no-build"]) {
    log(`${tag} ${recovery}: no graph in ${DIR}; left out (--no-build)`);
    return null;
  }
  log(`${tag} ${recovery}: pruning`);
  await runPrune({
    model: spec.parent,
    out,
    method: "structured",
    ratio: spec.ratio,
    importance: spec.importance,
    round: spec.round,
    recover: recovery !== "none",
    recoverLayers: recovery !== "none" ? spec.recoverLayers : undefined,
    ridge: recovery === "ridge" ? spec.ridge : undefined,
    validation: recovery === "ridge" ? spec.validation : undefined,
    calibration: spec.calibration,
    calibrationFrames: spec.calibrationFrames,
    evalFrames: 0,
    latencyRuns: 3,
    threads,
    command: `scripts/prune-curve.ts (${tag} ${recovery})`,
    onProgress: (t, live) => {
      if (!live) log(`${tag} ${recovery}: ${t}`);
    },
  });
  return out;
}

interface Point {
  ratio: number;
  recovery: Recovery;
  file: string;
  gflops: number;
  params: number;
}

async function main(): Promise<void> {
  await mkdir(DIR, { recursive: true });
  const points: Point[] = [];
  for (const ratio of ratios) {
    const { spec, shipped } = recipeFor(ratio);
    for (const recovery of RECOVERIES) {
      const file = await graphFor(spec, shipped, recovery);
      if (file === null) continue;
      const stats = graphStats(decodeModel(new Uint8Array(await readFile(file)), file));
      points.push({ ratio, recovery, file, gflops: (2 * stats.macs) / 1e9, params: stats.parameters / 1e6 });
    }
  }
  if (args["graphs-only"]) return;

  const manifestPath = DEFAULT_MANIFEST_PATH;
  const manifest = await readManifest(manifestPath);
  const dense = await resolveModelArg("nanodet", manifest, manifestPath);
  const denseGraph = decodeModel(await readVerifiedModel(dense), dense.path);
  const denseStats = graphStats(denseGraph);
  // one graph per ratio for latency: the rows of a ratio have the same shapes
  const timed = ratios.map((r) => points.find((p) => p.ratio === r)!);
  log(`latency: dense and ${timed.length} pruned graph(s) side by side, ${runs} runs`);
  const graphs = [{ label: "dense", graph: denseGraph }];
  for (const p of timed) graphs.push({ label: `r${p.ratio}`, graph: decodeModel(new Uint8Array(await readFile(p.file)), p.file) });
  const lat = await measureSideBySide(graphs, { runs, threads });
  const speedup = new Map(timed.map((p, i) => [p.ratio, lat.rows[i + 1].speedup]));

  const models: ResolvedModel[] = [];
  for (const p of points) models.push(await resolveModelArg(p.file, manifest, manifestPath));
  log(`agreement: ${models.length} graphs on ${BAR.heldOutSet} and ${BAR.outOfSceneSet}, every frame`);
  let last = 0;
  const sets = await evaluateOnSets({
    models,
    reference: dense,
    sets: [BAR.heldOutSet, BAR.outOfSceneSet],
    session: { executionProviders: ["cpu"], intraOpThreads: threads },
    onProgress: (e) => {
      if (Date.now() - last > 30_000) {
        last = Date.now();
        log(`agreement: ${e.set}, ${e.model}: ${e.done}/${e.total}`);
      }
    },
  });
  const of = (p: Point, set: string): SetAgreement => sets.find((s) => s.model === models[points.indexOf(p)].name && s.set === set)!;

  const rows = points.map((p) => {
    const held = of(p, BAR.heldOutSet);
    const oos = of(p, BAR.outOfSceneSet);
    const ap = held.perClass.find((c) => c.label === "person")?.ap50 ?? NaN;
    const s = speedup.get(p.ratio)!;
    const holds = s >= BAR.speedup && ap >= BAR.heldOutPersonAp50 && oos.recall >= BAR.outOfSceneRecall && oos.collapsed.length === 0;
    return [
      formatFixed(p.ratio, 3),
      p.recovery,
      formatFixed(p.gflops, 2),
      formatFixed(p.params, 2),
      `${formatFixed(s, 2)}x`,
      formatFixed(ap, 3),
      formatFixed(held.map50, 3),
      `${formatFixed(oos.recall, 3)} (${oos.found}/${oos.confident})`,
      oos.collapsed.length === 0 ? "none" : oos.collapsed.join(", "),
      holds ? "yes" : "no",
    ];
  });
  const m = machine();
  const md = [
    "# Pruning curve",
    "",
    "NanoDet pruned with the shipped variants' recipe (`src/model/pruned-variants.ts`: reconstruction-aware channel selection, kept " +
      "counts in multiples of 16, every Conv downstream of a pruned one refitted, calibration on `corpus:calibration` + `vtest:calibration`), " +
      "after each recovery step, against the dense `nanodet`:",
    "",
    "- **none**: pruning alone (the mean of each removed channel folded into the next layer's bias);",
    "- **LS**: least-squares refit of the downstream Convs (a small ridge toward zero, 1e-3 of the mean diagonal);",
    "- **ridge**: the refit regularised toward the original weights of the kept channels, strength picked per layer on `corpus:validation`;",
    "- **fine-tuned**: the ridge point after distillation from `nanodet-u8` on the calibration data: the graph `perceptd models build-pruned` " +
      "built for the recipe of that ratio (`src/model/pruned-variants.ts`), which ships only if it holds the bar's out-of-scene line.",
    "",
    "Produced by:",
    "",
    "```",
    `npx tsx scripts/prune-curve.ts --ratios ${args.ratios} --runs ${runs}${threads ? ` --threads ${threads}` : ""}`,
    "```",
    "",
    `- When: ${new Date().toISOString()}; machine: ${m.cpu}, ${m.availableParallelism} usable core(s), ${m.platform} (shared with other work and loaded while this ran: ` +
      "compare the speed-ups within this table, not with other runs).",
    `- Latency: ONNX Runtime CPU, ${lat.threads} intra-op thread(s), one session per graph, ${lat.runs} timed runs, all graphs interleaved in this one run; p50. ` +
      `Dense p50 ${formatFixed(lat.rows[0].stats.p50Ms, 1)} ms. The rows of one ratio share one measurement (same shapes).`,
    `- Agreement: the dense model's detections are the reference. Person AP@0.5 and mAP@0.5 (all classes the reference found) on every frame of ${BAR.heldOutSet} ` +
      `(vtest.avi after its calibration quarter); recall on every picture of ${BAR.outOfSceneSet} of the reference's objects scoring >= 0.5 (same class, IoU >= 0.5, model score >= 0.3), ` +
      "and the classes with >= 5 such objects found under 0.8 (collapsed).",
    `- The bar (issue 22): speed-up >= ${BAR.speedup}x, held-out person AP@0.5 >= ${BAR.heldOutPersonAp50}, out-of-scene recall >= ${BAR.outOfSceneRecall} with no class collapse.`,
    `- Dense: ${formatFixed((2 * denseStats.macs) / 1e9, 2)} GFLOPs, ${formatFixed(denseStats.parameters / 1e6, 2)} M parameters.`,
    "",
    markdownTable(
      [
        { header: "ratio", align: "right" },
        { header: "recovery" },
        { header: "GFLOPs", align: "right" },
        { header: "params (M)", align: "right" },
        { header: "speed-up", align: "right" },
        { header: "held-out person AP@0.5", align: "right" },
        { header: "held-out mAP@0.5", align: "right" },
        { header: "out-of-scene recall", align: "right" },
        { header: "collapsed classes" },
        { header: "holds bar" },
      ],
      rows,
    ),
    "",
    `Graphs of this run: ${points.map((p) => `\`${relative(ROOT, p.file)}\``).join(", ")} ` +
      "(e.g. `perceptd eval --model <file> --reference nanodet`).",
    "",
  ].join("\n");
  await writeFileAtomic(resolve(args.out), md);
  log(`wrote ${args.out}`);
}

await main();
