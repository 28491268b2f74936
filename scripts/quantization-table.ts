// The quantization table: dense FP32, dense INT8, each pruned FP32 and its INT8 -> latency
// side by side in one run (ONNX Runtime CPU, 1 and 2 threads, every model interleaved run by
// run), file size, and agreement with the dense model per set (vtest:held-out and
// corpus:out-of-scene, every frame, per class), with the CPU's int8 features printed beside
// every INT8 figure, and the issue's bar judged for each INT8 variant:
//   - at least 2.5x faster than the dense FP32 model and 1.3x faster than its own FP32 parent;
//   - held-out person AP@0.5 >= 0.92; out-of-scene recall >= 0.90, no class collapse.
//
//   npx tsx scripts/quantization-table.ts [--models a,b,...] [--runs 30] [--out docs/quantization-table.md] [--json file]
//       [--svg docs/quantization-curve.svg]
//
// --svg draws the curve: speed-up against dense FP32 (2 threads) across, held-out person
// AP@0.5 up, FP32 models as circles, INT8 as squares, each INT8 joined to its FP32 parent.
//
// Default models: nanodet-u8 and every manifest model with an INT8 descendant, plus those
// descendants; any ONNX file perceptd can run (an INT8 build under .cache/) may be named too.
import { parseArgs } from "node:util";
import { formatFixed, formatRatio, markdownTable } from "../src/cli/bench/table.ts";
import { commandLineOf } from "../src/cli/bench/model-bench.ts";
import { AGREEMENT_CLASSES } from "../src/model/eval/agreement.ts";
import { BAR, judgeBar } from "../src/model/eval/bar.ts";
import { resolveModelArg } from "../src/model/eval/model-arg.ts";
import { evaluateOnSets, type SetAgreement } from "../src/model/eval/set-agreement.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, readVerifiedModel, type ResolvedModel } from "../src/infer/manifest.ts";
import { decodeModel } from "../src/model/onnx/serialize.ts";
import { findQuantizeParent } from "../src/model/quantize/source.ts";
import { measureSideBySide, type LatencyResult } from "../src/model/prune/latency.ts";
import { writeFileAtomic } from "../src/util/atomic-write.ts";
import { int8Features, machineInfo } from "../src/util/machine-info.ts";

const INT8_BAR = { vsDense: 2.5, vsParent: 1.3 } as const;
const DENSE = "nanodet-u8";

const { values } = parseArgs({
  options: {
    models: { type: "string" },
    runs: { type: "string", default: "30" },
    out: { type: "string" },
    json: { type: "string" },
    svg: { type: "string" },
    "no-agreement": { type: "boolean", default: false },
  },
});

function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** What the graph says about itself (src/model/quantize/qdq.ts writes it), so files not in the manifest are labelled right too. */
const quantization = new Map<string, { activations: string } | null>();

function isInt8(m: ResolvedModel): boolean {
  return quantization.get(m.name) != null;
}

async function main(): Promise<void> {
  const manifest = await readManifest(DEFAULT_MANIFEST_PATH);
  let names: string[];
  if (values.models !== undefined) names = values.models.split(",").map((s) => s.trim()).filter(Boolean);
  else {
    const int8 = Object.keys(manifest.models).filter((n) => /-int8(-cpu)?$/.test(manifest.models[n].variant));
    const parents = int8.map((n) => manifest.models[n].parent).filter((p): p is string => p !== null);
    names = [...new Set([DENSE, ...parents, ...int8])];
  }
  if (!names.includes(DENSE)) names.unshift(DENSE);
  const models: ResolvedModel[] = [];
  for (const n of names) models.push(await resolveModelArg(n, manifest, DEFAULT_MANIFEST_PATH));
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`--runs must be an integer >= 1, got ${values.runs}`);
  const cpu = int8Features();
  const info = machineInfo();
  say(`quantization table: ${models.map((m) => m.name).join(", ")}; ${cpu.summary}`);

  const graphs = [];
  for (const m of models) {
    const graph = decodeModel(await readVerifiedModel(m), m.path);
    quantization.set(m.name, graph.metadata.quantization === undefined ? null : (JSON.parse(graph.metadata.quantization) as { activations: string }));
    graphs.push({ label: m.name, graph });
  }
  const latency: Record<number, LatencyResult> = {};
  for (const threads of [1, 2]) {
    say(`latency, ${threads} thread(s), ${runs} interleaved runs per model`);
    latency[threads] = await measureSideBySide(graphs, { runs, threads, onProgress: (d, t) => process.stderr.write(`\r  ${d}/${t}`) });
    process.stderr.write("\n");
  }

  let sets: SetAgreement[] = [];
  if (!values["no-agreement"]) {
    const dense = models.find((m) => m.name === DENSE)!;
    const others = models.filter((m) => m !== dense);
    say(`agreement with ${DENSE} on ${BAR.heldOutSet} and ${BAR.outOfSceneSet} (every frame)`);
    sets = await evaluateOnSets({
      models: others,
      reference: dense,
      sets: [BAR.heldOutSet, BAR.outOfSceneSet],
      session: { executionProviders: ["cpu"] },
      onProgress: (p) => process.stderr.write(`\r  ${p.set} ${p.model} ${p.done}/${p.total}        `),
    });
    process.stderr.write("\n");
  }

  const p50 = (threads: number, name: string): number => latency[threads].rows.find((r) => r.label === name)!.stats.p50Ms;
  // A quantized file outside the manifest is run as its manifest look-alike (nanodet-u8), so its
  // entry's parent is the dense model; its quantize report says which file it was made from.
  const candidates = models.map((m) => ({ model: m, name: m.name, path: m.path, sha256: m.entry.sha256 }));
  const parents = new Map<ResolvedModel, ResolvedModel | undefined>(
    models.map((m) => [m, findQuantizeParent(m.path, candidates)?.model ?? models.find((x) => x.name === m.entry.parent)]),
  );
  const parentOf = (m: ResolvedModel): ResolvedModel | undefined => parents.get(m);
  const rows: string[][] = [];
  const verdicts: { model: string; checks: { name: string; value: number | null; threshold: number; pass: boolean }[]; holds: boolean }[] = [];
  for (const m of models) {
    const held = sets.find((s) => s.model === m.name && s.set === BAR.heldOutSet);
    const oos = sets.find((s) => s.model === m.name && s.set === BAR.outOfSceneSet);
    const parent = parentOf(m);
    const speed = (t: number): string => {
      const vsDense = p50(t, DENSE) / p50(t, m.name);
      const vsParent = parent !== undefined && isInt8(m) ? ` (${formatRatio(p50(t, parent.name) / p50(t, m.name))} vs parent)` : "";
      return `${formatFixed(p50(t, m.name), 1)} ms, ${formatRatio(vsDense)}${vsParent}`;
    };
    const person = held?.perClass.find((c) => c.label === "person");
    rows.push([
      m.name,
      isInt8(m) ? `INT8 (${quantization.get(m.name)!.activations} act.)` : "FP32",
      speed(1),
      speed(2),
      `${(m.entry.bytes / 1e6).toFixed(1)} MB`,
      m.name === DENSE ? "(reference)" : formatFixed(person?.ap50, 3),
      m.name === DENSE ? "(reference)" : held === undefined ? "-" : formatFixed(held.map50, 3),
      m.name === DENSE ? "(reference)" : oos === undefined ? "-" : `${formatFixed(oos.recall, 3)} (${oos.found}/${oos.confident})${oos.collapsed.length ? ` collapsed: ${oos.collapsed.join(", ")}` : ""}`,
    ]);
    if (isInt8(m) && held !== undefined && oos !== undefined) {
      const agreement = judgeBar(m.name, DENSE, [held, oos], null).checks.filter((c) => c.name !== "latency");
      const vsDense = p50(2, DENSE) / p50(2, m.name);
      const vsParent = parent === undefined ? null : p50(2, parent.name) / p50(2, m.name);
      const checks = [
        { name: `>= ${INT8_BAR.vsDense}x vs dense FP32 (2 threads)`, value: vsDense, threshold: INT8_BAR.vsDense, pass: vsDense >= INT8_BAR.vsDense },
        { name: `>= ${INT8_BAR.vsParent}x vs its FP32 parent (2 threads)`, value: vsParent, threshold: INT8_BAR.vsParent, pass: vsParent !== null && vsParent >= INT8_BAR.vsParent },
        ...agreement.map((c) => ({ name: c.name, value: c.value, threshold: c.threshold, pass: c.pass })),
      ];
      verdicts.push({ model: m.name, checks, holds: checks.every((c) => c.pass) });
    }
  }

  const out: string[] = [];
  out.push(`Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${info.cpu} (${info.availableParallelism} of ${info.cores} cores usable); **${cpu.summary}**. ONNX Runtime CPU, every model interleaved run by run in one process, ${runs} runs per model and thread count, p50.`, "");
  out.push("```", commandLineOf(["npx", "tsx", "scripts/quantization-table.ts", ...process.argv.slice(2)]), "```", "");
  out.push(
    markdownTable(
      [
        { header: "model" },
        { header: "weights / activations" },
        { header: "1 thread: p50, vs dense" },
        { header: "2 threads: p50, vs dense" },
        { header: "file", align: "right" },
        { header: `${BAR.heldOutSet} person AP@0.5`, align: "right" },
        { header: `${BAR.heldOutSet} mAP@0.5`, align: "right" },
        { header: `${BAR.outOfSceneSet} recall (found/confident)` },
      ],
      rows,
    ),
    "",
  );
  const perClassSets = [BAR.heldOutSet, BAR.outOfSceneSet];
  for (const set of perClassSets) {
    const bySet = sets.filter((s) => s.set === set);
    if (bySet.length === 0) continue;
    out.push(`Per class on ${set} (AP@0.5 / recall of confident objects; n/a where the dense model found none):`, "");
    const classes = [...new Set(bySet.flatMap((s) => s.perClass.filter((c) => c.references > 0 || (AGREEMENT_CLASSES as readonly string[]).includes(c.label)).map((c) => c.label)))];
    out.push(
      markdownTable(
        [{ header: "model" }, ...classes.map((c) => ({ header: c, align: "right" as const }))],
        bySet.map((s) => [s.model, ...classes.map((c) => {
          const f = s.perClass.find((x) => x.label === c);
          return f === undefined ? "-" : `${formatFixed(f.ap50, 2)} / ${formatFixed(f.recall, 2)}`;
        })]),
      ),
      "",
    );
  }
  if (verdicts.length > 0) {
    out.push(`The bar for INT8 variants (${cpu.summary}):`, "");
    out.push(
      markdownTable(
        [{ header: "model" }, { header: "check" }, { header: "value", align: "right" }, { header: "needed", align: "right" }, { header: "holds" }],
        verdicts.flatMap((v) => v.checks.map((c) => [v.model, c.name, formatFixed(c.value, 3), formatFixed(c.threshold, 2), c.pass ? "yes" : "NO"])),
      ),
      "",
    );
    for (const v of verdicts) out.push(`- ${v.model}: ${v.holds ? "holds the bar" : "does not hold the bar"}`);
    out.push("");
  }
  const text = out.join("\n");
  process.stdout.write(text + "\n");
  if (values.out !== undefined) await writeFileAtomic(values.out, `# Quantization table (generated by scripts/quantization-table.ts)\n\n${text}\n`);
  if (values.svg !== undefined) {
    const points = models.map((m) => ({
      name: m.name,
      int8: isInt8(m),
      parent: parentOf(m)?.name ?? null,
      speedup: p50(2, DENSE) / p50(2, m.name),
      ap: m.name === DENSE ? 1 : (sets.find((s) => s.model === m.name && s.set === BAR.heldOutSet)?.perClass.find((c) => c.label === "person")?.ap50 ?? Number.NaN),
    }));
    await writeFileAtomic(values.svg, curveSvg(points, cpu.summary));
  }
  if (values.json !== undefined) await writeFileAtomic(values.json, JSON.stringify({ machine: { ...info, int8: cpu }, latency, sets, verdicts }, null, 2) + "\n");
}

interface CurvePoint {
  name: string;
  int8: boolean;
  parent: string | null;
  speedup: number;
  ap: number;
}

/** A small self-contained SVG: speed-up across, held-out person AP@0.5 up, parents joined to their INT8 children. */
function curveSvg(points: readonly CurvePoint[], cpu: string): string {
  const W = 640;
  const H = 400;
  const m = { l: 60, r: 20, t: 44, b: 50 };
  const xs = points.map((p) => p.speedup).filter(Number.isFinite);
  const ys = points.map((p) => p.ap).filter(Number.isFinite);
  const xMax = Math.ceil(Math.max(2, ...xs) + 0.5);
  const yMin = Math.min(0.8, Math.floor(Math.min(...ys) * 20) / 20);
  const x = (v: number): number => m.l + (v / xMax) * (W - m.l - m.r);
  const y = (v: number): number => H - m.b - ((v - yMin) / (1 - yMin)) * (H - m.t - m.b);
  const esc = (t: string): string => t.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  out.push(`<text x="${m.l}" y="16" font-size="12">NanoDet: speed-up vs dense FP32 (ONNX Runtime CPU, 2 threads) and held-out person AP@0.5</text>`);
  out.push(`<text x="${m.l}" y="31" fill="#555">${esc(cpu)}</text>`);
  for (let v = 0; v <= xMax; v++) out.push(`<line x1="${x(v)}" y1="${y(yMin)}" x2="${x(v)}" y2="${y(1)}" stroke="#eee"/><text x="${x(v)}" y="${H - m.b + 16}" text-anchor="middle">${v}x</text>`);
  for (let v = yMin; v <= 1.0001; v += 0.05) out.push(`<line x1="${x(0)}" y1="${y(v)}" x2="${x(xMax)}" y2="${y(v)}" stroke="#eee"/><text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`);
  out.push(`<line x1="${x(0)}" y1="${y(0.92)}" x2="${x(xMax)}" y2="${y(0.92)}" stroke="#c00" stroke-dasharray="4 3"/><text x="${x(xMax) - 4}" y="${y(0.92) - 4}" text-anchor="end" fill="#c00">AP bar 0.92</text>`);
  out.push(`<line x1="${x(2.5)}" y1="${y(yMin)}" x2="${x(2.5)}" y2="${y(1)}" stroke="#c00" stroke-dasharray="4 3"/><text x="${x(2.5) + 4}" y="${y(yMin) - 4}" fill="#c00">INT8 bar 2.5x</text>`);
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">speed-up vs dense FP32</text>`);
  for (const p of points) {
    const parent = points.find((q) => q.name === p.parent);
    if (p.int8 && parent !== undefined && Number.isFinite(p.ap) && Number.isFinite(parent.ap)) {
      out.push(`<line x1="${x(parent.speedup)}" y1="${y(parent.ap)}" x2="${x(p.speedup)}" y2="${y(p.ap)}" stroke="#888"/>`);
    }
  }
  for (const p of points) {
    if (!Number.isFinite(p.ap)) continue;
    out.push(p.int8 ? `<rect x="${x(p.speedup) - 4}" y="${y(p.ap) - 4}" width="8" height="8" fill="#1f77b4"/>` : `<circle cx="${x(p.speedup)}" cy="${y(p.ap)}" r="4.5" fill="#ff7f0e"/>`);
    out.push(`<text x="${x(p.speedup) + 7}" y="${y(p.ap) + 4}">${esc(p.name)}</text>`);
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}

main().catch((e: unknown) => {
  process.stderr.write(`quantization-table: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
