// How much each removable channel (slot) of a group matters. Magnitude criteria sum over
// every member of the group, as DepGraph does: a channel is only as unimportant as all the
// weights that go with it (the producer's filter, the depthwise filter, and the slice of
// every consumer that reads it). Activation statistics measure what the consumers actually
// see on real frames.
import type { OnnxGraph } from "../onnx/ir.ts";
import type { Tensor } from "../onnx/tensor.ts";
import type { DependencyGraph } from "./dependency-graph.ts";

// "reconstruction" (greedy, least-squares aware) lives in reconstruction.ts.
export const IMPORTANCE_KINDS = ["l1", "l2", "activation", "reconstruction"] as const;
export type ImportanceKind = (typeof IMPORTANCE_KINDS)[number];

/** Per-channel statistic of one tensor, e.g. mean |activation| over calibration frames. */
export type ChannelStats = Map<string, ArrayLike<number>>;

function floats(t: Tensor, where: string): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new TypeError(`${where}: expected float32 weights, got ${t.dtype}`);
  return t.data;
}

/**
 * Score per global slot (index = slot id) from weight magnitudes. L1 sums |w|; L2 sums w^2
 * over all members and takes the root at the end, so a slot's members add up as one vector.
 */
export function magnitudeImportance(g: OnnxGraph, dep: DependencyGraph, kind: "l1" | "l2"): Float64Array {
  const score = new Float64Array(dep.slotGroup.length);
  const f = kind === "l1" ? Math.abs : (v: number): number => v * v;
  for (const c of dep.convs.values()) {
    const w = g.initializers.get(c.weight)!;
    const data = floats(w, `Conv ${c.node} weight ${c.weight}`);
    const [co, ci, kh, kw] = w.dims;
    const k = kh * kw;
    const out = dep.channels.get(c.output);
    if (out && c.kind !== "grouped") {
      // producer filters (dense) or per-channel filters (depthwise): slice along axis 0
      for (let o = 0; o < co; o++) {
        let s = 0;
        for (let j = o * ci * k; j < (o + 1) * ci * k; j++) s += f(data[j]);
        score[out[o]] += s;
      }
    }
    const inp = c.input ? dep.channels.get(c.input) : undefined;
    if (inp && c.kind === "dense") {
      for (let i = 0; i < ci; i++) {
        let s = 0;
        for (let o = 0; o < co; o++) for (let j = (o * ci + i) * k; j < (o * ci + i + 1) * k; j++) s += f(data[j]);
        score[inp[i]] += s;
      }
    }
  }
  if (kind === "l2") for (let i = 0; i < score.length; i++) score[i] = Math.sqrt(score[i]);
  return score;
}

/** Tensors whose per-channel statistics activation importance needs: every dense Conv's input. */
export function activationTensors(dep: DependencyGraph): string[] {
  const names = new Set<string>();
  for (const c of dep.convs.values()) if (c.kind === "dense" && c.input) names.add(c.input);
  return [...names].sort();
}

/**
 * Score per global slot from activation statistics: the mean |activation| of the channel in
 * every consumer's input, summed. `stats` must hold every tensor of activationTensors(dep).
 */
export function activationImportance(dep: DependencyGraph, stats: ChannelStats): Float64Array {
  const score = new Float64Array(dep.slotGroup.length);
  for (const t of activationTensors(dep)) {
    const s = stats.get(t);
    const slots = dep.channels.get(t)!;
    if (!s) throw new Error(`activation importance: no statistics for tensor ${t}`);
    if (s.length !== slots.length) throw new Error(`activation importance: tensor ${t} has ${slots.length} channels, statistics have ${s.length}`);
    for (let c = 0; c < slots.length; c++) score[slots[c]] += s[c];
  }
  return score;
}
