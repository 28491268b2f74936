// Structured pruning: whole channels leave the graph. Which channels go together comes from
// the dependency graph; which ones go first, from an importance score; how many, from a
// ratio rounded to a multiple (vector units and GEMM tiles like multiples of 8) with a floor.
// The result is a new graph; the parent is not touched. Node names stay as they were, so the
// least-squares recovery can pair each pruned Conv with its dense original.
import { attr, cloneGraph, type OnnxGraph, type OnnxNode } from "../onnx/ir.ts";
import { graphStats, inferShapes, type GraphStats } from "../onnx/shape-inference.ts";
import { fromNumbers, sizeOf, stridesOf, toNumbers, type Tensor, type TensorData } from "../onnx/tensor.ts";
import { buildDependencyGraph, matchNodes, type DependencyGraph, type SkippedOp } from "./dependency-graph.ts";
import { activationImportance, magnitudeImportance, type ChannelStats, type ImportanceKind } from "./importance.ts";
import { reconstructionImportance, type ChannelCovariances } from "./reconstruction.ts";

export interface StructuredOptions {
  /** Fraction of each prunable group's channels to remove, in [0, 1). Default 0. */
  ratio?: number;
  /**
   * Per-group ratios that override `ratio`: key = a Conv node name (exact) or a regular
   * expression over node names; a group takes the ratio of the last key matching one of its
   * producer Convs.
   */
  ratios?: Readonly<Record<string, number>>;
  /** Default "l1". "activation" needs `activationStats`, "reconstruction" `covariances`. */
  importance?: ImportanceKind;
  /** Per-channel mean |activation| of the tensors importance.activationTensors lists. */
  activationStats?: ChannelStats;
  /** "reconstruction": channel covariances of the tensors importance.activationTensors lists. */
  covariances?: ChannelCovariances;
  /** Kept channel counts round to a multiple of this. Default 8. */
  round?: number;
  /** Floor on kept channels: a count (>= 1) or a fraction of the group (< 1). Default 8. */
  minChannels?: number;
  /**
   * Signed per-channel mean activation of the tensors importance.activationTensors lists.
   * When given, every Conv that loses input channels absorbs their mean contribution into
   * its bias (bias compensation), so a removed channel that was mostly a constant, as
   * BN-folded biases make many, no longer shifts everything downstream.
   */
  compensationMeans?: ChannelStats;
  /** Node names or regular expressions whose channels are kept. */
  ignore?: readonly string[];
  /** Keep the first conv's output channels. Default true. */
  protectStem?: boolean;
}

export interface GroupReport {
  name: string;
  producers: string[];
  before: number;
  after: number;
  ratio: number;
  prunable: boolean;
  reasons: string[];
}

export interface LayerReport {
  node: string;
  kind: "dense" | "depthwise" | "grouped";
  inBefore: number;
  inAfter: number;
  outBefore: number;
  outAfter: number;
  paramsBefore: number;
  paramsAfter: number;
  macsBefore: number;
  macsAfter: number;
}

export interface StructuredResult {
  graph: OnnxGraph;
  groups: GroupReport[];
  layers: LayerReport[];
  skipped: SkippedOp[];
  /** dense Convs whose input channels changed: what least-squares recovery refits */
  changedConvs: string[];
  /** per Conv that lost output channels, the dense output channels it kept (recovery's outputChannels) */
  keptOutputChannels: Map<string, number[]>;
  before: GraphStats;
  after: GraphStats;
  importance: ImportanceKind;
}

export const DEFAULT_ROUND = 8;
export const DEFAULT_MIN_CHANNELS = 8;

function checkRatio(where: string, r: number): number {
  if (!(Number.isFinite(r) && r >= 0 && r < 1)) throw new RangeError(`${where}: ratio must be in [0, 1), got ${String(r)}`);
  return r;
}

/** Channels a group of `size` keeps at `ratio`: rounded to `round`, at least the floor, at most size. */
export function keptChannels(size: number, ratio: number, round = DEFAULT_ROUND, minChannels = DEFAULT_MIN_CHANNELS): number {
  // ratio 0 means "leave it": rounding 18 channels to a multiple of 8 must not remove two
  if (ratio <= 0) return size;
  const floor = minChannels < 1 ? Math.ceil(minChannels * size) : minChannels;
  const keep = Math.max(Math.round((size * (1 - ratio)) / round) * round, floor, 1);
  return Math.min(keep, size);
}

/** Ratio per group id, from the global ratio and the per-group overrides. */
export function groupRatios(g: OnnxGraph, dep: DependencyGraph, opts: StructuredOptions): number[] {
  const ratios = dep.groups.map(() => checkRatio("--ratio", opts.ratio ?? 0));
  const keys = Object.keys(opts.ratios ?? {});
  const matched = matchNodes(g, keys, "--ratios");
  for (const key of keys) {
    const r = checkRatio(`--ratios ${key}`, opts.ratios![key]);
    const nodes = new Set(matched.get(key));
    const hit = dep.groups.filter((grp) => grp.producers.some((p) => nodes.has(p)));
    if (hit.length === 0) throw new Error(`--ratios: "${key}" matches no Conv that produces prunable channels`);
    for (const grp of hit) ratios[grp.id] = r;
  }
  return ratios;
}

// The greedy order does not depend on the ratios, and a sensitivity sweep prunes the same
// graph a hundred times: it is computed once per graph, covariances and group structure.
const reconstructionOrders = new WeakMap<ChannelCovariances, WeakMap<OnnxGraph, Map<string, Float64Array>>>();

function cachedReconstruction(src: OnnxGraph, dep: DependencyGraph, covariances: ChannelCovariances, opts: StructuredOptions): Float64Array {
  let byGraph = reconstructionOrders.get(covariances);
  if (!byGraph) reconstructionOrders.set(covariances, (byGraph = new WeakMap()));
  let byKey = byGraph.get(src);
  if (!byKey) byGraph.set(src, (byKey = new Map()));
  const key = JSON.stringify([opts.protectStem ?? true, opts.ignore ?? []]);
  let score = byKey.get(key);
  if (!score) byKey.set(key, (score = reconstructionImportance(src, dep, covariances, magnitudeImportance(src, dep, "l1"))));
  return score;
}

export function pruneStructured(src: OnnxGraph, opts: StructuredOptions = {}): StructuredResult {
  const round = opts.round ?? DEFAULT_ROUND;
  const minChannels = opts.minChannels ?? DEFAULT_MIN_CHANNELS;
  if (!(Number.isInteger(round) && round >= 1)) throw new RangeError(`--round must be a positive integer, got ${String(round)}`);
  if (!(minChannels > 0)) throw new RangeError(`--min-channels must be a positive count or a fraction in (0, 1), got ${String(minChannels)}`);
  const kind = opts.importance ?? "l1";
  const dep = buildDependencyGraph(src, { protectStem: opts.protectStem, ignore: opts.ignore });
  const ratios = groupRatios(src, dep, opts);
  let score: Float64Array;
  if (kind === "activation") {
    if (!opts.activationStats) throw new Error("importance \"activation\" needs activation statistics from calibration frames");
    score = activationImportance(dep, opts.activationStats);
  } else if (kind === "reconstruction") {
    if (!opts.covariances) throw new Error("importance \"reconstruction\" needs channel covariances from calibration frames");
    score = cachedReconstruction(src, dep, opts.covariances, opts);
  } else score = magnitudeImportance(src, dep, kind);

  const removed = new Uint8Array(dep.slotGroup.length);
  const groups: GroupReport[] = dep.groups.map((grp) => {
    const keep = grp.prunable ? keptChannels(grp.size, ratios[grp.id], round, minChannels) : grp.size;
    // lowest scores go; ties keep the earlier channel
    const order = [...grp.slots].sort((a, b) => score[a] - score[b] || b - a);
    for (const s of order.slice(0, grp.size - keep)) removed[s] = 1;
    return { name: grp.name, producers: grp.producers, before: grp.size, after: keep, ratio: ratios[grp.id], prunable: grp.prunable, reasons: grp.reasons };
  });
  return applyRemoval(src, dep, removed, groups, kind, opts.compensationMeans);
}

/** What removing input channels `keep`'s complement takes from each output, at their mean input. */
function meanContribution(w: Tensor, keep: readonly number[], means: ArrayLike<number>): Float64Array {
  const [co, ci, kh, kw] = w.dims;
  const k = kh * kw;
  const data = w.data as Float32Array;
  const kept = new Set(keep);
  const delta = new Float64Array(co);
  for (let c = 0; c < ci; c++) {
    if (kept.has(c) || means[c] === 0) continue;
    for (let o = 0; o < co; o++) {
      let s = 0;
      for (let j = (o * ci + c) * k; j < (o * ci + c + 1) * k; j++) s += data[j];
      delta[o] += s * means[c];
    }
  }
  return delta;
}

/** Indices of the channels of tensor `t` that stay; null when the tensor is not tracked or loses nothing. */
function keptIndices(dep: DependencyGraph, removed: Uint8Array, t: string): number[] | null {
  const slots = dep.channels.get(t);
  if (!slots) return null;
  const keep: number[] = [];
  for (let i = 0; i < slots.length; i++) if (!removed[slots[i]]) keep.push(i);
  return keep.length === slots.length ? null : keep;
}

/** The tensor with only indices `keep` along `axis`. */
export function sliceAxis(t: Tensor, axis: number, keep: readonly number[]): Tensor {
  const dims = [...t.dims];
  dims[axis] = keep.length;
  const strides = stridesOf(t.dims);
  const outer = sizeOf(t.dims.slice(0, axis));
  const inner = strides[axis];
  const Ctor = t.data.constructor as new (n: number) => TensorData;
  const out = new Ctor(sizeOf(dims));
  const src = t.data as unknown as { subarray(a: number, b: number): ArrayLike<number> & ArrayLike<bigint> };
  const dst = out as unknown as { set(a: ArrayLike<number> | ArrayLike<bigint>, off: number): void };
  let o = 0;
  for (let a = 0; a < outer; a++) {
    const base = a * t.dims[axis] * inner;
    for (const k of keep) {
      dst.set(src.subarray(base + k * inner, base + (k + 1) * inner), o);
      o += inner;
    }
  }
  return { dtype: t.dtype, dims, data: out };
}

/** A pruning rewrite in progress: the copy being rewritten, what is removed, and the helpers every op's rewrite uses. */
interface Rewrite {
  g: OnnxGraph;
  dep: DependencyGraph;
  /** per Conv input, its channels' means: the removed ones are folded into the bias */
  means: ChannelStats | undefined;
  /** indices of the channels of a tensor that stay; null when it loses none */
  keepOf(t: string): number[] | null;
  /** replaces input k of n with t (in place when only n reads it, else as a copy for n) */
  setConst(n: OnnxNode, k: number, t: Tensor): void;
  changedConvs: string[];
  keptOutputChannels: Map<string, number[]>;
}

/** A Conv loses the removed output channels (its weight rows and bias) and input channels (weight columns), with the mean of the removed inputs folded into the bias when given; a depthwise one its groups too. */
function rewriteConv(rw: Rewrite, n: OnnxNode): void {
  const { dep, means, keepOf, setConst, changedConvs, keptOutputChannels } = rw;
  const init = (k: number): Tensor | undefined => (n.inputs[k] ? rw.g.initializers.get(n.inputs[k]) : undefined);
  const c = dep.convs.get(n.name);
  if (!c || c.kind === "grouped") return;
  const keepOut = keepOf(c.output);
  const keepIn = c.kind === "dense" && c.input ? keepOf(c.input) : null;
  const dense = init(1)!;
  let w = dense;
  let b = init(2);
  const m = keepIn && c.input ? means?.get(c.input) : undefined;
  if (keepIn && m) {
    const delta = meanContribution(dense, keepIn, m);
    const bias = new Float32Array(dense.dims[0]);
    if (b) bias.set(b.data as Float32Array);
    for (let o = 0; o < bias.length; o++) bias[o] += delta[o];
    b = { dtype: "float32", dims: [bias.length], data: bias };
    if (!n.inputs[2]) n.inputs[2] = "";
    setConst(n, 2, b);
  }
  if (keepOut) {
    w = sliceAxis(w, 0, keepOut);
    keptOutputChannels.set(n.name, keepOut);
  }
  if (keepIn) {
    w = sliceAxis(w, 1, keepIn);
    changedConvs.push(n.name);
  }
  if (keepOut || keepIn) setConst(n, 1, w);
  if (b && keepOut) setConst(n, 2, sliceAxis(b, 0, keepOut));
  if (c.kind === "depthwise" && keepOut) n.attrs.group = attr.int(keepOut.length);
}

/** Normalisation loses the parameters of the removed channels. */
function rewriteNormalization(rw: Rewrite, n: OnnxNode): void {
  const { keepOf, setConst } = rw;
  const init = (k: number): Tensor | undefined => (n.inputs[k] ? rw.g.initializers.get(n.inputs[k]) : undefined);
  const keep = keepOf(n.inputs[0]);
  if (keep) for (let k = 1; k < n.inputs.length; k++) if (init(k)) setConst(n, k, sliceAxis(init(k)!, 0, keep));
}

/** A Split on the channel axis gets the new sizes of its outputs. */
function rewriteSplit(rw: Rewrite, n: OnnxNode): void {
  const { g, dep, keepOf, setConst } = rw;
  const x = dep.shapes.get(n.inputs[0])!;
  let axis = n.attrs.axis?.kind === "int" ? n.attrs.axis.value : 0;
  if (axis < 0) axis += x.dims.length;
  if (axis !== 1 || !n.outputs.some((o) => keepOf(o))) return;
  const sizes = n.outputs.map((o) => keepOf(o)?.length ?? dep.channels.get(o)!.length);
  if (g.opset >= 13) setConst(n, 1, fromNumbers("int64", [sizes.length], sizes));
  else n.attrs.split = attr.ints(sizes);
}

/** A Slice of the channel axis gets its bounds recounted over the channels that stay. */
function rewriteSlice(rw: Rewrite, n: OnnxNode): void {
  const { dep, keepOf, setConst } = rw;
  const init = (k: number): Tensor | undefined => (n.inputs[k] ? rw.g.initializers.get(n.inputs[k]) : undefined);
  const keep = keepOf(n.inputs[0]);
  if (!keep) return;
  const r = dep.shapes.get(n.inputs[0])!.dims.length;
  const starts = toNumbers(init(1)!);
  const axes = init(3) ? toNumbers(init(3)!).map((a) => (a < 0 ? a + r : a)) : starts.map((_, i) => i);
  const k = axes.indexOf(1);
  if (k < 0) return;
  const c = dep.channels.get(n.inputs[0])!.length;
  const ends = toNumbers(init(2)!);
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + c : v, 0), c);
  const below = (v: number): number => keep.filter((i) => i < clamp(v)).length;
  const [s0, e0] = [starts[k], ends[k]];
  starts[k] = below(s0);
  ends[k] = below(e0);
  setConst(n, 1, fromNumbers(init(1)!.dtype, [starts.length], starts));
  setConst(n, 2, fromNumbers(init(2)!.dtype, [ends.length], ends));
}

/** Resize sizes and Reshape targets spell the channel count out: it becomes the new one. */
function rewriteShapeConstant(rw: Rewrite, n: OnnxNode): void {
  const { keepOf, setConst } = rw;
  const init = (k: number): Tensor | undefined => (n.inputs[k] ? rw.g.initializers.get(n.inputs[k]) : undefined);
  const out0 = n.outputs[0];
  // sizes / target shape spell the channel count out
  const keep = keepOf(out0);
  const k = n.opType === "Reshape" ? 1 : 3;
  const t = init(k);
  if (!keep || !t) return;
  const v = toNumbers(t);
  if (v[1] > 0) {
    v[1] = keep.length;
    setConst(n, k, fromNumbers(t.dtype, t.dims, v));
  }
}

/** Element-wise ops with a per-channel constant operand ([C], [C,1,1], [1,C,1,1], ...) lose its removed channels. */
function rewriteChannelConstants(rw: Rewrite, n: OnnxNode): void {
  const { dep, keepOf, setConst } = rw;
  const init = (k: number): Tensor | undefined => (n.inputs[k] ? rw.g.initializers.get(n.inputs[k]) : undefined);
  const out0 = n.outputs[0];
  const keep = keepOf(out0);
  if (!keep || n.opType === "Concat") return;
  const r = dep.shapes.get(out0)?.dims.length ?? 0;
  const c = dep.channels.get(out0)!.length;
  n.inputs.forEach((i, k) => {
    const t = init(k);
    if (!t) return;
    const ax = t.dims.length - r + 1;
    if (ax >= 0 && t.dims[ax] === c && c > 1) setConst(n, k, sliceAxis(t, ax, keep));
  });
}

/** Each op's rewrite; any other op goes to rewriteChannelConstants. */
const REWRITES = new Map<string, (rw: Rewrite, n: OnnxNode) => void>([
  ["Conv", rewriteConv],
  ["BatchNormalization", rewriteNormalization],
  ["InstanceNormalization", rewriteNormalization],
  ["Split", rewriteSplit],
  ["Slice", rewriteSlice],
  ["Resize", rewriteShapeConstant],
  ["Reshape", rewriteShapeConstant],
]);

function applyRemoval(
  src: OnnxGraph,
  dep: DependencyGraph,
  removed: Uint8Array,
  groups: GroupReport[],
  kind: ImportanceKind,
  means: ChannelStats | undefined,
): StructuredResult {
  const g = cloneGraph(src);
  const uses = new Map<string, number>();
  for (const n of src.nodes) for (const i of n.inputs) if (i) uses.set(i, (uses.get(i) ?? 0) + 1);
  const taken = new Set<string>([...g.initializers.keys(), ...g.nodes.flatMap((n) => [...n.inputs, ...n.outputs])]);
  // A constant read by one node is replaced in place; a shared one gets a copy for this node.
  const setConst = (n: OnnxNode, k: number, t: Tensor): void => {
    const name = n.inputs[k];
    if (name && (uses.get(name) ?? 0) <= 1) {
      g.initializers.set(name, t);
      return;
    }
    let fresh = `${name || n.name + "/input" + k}/pruned`;
    for (let i = 1; taken.has(fresh); i++) fresh = `${name || n.name + "/input" + k}/pruned_${i}`;
    taken.add(fresh);
    g.initializers.set(fresh, t);
    while (n.inputs.length <= k) n.inputs.push("");
    n.inputs[k] = fresh;
  };
  const rw: Rewrite = {
    g,
    dep,
    means,
    keepOf: (t) => keptIndices(dep, removed, t),
    setConst,
    changedConvs: [],
    keptOutputChannels: new Map(),
  };
  for (const n of g.nodes) (REWRITES.get(n.opType) ?? rewriteChannelConstants)(rw, n);

  // drop initializers nothing reads any more
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const k of [...g.initializers.keys()]) if (!read.has(k)) g.initializers.delete(k);

  const shapesAfter = inferShapes(g); // throws, naming the node, if the rewrite broke a shape
  for (const o of g.outputs) {
    const got = shapesAfter.get(o.name)?.dims;
    if (!got || got.join(",") !== o.dims.join(",")) throw new Error(`pruning changed graph output ${o.name} from [${o.dims}] to [${got}]; this is a pruner bug`);
  }
  const layers = layerReport(src, g, dep.shapes, shapesAfter);
  return {
    graph: g,
    groups,
    layers,
    skipped: dep.skipped,
    changedConvs: rw.changedConvs,
    keptOutputChannels: rw.keptOutputChannels,
    before: graphStats(src, dep.shapes),
    after: graphStats(g, shapesAfter),
    importance: kind,
  };
}

function layerReport(
  before: OnnxGraph,
  after: OnnxGraph,
  sb: Map<string, { dims: number[] }>,
  sa: Map<string, { dims: number[] }>,
): LayerReport[] {
  const byName = new Map(after.nodes.map((n) => [n.name, n]));
  const out: LayerReport[] = [];
  for (const n of before.nodes) {
    if (n.opType !== "Conv") continue;
    const m = byName.get(n.name)!;
    const stat = (g: OnnxGraph, node: OnnxNode, s: Map<string, { dims: number[] }>): { cin: number; cout: number; params: number; macs: number } => {
      const w = s.get(node.inputs[1])!.dims;
      const y = s.get(node.outputs[0])!.dims;
      const b = node.inputs[2] ? sizeOf(g.initializers.get(node.inputs[2])!.dims) : 0;
      return { cin: s.get(node.inputs[0])!.dims[1], cout: w[0], params: sizeOf(w) + b, macs: sizeOf(y) * w[1] * w[2] * w[3] };
    };
    const a = stat(before, n, sb);
    const z = stat(after, m, sa);
    const group = n.attrs.group?.kind === "int" ? n.attrs.group.value : 1;
    const kind = group === 1 ? "dense" : group === a.cin && a.cout === a.cin ? "depthwise" : "grouped";
    out.push({
      node: n.name,
      kind,
      inBefore: a.cin,
      inAfter: z.cin,
      outBefore: a.cout,
      outAfter: z.cout,
      paramsBefore: a.params,
      paramsAfter: z.params,
      macsBefore: a.macs,
      macsAfter: z.macs,
    });
  }
  return out;
}
