// What the order of the baked preprocessing costs. src/model/preprocess.ts bakes
// Cast -> Sub -> Mul -> Gather(axis 3) -> Transpose into every -u8 model: the arithmetic runs
// on float NHWC, where ONNX Runtime broadcasts a 3-element vector over the innermost axis
// (slow), and the channel gather and the transpose move four times the bytes they would move
// as uint8. This times each model as shipped against the same model with the chain reordered
// (Transpose and Gather on uint8, then Cast, then Sub and Mul on NCHW planes: the same
// numbers), side by side in one run, ONNX Runtime CPU, 1 and 2 threads.
//
//   npx tsx scripts/preprocess-order.ts [--runs 30] nanodet-u8 nanodet-int8-cpu [file.onnx ...]
import { parseArgs } from "node:util";
import { formatFixed, formatRatio, markdownTable } from "../src/cli/bench/table.ts";
import { resolveModelArg } from "../src/model/eval/model-arg.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, readVerifiedModel } from "../src/infer/manifest.ts";
import { attr, topoSort, type OnnxGraph } from "../src/model/onnx/ir.ts";
import { decodeModel } from "../src/model/onnx/serialize.ts";
import { floatTensor, int64Tensor } from "../src/model/onnx/tensor.ts";
import { measureSideBySide } from "../src/model/prune/latency.ts";
import { int8Features, machineInfo } from "../src/util/machine-info.ts";

/** The baked chain of a NCHW BGR model, reordered; throws when the graph does not have that chain. */
export function reorderPreprocessing(src: OnnxGraph): OnnxGraph {
  const chain = src.nodes.filter((n) => n.name.startsWith("preprocess/"));
  const ops = chain.map((n) => n.opType).join(",");
  if (ops !== "Cast,Sub,Mul,Gather,Transpose") throw new Error(`graph ${src.name}: baked preprocessing is ${ops || "absent"}, expected Cast,Sub,Mul,Gather,Transpose`);
  const mean = src.initializers.get("preprocess/mean")!.data as Float32Array;
  const inv = src.initializers.get("preprocess/inv_std")!.data as Float32Array;
  const index = Array.from(src.initializers.get("preprocess/bgr_index")!.data as BigInt64Array, Number);
  const g: OnnxGraph = { ...src, nodes: src.nodes.filter((n) => !chain.includes(n)), initializers: new Map(src.initializers) };
  for (const k of ["preprocess/mean", "preprocess/inv_std", "preprocess/bgr_index"]) g.initializers.delete(k);
  // after the gather, channel k holds colour index[k]: its mean and scale follow it
  g.initializers.set("preprocess/mean", floatTensor([1, 3, 1, 1], index.map((c) => mean[c])));
  g.initializers.set("preprocess/inv_std", floatTensor([1, 3, 1, 1], index.map((c) => inv[c])));
  g.initializers.set("preprocess/bgr_index", int64Tensor([3], index));
  const out = chain[chain.length - 1].outputs[0];
  g.nodes.unshift(
    { name: "preprocess/Transpose_0", opType: "Transpose", inputs: [src.inputs[0].name], outputs: ["preprocess/transpose_0"], attrs: { perm: attr.ints([0, 3, 1, 2]) } },
    { name: "preprocess/Gather_1", opType: "Gather", inputs: ["preprocess/transpose_0", "preprocess/bgr_index"], outputs: ["preprocess/gather_1"], attrs: { axis: attr.int(1) } },
    { name: "preprocess/Cast_2", opType: "Cast", inputs: ["preprocess/gather_1"], outputs: ["preprocess/cast_2"], attrs: { to: attr.int(1) } },
    { name: "preprocess/Sub_3", opType: "Sub", inputs: ["preprocess/cast_2", "preprocess/mean"], outputs: ["preprocess/sub_3"], attrs: {} },
    { name: "preprocess/Mul_4", opType: "Mul", inputs: ["preprocess/sub_3", "preprocess/inv_std"], outputs: [out], attrs: {} },
  );
  topoSort(g);
  return g;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { runs: { type: "string", default: "30" } }, allowPositionals: true });
  const names = positionals.length > 0 ? positionals : ["nanodet-u8", "nanodet-int8-cpu"];
  const manifest = await readManifest(DEFAULT_MANIFEST_PATH);
  const models: { label: string; graph: OnnxGraph }[] = [];
  for (const n of names) {
    const m = await resolveModelArg(n, manifest, DEFAULT_MANIFEST_PATH);
    const graph = decodeModel(await readVerifiedModel(m), m.path);
    models.push({ label: m.name, graph }, { label: `${m.name} (reordered)`, graph: reorderPreprocessing(graph) });
  }
  const runs = Number(values.runs);
  const info = machineInfo();
  const rows: string[][] = models.map((m) => [m.label]);
  for (const threads of [1, 2]) {
    const r = await measureSideBySide(models, { runs, threads, onProgress: (d, t) => process.stderr.write(`\r${threads} thread(s) ${d}/${t}`) });
    process.stderr.write("\n");
    r.rows.forEach((row, i) => rows[i].push(`${formatFixed(row.stats.p50Ms, 1)} ms`, formatRatio(i % 2 === 1 ? r.rows[i - 1].stats.p50Ms / row.stats.p50Ms : 1)));
  }
  process.stdout.write(
    `${info.cpu}, ${info.availableParallelism} cores usable; ${int8Features().summary}; ONNX Runtime CPU, every graph interleaved, ${runs} runs, p50\n\n` +
      markdownTable(
        [{ header: "model" }, { header: "1 thread", align: "right" }, { header: "reordered gain", align: "right" }, { header: "2 threads", align: "right" }, { header: "reordered gain", align: "right" }],
        rows,
      ) +
      "\n",
  );
}

if (process.argv[1]?.endsWith("preprocess-order.ts")) {
  main().catch((e: unknown) => {
    process.stderr.write(`preprocess-order: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
