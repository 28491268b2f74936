// Per-group sensitivity sweep (as SparseML's, without training): each group is pruned alone
// at a few ratios and the pruned graph's outputs are compared with the dense graph's on
// calibration frames. Ratios for a FLOPs budget are then picked greedily, cheapest
// distortion per multiply-accumulate saved first. A latency target is met by tightening the
// FLOPs budget until the measured latency (side by side with the dense graph) is under it,
// because FLOPs and latency do not fall together (memory-bound layers, small channel counts).
import * as ort from "onnxruntime-node";
import type { ModelInputData } from "../../infer/input-tensor.ts";
import { createSession } from "../../infer/session.ts";
import type { OnnxGraph } from "../onnx/ir.ts";
import { encodeModel } from "../onnx/serialize.ts";
import { buildDependencyGraph } from "./dependency-graph.ts";
import { estimateMs, type ConvTimes } from "./latency.ts";
import { pruneStructured, type StructuredOptions, type StructuredResult } from "./structured.ts";

export const DEFAULT_SWEEP_LEVELS = [0.125, 0.25, 0.375, 0.5];

/** Lower is better; 0 means the pruned graph computes what the dense one does. */
export type Distortion = (pruned: OnnxGraph) => Promise<number>;

export interface SensitivityRow {
  group: string;
  size: number;
  ratio: number;
  kept: number;
  /** MACs of the whole graph with only this group pruned */
  macs: number;
  /** estimated ms per run with only this group pruned (when the sweep was given Conv times) */
  ms?: number;
  distortion: number;
}

export interface SweepResult {
  denseMacs: number;
  /** profiled Conv times of the dense graph, when given: ratios can then be priced in ms */
  times?: ConvTimes;
  levels: number[];
  rows: SensitivityRow[];
}

export type SweepProgress = { kind: "sweep"; done: number; total: number; group: string; ratio: number; levels: readonly number[]; distortion: number };

export interface SweepOptions {
  /** Rounding, floor, importance, ignore: as the final prune will use them. `ratio`/`ratios` are ignored. */
  base?: StructuredOptions;
  levels?: readonly number[];
  distortion: Distortion;
  /** profiled Conv times of the dense graph (latency.profileConvTimes), to price rows in ms */
  times?: ConvTimes;
  onProgress?: (e: SweepProgress) => void;
}

function baseOf(opts: StructuredOptions | undefined): StructuredOptions {
  const { ratio: _r, ratios: _rs, ...rest } = opts ?? {};
  return rest;
}

export async function sensitivitySweep(dense: OnnxGraph, opts: SweepOptions): Promise<SweepResult> {
  const levels = [...(opts.levels ?? DEFAULT_SWEEP_LEVELS)].sort((a, b) => a - b);
  for (const l of levels) if (!(l > 0 && l < 1)) throw new RangeError(`sweep levels must be in (0, 1), got ${String(l)}`);
  const base = baseOf(opts.base);
  const dep = buildDependencyGraph(dense, { protectStem: base.protectStem, ignore: base.ignore });
  const groups = dep.groups.filter((g) => g.prunable);
  const rows: SensitivityRow[] = [];
  let denseMacs = 0;
  const total = groups.length * levels.length;
  for (const grp of groups) {
    let lastKept = grp.size;
    for (const ratio of levels) {
      const r = pruneStructured(dense, { ...base, ratios: { [grp.name]: ratio } });
      denseMacs = r.before.macs;
      const kept = r.groups.find((x) => x.name === grp.name)!.after;
      // rounding can map two levels to the same count; the graph is the same, so is the answer
      const prev = rows[rows.length - 1];
      const distortion = kept === lastKept && prev?.group === grp.name ? prev.distortion : kept === grp.size ? 0 : await opts.distortion(r.graph);
      lastKept = kept;
      rows.push({ group: grp.name, size: grp.size, ratio, kept, macs: r.after.macs, ms: opts.times ? estimateMs(opts.times, r.layers) : undefined, distortion });
      opts.onProgress?.({ kind: "sweep", done: rows.length, total, group: grp.name, ratio, levels, distortion });
    }
  }
  if (!rows.length) denseMacs = pruneStructured(dense, base).before.macs;
  return { denseMacs, times: opts.times, levels, rows };
}

export interface PickResult {
  /** group name (its first Conv) -> ratio; groups left dense are absent */
  ratios: Record<string, number>;
  result: StructuredResult;
  /** MACs pruned / dense */
  macsFraction: number;
  /** estimated ms pruned / dense from the profiled Conv times; absent when the sweep had none */
  msFraction?: number;
  /** sum of the picked levels' single-group distortions: an estimate, not a measurement */
  estimatedDistortion: number;
}

/**
 * Greedy choice of per-group ratios until the pruned graph costs at most `target` of the
 * dense graph: in MACs, or in estimated milliseconds (`by: "ms"`, needs a sweep with Conv
 * times). Each step moves the group whose next level adds the least distortion per unit of
 * cost it saves. Stops at the highest levels if the budget cannot be met.
 */
export function pickRatios(dense: OnnxGraph, sweep: SweepResult, target: number, base?: StructuredOptions, by: "macs" | "ms" = "macs"): PickResult {
  if (!(target > 0 && target <= 1)) throw new RangeError(`target ${by === "ms" ? "latency" : "FLOPs"} fraction must be in (0, 1], got ${String(target)}`);
  const times = sweep.times;
  if (by === "ms" && !times) throw new Error("pickRatios: pricing by ms needs a sweep run with Conv times");
  const opts = baseOf(base);
  const byGroup = new Map<string, SensitivityRow[]>();
  for (const r of sweep.rows) {
    const list = byGroup.get(r.group);
    if (list) list.push(r);
    else byGroup.set(r.group, [r]);
  }
  const denseCost = by === "ms" ? times!.totalMs : sweep.denseMacs;
  const rowCost = (r: SensitivityRow): number => (by === "ms" ? r.ms! : r.macs);
  const costOf = (res: StructuredResult): number => (by === "ms" ? estimateMs(times!, res.layers) : res.after.macs);
  const level = new Map<string, number>(); // index into the group's rows; absent = dense
  let result = pruneStructured(dense, opts);
  let estimated = 0;
  const ratios = (): Record<string, number> => Object.fromEntries([...level].map(([g, i]) => [g, byGroup.get(g)![i].ratio]));
  while (costOf(result) > target * denseCost) {
    let best: { group: string; next: number; cost: number; dd: number } | undefined;
    for (const [group, rows] of byGroup) {
      const cur = level.get(group);
      const next = cur === undefined ? 0 : cur + 1;
      if (next >= rows.length) continue;
      const saved = (cur === undefined ? denseCost : rowCost(rows[cur])) - rowCost(rows[next]);
      const dd = rows[next].distortion - (cur === undefined ? 0 : rows[cur].distortion);
      if (saved <= 0) {
        // same kept count as the level before (rounding), or no measurable saving: step over it for free
        if (rows[next].kept === (cur === undefined ? rows[next].size : rows[cur].kept)) level.set(group, next);
        continue;
      }
      const cost = Math.max(dd, 0) / saved;
      if (!best || cost < best.cost) best = { group, next, cost, dd };
    }
    if (!best) break;
    level.set(best.group, best.next);
    estimated += best.dd;
    result = pruneStructured(dense, { ...opts, ratios: ratios() });
  }
  return {
    ratios: ratios(),
    result,
    macsFraction: result.after.macs / sweep.denseMacs,
    msFraction: times ? estimateMs(times, result.layers) / times.totalMs : undefined,
    estimatedDistortion: estimated,
  };
}

/**
 * Distortion as mean relative squared error of every graph output against the dense graph,
 * sum (y - y_dense)^2 / sum y_dense^2, averaged over outputs and frames. Dense outputs are
 * computed once; each call builds one ORT session for the pruned graph.
 */
export async function outputDistortion(dense: OnnxGraph, frames: readonly ModelInputData[], threads?: number): Promise<Distortion> {
  if (frames.length === 0) throw new Error("the sensitivity sweep needs calibration frames");
  const inp = dense.inputs[0];
  const feeds = frames.map((d) => ({
    [inp.name]: d.dtype === "uint8" ? new ort.Tensor("uint8", d.data, inp.dims) : new ort.Tensor("float32", d.data, inp.dims),
  }));
  const outputs = dense.outputs.map((o) => o.name);
  const runAll = async (g: OnnxGraph): Promise<Float32Array[][]> => {
    const { session } = await createSession(encodeModel(g), { executionProviders: ["cpu"], intraOpThreads: threads, source: g.name });
    try {
      const res: Float32Array[][] = [];
      for (const f of feeds) {
        const r = await session.run(f);
        res.push(outputs.map((o) => Float32Array.from(r[o].data as Float32Array)));
      }
      return res;
    } finally {
      await session.release();
    }
  };
  const ref = await runAll(dense);
  return async (g) => {
    const got = await runAll(g);
    let sum = 0;
    let n = 0;
    for (let f = 0; f < ref.length; f++)
      for (let o = 0; o < outputs.length; o++) {
        const a = ref[f][o];
        const b = got[f][o];
        let num = 0;
        let den = 0;
        for (let i = 0; i < a.length; i++) {
          num += (b[i] - a[i]) ** 2;
          den += a[i] * a[i];
        }
        sum += den > 0 ? num / den : num;
        n++;
      }
    return sum / n;
  };
}
