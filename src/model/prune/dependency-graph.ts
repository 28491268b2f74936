// Channel dependency graph for structured pruning (in the manner of Torch-Pruning's DepGraph,
// but over our ONNX IR). Every channel of every NCHW tensor that descends from a Conv gets an
// id; ops that tie channels together (residual Add, broadcast Mul, depthwise Conv) unite ids
// element by element, ops that only move channels (Concat, Split, Slice) rearrange the id
// lists, and ops that keep channels (activations, pooling, Resize, Pad) pass the list on. The
// united ids are the *slots* that can be removed; the slots reachable from each other through
// one Conv's output form a *group*, pruned with one ratio.
//
// Whatever the walk does not understand (Reshape or Transpose moving the channel axis, graph
// outputs, unknown ops, grouped Conv) blocks the channels it touches, and the group holding
// them is left whole and listed with the reason. Being wrong here would produce a graph that
// does not load, or worse, one that loads and computes garbage; blocking is always safe.
import { intAttr, intsAttr, type OnnxGraph, type OnnxNode } from "../onnx/ir.ts";
import { inferShapes, type TensorInfo } from "../onnx/shape-inference.ts";
import { toNumbers } from "../onnx/tensor.ts";

/** Ops that keep every channel where it is (input 0 to output 0). */
const PASS_THROUGH = new Set([
  "Identity", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Exp", "Log", "Floor", "Ceil", "Round",
  "Clip", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Neg", "Abs", "Sqrt", "Reciprocal", "Erf",
  "Not", "Cast", "Dropout", "Mish", "Gelu",
  "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
  "Resize", "Upsample",
]);

/** Element-wise ops with broadcasting: inputs that carry the full channel axis are tied together. */
const ELEMENTWISE = new Set([
  "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow", "Mod", "PRelu",
  "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Where",
]);

const REDUCE = new Set(["ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare"]);

export type ConvKind = "dense" | "depthwise" | "grouped";

export interface ConvInfo {
  node: string;
  kind: ConvKind;
  /** input tensor, when it carries tracked channels */
  input: string | null;
  output: string;
  weight: string;
  bias: string | null;
}

export interface ChannelGroup {
  id: number;
  /** name of the first Conv (in graph order) whose output channels are in the group */
  name: string;
  /** removable units: channels that must go together count once */
  size: number;
  /** global slot ids of the group, in the order of its first producer's channels */
  slots: number[];
  /** Conv (dense or grouped) nodes whose output channels are slots of the group */
  producers: string[];
  /** depthwise Conv nodes whose channels are slots of the group (their `group` is rewritten) */
  depthwise: string[];
  /** dense Conv nodes whose input channels include slots of the group */
  consumers: string[];
  prunable: boolean;
  /** why the group is not prunable (empty when it is) */
  reasons: string[];
}

/** An op (or rule) that kept channels from being pruned. */
export interface SkippedOp {
  node: string;
  opType: string;
  reason: string;
  /** names of the groups this left whole */
  groups: string[];
}

export interface DependencyGraph {
  groups: ChannelGroup[];
  /** for every tracked tensor (channel axis 1), the global slot id of each of its channels */
  channels: Map<string, Int32Array>;
  /** group id of each global slot */
  slotGroup: Int32Array;
  convs: Map<string, ConvInfo>;
  skipped: SkippedOp[];
  shapes: Map<string, TensorInfo>;
}

export interface DependencyOptions {
  /** Keep the output channels of Convs that read no pruned channels (the stem). Default true. */
  protectStem?: boolean;
  /** Node names (exact) or regular expressions; matching nodes keep their channels. */
  ignore?: readonly string[];
}

class UnionFind {
  private parent: number[] = [];
  make(): number {
    this.parent.push(this.parent.length);
    return this.parent.length - 1;
  }
  find(a: number): number {
    let r = a;
    while (this.parent[r] !== r) r = this.parent[r];
    while (this.parent[a] !== r) {
      const next = this.parent[a];
      this.parent[a] = r;
      a = next;
    }
    return r;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
  get size(): number {
    return this.parent.length;
  }
}

/**
 * Resolves --ignore / --ratios keys against node names: an exact node name first, else the
 * key as a regular expression. A key that matches nothing is an error naming it, so a typo
 * never silently protects (or prunes) nothing.
 */
export function matchNodes(g: OnnxGraph, keys: readonly string[], option: string): Map<string, string[]> {
  const names = g.nodes.map((n) => n.name);
  const out = new Map<string, string[]>();
  for (const key of keys) {
    if (names.includes(key)) {
      out.set(key, [key]);
      continue;
    }
    let re: RegExp;
    try {
      re = new RegExp(key);
    } catch (e) {
      throw new Error(`${option}: "${key}" is neither a node name of graph ${g.name} nor a valid regular expression (${(e as Error).message})`);
    }
    const hits = names.filter((n) => re.test(n));
    if (hits.length === 0) throw new Error(`${option}: unknown node "${key}": no node of graph ${g.name} is called that or matches it as a regular expression`);
    out.set(key, hits);
  }
  return out;
}

/** What tracing the channels keeps as it walks the nodes in order, with its helpers. */
interface Trace {
  g: OnnxGraph;
  uf: UnionFind;
  /** tensor -> the channel ids along its axis 1 */
  chan: Map<string, number[]>;
  /** ids created for channels that no Conv produces (blocked at once) */
  orphan: Set<number>;
  /** id -> the Conv that created it */
  producerOf: Map<number, string>;
  convs: Map<string, ConvInfo>;
  ignored: ReadonlySet<string>;
  protectStem: boolean;
  /** tensors with a Conv somewhere upstream: a Conv reading none of them is a stem */
  afterConv: ReadonlySet<string>;
  fresh(n: number): number[];
  dims(t: string): number[] | undefined;
  constOf(t: string): number[] | undefined;
  block(n: OnnxNode, reason: string, ids: readonly number[]): void;
  blockInputs(n: OnnxNode, reason: string): void;
  tieAll(a: readonly number[], b: readonly number[]): void;
}

/** A node that reads tracked channels, with its first input and that input's channels. */
interface Visit {
  n: OnnxNode;
  op: string;
  x: string;
  xIds: number[] | undefined;
  xDims: number[] | undefined;
}

/** Conv: a dense Conv makes new channels, a depthwise one keeps its input's, a grouped one is blocked. */
function traceConv(t: Trace, n: OnnxNode): void {
  const { g, chan, producerOf, convs, ignored, protectStem, afterConv, fresh, dims, block, blockInputs } = t;
  const [x, w, b] = n.inputs;
  const wt = g.initializers.get(w);
  const xIds = chan.get(x);
  const out = n.outputs[0];
  if (!wt || (b && !g.initializers.has(b))) {
    blockInputs(n, "Conv with a weight or bias that is not a constant");
    return;
  }
  const group = intAttr(n, "group", 1);
  const cin = dims(x)![1];
  const cout = wt.dims[0];
  let kind: ConvKind = "dense";
  if (group !== 1) kind = group === cin && cout === cin ? "depthwise" : "grouped";
  convs.set(n.name, { node: n.name, kind, input: xIds ? x : null, output: out, weight: w, bias: b || null });
  if (kind === "depthwise" && xIds) {
    chan.set(out, xIds); // channel c of the output is channel c of the input
    if (ignored.has(n.name)) block(n, "protected by --ignore", xIds);
    return;
  }
  const ids = fresh(cout);
  for (const id of ids) producerOf.set(id, n.name);
  chan.set(out, ids);
  if (kind === "grouped") {
    block(n, `grouped Conv (group ${group}) ties channels in blocks; not pruned`, [...(xIds ?? []), ...ids]);
  } else if (kind === "depthwise") {
    block(n, "depthwise Conv on channels that no earlier Conv produces", ids);
  } else if (!xIds && protectStem && !afterConv.has(x)) {
    block(n, "first conv (reads the model input), protected by default", ids);
  }
  if (ignored.has(n.name)) block(n, "protected by --ignore", ids);
}

/** Ops that keep every channel where it is (activations, pooling, resizing). */
function tracePassThrough(t: Trace, v: Visit): void {
  const { chan, dims, blockInputs } = t;
  const { n, op, xIds, xDims } = v;
  // extra inputs (Clip's bounds, Resize's sizes) must be constants or untracked scalars
  if (!xIds || n.inputs.slice(1).some((i) => i && chan.has(i))) {
    blockInputs(n, `${op} with channel data on an input other than the first`);
    return;
  }
  if ((op === "MaxPool" && n.outputs[1]) || (op === "Dropout" && n.outputs[1])) {
    blockInputs(n, `${op} second output (indices/mask) is used`);
    return;
  }
  const oDims = dims(n.outputs[0]);
  if (!oDims || oDims.length < 2 || oDims[1] !== xDims![1]) {
    blockInputs(n, `${op} changes the channel count`);
    return;
  }
  chan.set(n.outputs[0], xIds);
}

/** Per-channel normalisation with constant parameters: channels pass through. */
function traceNormalization(t: Trace, v: Visit): void {
  const { g, chan, blockInputs } = t;
  const { n, op, xIds } = v;
  if (!xIds || n.inputs.slice(1).some((i) => i && !g.initializers.has(i))) {
    blockInputs(n, `${op} with parameters that are not constants`);
    return;
  }
  chan.set(n.outputs[0], xIds);
}

/** Element-wise ops tie the channels of their full-width inputs together; broadcast ones are blocked. */
function traceElementwise(t: Trace, v: Visit): void {
  const { g, chan, dims, block, blockInputs, tieAll } = t;
  const { n, op } = v;
  const oDims = dims(n.outputs[0])!;
  const r = oDims.length;
  if (r < 2) {
    blockInputs(n, `${op} output of rank ${r} has no channel axis`);
    return;
  }
  const c = oDims[1];
  let ref: number[] | undefined;
  let bad: string | undefined;
  for (const [k, i] of n.inputs.entries()) {
    if (!i) continue;
    const d = dims(i)!;
    const ax = d.length - r + 1; // channel axis of this input after right-aligned broadcasting
    const cd = ax >= 0 ? d[ax] : 1;
    const ids = chan.get(i);
    if (ids) {
      if (d.length !== r) bad ??= `input ${k} has rank ${d.length}, output rank ${r}`;
      else if (cd !== c) block(n, `input ${k} (${cd} channel) is broadcast across ${c} channels`, ids);
      else if (ref) tieAll(ref, ids);
      else ref = ids;
    } else if (!g.initializers.has(i) && cd === c && c > 1) {
      bad ??= `input ${k} (${i}) carries ${c} channels that no Conv produces`;
    }
  }
  if (bad !== undefined || !ref) {
    blockInputs(n, bad ?? `${op} has no input with the full channel axis`);
    return;
  }
  for (const o of n.outputs) if (o) chan.set(o, ref);
}

/** Concat on the channel axis lines its inputs' channels up; on another axis it ties them. */
function traceConcat(t: Trace, v: Visit): void {
  const { chan, orphan, fresh, dims, block, blockInputs, tieAll } = t;
  const { n } = v;
  const oDims = dims(n.outputs[0])!;
  let axis = intAttr(n, "axis", 0);
  if (axis < 0) axis += oDims.length;
  if (axis === 1) {
    const ids: number[] = [];
    for (const i of n.inputs) {
      const got = chan.get(i);
      if (got) ids.push(...got);
      else {
        const made = fresh(dims(i)![1]);
        for (const id of made) orphan.add(id);
        block(n, `Concat input ${i} has channels that no Conv produces`, made);
        ids.push(...made);
      }
    }
    chan.set(n.outputs[0], ids);
    return;
  }
  // Concat on another axis: output channel c mixes channel c of every input
  if (axis === 0 || n.inputs.some((i) => !chan.has(i))) {
    blockInputs(n, `Concat on axis ${axis} with inputs whose channels cannot all be pruned`);
    return;
  }
  const ref = chan.get(n.inputs[0])!;
  for (const i of n.inputs.slice(1)) tieAll(ref, chan.get(i)!);
  chan.set(n.outputs[0], ref);
}

/** Split on the channel axis hands each output its slice of the channels. */
function traceSplit(t: Trace, v: Visit): void {
  const { g, chan, dims, blockInputs } = t;
  const { n, xIds, xDims } = v;
  if (!xIds || (n.inputs[1] && !g.initializers.has(n.inputs[1]))) {
    blockInputs(n, "Split with sizes that are not constants");
    return;
  }
  let axis = intAttr(n, "axis", 0);
  if (axis < 0) axis += xDims!.length;
  if (axis !== 1) {
    if (axis === 0) {
      blockInputs(n, "Split on the batch axis");
      return;
    }
    for (const o of n.outputs) if (o) chan.set(o, xIds);
    return;
  }
  let off = 0;
  for (const o of n.outputs) {
    const c = dims(o)![1];
    if (o) chan.set(o, xIds.slice(off, off + c));
    off += c;
  }
}

/** Slice with constant bounds: a slice of the channel axis keeps that slice. */
function traceSlice(t: Trace, v: Visit): void {
  const { chan, constOf, blockInputs } = t;
  const { n, xIds, xDims } = v;
  const starts = constOf(n.inputs[1]);
  const ends = constOf(n.inputs[2]);
  const r = xDims?.length ?? 0;
  const axes = (n.inputs[3] ? constOf(n.inputs[3]) : starts?.map((_, i) => i))?.map((a) => (a < 0 ? a + r : a));
  const steps = n.inputs[4] ? constOf(n.inputs[4]) : starts?.map(() => 1);
  if (!xIds || !starts || !ends || !axes || !steps) {
    blockInputs(n, "Slice with starts/ends/axes/steps that are not constants");
    return;
  }
  const k = axes.indexOf(1);
  if (axes.includes(0)) {
    blockInputs(n, "Slice on the batch axis");
    return;
  }
  if (k < 0) {
    chan.set(n.outputs[0], xIds);
    return;
  }
  if (steps[k] !== 1) {
    blockInputs(n, `Slice on the channel axis with step ${steps[k]}`);
    return;
  }
  const c = xDims![1];
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + c : v, 0), c);
  chan.set(n.outputs[0], xIds.slice(clamp(starts[k]), clamp(ends[k])));
}

/** Pad that leaves the batch and channel axes alone: channels pass through. */
function tracePad(t: Trace, v: Visit): void {
  const { chan, constOf, blockInputs } = t;
  const { n, xIds, xDims } = v;
  const pads = constOf(n.inputs[1]);
  const r = xDims?.length ?? 0;
  if (!xIds || !pads || n.inputs.slice(1).some((i) => i && chan.has(i))) {
    blockInputs(n, "Pad with pads that are not constants");
    return;
  }
  if (pads[0] || pads[1] || pads[r] || pads[r + 1]) {
    blockInputs(n, "Pad pads the batch or channel axis");
    return;
  }
  chan.set(n.outputs[0], xIds);
}

/** Reductions over spatial axes only: channels pass through. */
function traceReduce(t: Trace, v: Visit): void {
  const { chan, constOf, blockInputs } = t;
  const { n, op, xIds, xDims } = v;
  const r = xDims!.length;
  const keep = intAttr(n, "keepdims", 1) === 1;
  const axesIn = n.inputs[1] ? constOf(n.inputs[1]) : intsAttr(n, "axes", []);
  const axes = (axesIn && axesIn.length ? axesIn : xDims!.map((_, i) => i)).map((a) => (a < 0 ? a + r : a));
  if (!xIds || axes.includes(1) || (!keep && axes.includes(0))) {
    blockInputs(n, `${op} over axes [${axes.join(",")}] reduces or moves the channel axis`);
    return;
  }
  chan.set(n.outputs[0], xIds);
}

/** Transpose that keeps batch and channel first: channels pass through. */
function traceTranspose(t: Trace, v: Visit): void {
  const { chan, blockInputs } = t;
  const { n, xIds, xDims } = v;
  const perm = intsAttr(n, "perm", xDims!.map((_, i) => xDims!.length - 1 - i));
  if (!xIds || perm[0] !== 0 || perm[1] !== 1) {
    blockInputs(n, `Transpose with perm [${perm.join(",")}] moves the channel axis`);
    return;
  }
  chan.set(n.outputs[0], xIds);
}

/** Reshape that keeps the leading two dims: channels pass through. */
function traceReshape(t: Trace, v: Visit): void {
  const { chan, dims, constOf, blockInputs } = t;
  const { n, xIds, xDims } = v;
  const oDims = dims(n.outputs[0])!;
  const target = constOf(n.inputs[1]);
  if (!xIds || !target || oDims.length < 2 || oDims[0] !== xDims![0] || oDims[1] !== xDims![1] || target[0] === -1) {
    blockInputs(n, `Reshape [${xDims!.join(",")}] -> [${oDims.join(",")}] touches the channel axis`);
    return;
  }
  // the leading two dims stay, so every element keeps its channel index
  chan.set(n.outputs[0], xIds);
}

/** Which tracer handles an op, in the order they are tried. */
const OP_RULES: readonly { matches: (op: string) => boolean; trace: (t: Trace, v: Visit) => void }[] = [
  { matches: (op) => PASS_THROUGH.has(op), trace: tracePassThrough },
  { matches: (op) => op === "BatchNormalization" || op === "InstanceNormalization", trace: traceNormalization },
  { matches: (op) => ELEMENTWISE.has(op), trace: traceElementwise },
  { matches: (op) => op === "Concat", trace: traceConcat },
  { matches: (op) => op === "Split", trace: traceSplit },
  { matches: (op) => op === "Slice", trace: traceSlice },
  { matches: (op) => op === "Pad", trace: tracePad },
  { matches: (op) => REDUCE.has(op), trace: traceReduce },
  { matches: (op) => op === "Transpose", trace: traceTranspose },
  { matches: (op) => op === "Reshape", trace: traceReshape },
];

/** Builds the channel dependency graph; the graph must be topologically sorted with static shapes. */
export function buildDependencyGraph(g: OnnxGraph, opts: DependencyOptions = {}): DependencyGraph {
  const shapes = inferShapes(g);
  const uf = new UnionFind();
  const chan = new Map<string, number[]>();
  /** ids created for channels that no Conv produces (blocked at once) */
  const orphan = new Set<number>();
  const blocks: { node: string; opType: string; reason: string; ids: number[] }[] = [];
  const producerOf = new Map<number, string>(); // id -> Conv that created it
  const convs = new Map<string, ConvInfo>();
  const protectStem = opts.protectStem ?? true;
  const ignored = new Set([...matchNodes(g, opts.ignore ?? [], "--ignore").values()].flat());

  const fresh = (n: number): number[] => Array.from({ length: n }, () => uf.make());
  const dims = (t: string): number[] | undefined => shapes.get(t)?.dims;
  const constOf = (t: string): number[] | undefined => {
    const c = t ? g.initializers.get(t) : undefined;
    return c ? toNumbers(c) : undefined;
  };
  const block = (n: OnnxNode, reason: string, ids: readonly number[]): void => {
    if (ids.length) blocks.push({ node: n.name, opType: n.opType, reason, ids: [...ids] });
  };
  const blockInputs = (n: OnnxNode, reason: string): void => {
    for (const i of n.inputs) {
      const ids = i ? chan.get(i) : undefined;
      if (ids) block(n, reason, ids);
    }
  };
  const tieAll = (a: readonly number[], b: readonly number[]): void => {
    for (let k = 0; k < a.length; k++) uf.union(a[k], b[k]);
  };

  // tensors with a Conv somewhere upstream: a Conv reading none of them is a stem
  const afterConv = new Set<string>();
  for (const n of g.nodes) if (n.opType === "Conv" || n.inputs.some((i) => afterConv.has(i))) for (const o of n.outputs) afterConv.add(o);

  const t: Trace = { g, uf, chan, orphan, producerOf, convs, ignored, protectStem, afterConv, fresh, dims, constOf, block, blockInputs, tieAll };
  for (const n of g.nodes) {
    const op = n.opType;
    if (op === "Conv") {
      traceConv(t, n);
      continue;
    }
    if (!n.inputs.some((i) => i && chan.has(i))) continue; // constant folding, shape arithmetic, the input's preprocessing
    if (ignored.has(n.name)) {
      blockInputs(n, "protected by --ignore");
      continue;
    }
    const x = n.inputs[0];
    const xIds = chan.get(x);
    const rule = OP_RULES.find((r) => r.matches(op));
    if (rule) rule.trace(t, { n, op, x, xIds, xDims: xIds ? dims(x)! : undefined });
    else blockInputs(n, `op ${op} is not understood by the channel dependency graph`);
  }

  for (const o of g.outputs) {
    const ids = chan.get(o.name);
    if (ids) blocks.push({ node: o.name, opType: "graph output", reason: `graph output ${o.name} keeps its channels`, ids });
  }

  return finalize(g, uf, chan, orphan, blocks, producerOf, convs, shapes);
}

function finalize(
  g: OnnxGraph,
  uf: UnionFind,
  chan: Map<string, number[]>,
  orphan: Set<number>,
  blocks: { node: string; opType: string; reason: string; ids: number[] }[],
  producerOf: Map<number, string>,
  convs: Map<string, ConvInfo>,
  shapes: Map<string, TensorInfo>,
): DependencyGraph {
  // Slots are roots of the channel union-find; groups are slots joined through one producer.
  const groupUf = new UnionFind();
  for (let i = 0; i < uf.size; i++) groupUf.make();
  const byProducer = new Map<string, number[]>();
  for (const [id, conv] of producerOf) {
    const list = byProducer.get(conv);
    if (list) list.push(id);
    else byProducer.set(conv, [id]);
  }
  for (const ids of byProducer.values()) for (const id of ids) groupUf.union(uf.find(ids[0]), uf.find(id));

  const slotOf = new Map<number, number>(); // root -> global slot id
  const slotGroupList: number[] = [];
  const groupIndex = new Map<number, number>(); // groupUf root -> group id
  const groups: ChannelGroup[] = [];
  const slotFor = (id: number): number => {
    const root = uf.find(id);
    let s = slotOf.get(root);
    if (s !== undefined) return s;
    const gr = groupUf.find(root);
    let gid = groupIndex.get(gr);
    if (gid === undefined) {
      gid = groups.length;
      groupIndex.set(gr, gid);
      groups.push({ id: gid, name: "", size: 0, slots: [], producers: [], depthwise: [], consumers: [], prunable: true, reasons: [] });
    }
    s = slotGroupList.length;
    slotGroupList.push(gid);
    slotOf.set(root, s);
    groups[gid].slots.push(s);
    groups[gid].size++;
    return s;
  };

  // Producers first, in graph order, so a group's slot order follows its first Conv's channels.
  const channels = new Map<string, Int32Array>();
  for (const n of g.nodes) {
    const c = convs.get(n.name);
    if (!c) continue;
    const ids = chan.get(c.output);
    if (!ids) continue;
    const slots = Int32Array.from(ids, slotFor);
    channels.set(c.output, slots);
  }
  for (const [t, ids] of chan) if (!channels.has(t)) channels.set(t, Int32Array.from(ids, slotFor));

  const slotGroup = Int32Array.from(slotGroupList);
  const addUnique = (list: string[], v: string): void => {
    if (!list.includes(v)) list.push(v);
  };
  for (const n of g.nodes) {
    const c = convs.get(n.name);
    if (!c) continue;
    const out = channels.get(c.output);
    if (out && out.length) {
      const grp = groups[slotGroup[out[0]]];
      if (c.kind === "depthwise" && c.input) addUnique(grp.depthwise, c.node);
      else for (const s of new Set(Array.from(out, (x) => slotGroup[x]))) addUnique(groups[s].producers, c.node);
    }
    if (c.kind === "dense" && c.input) {
      for (const gid of new Set(Array.from(channels.get(c.input)!, (x) => slotGroup[x]))) addUnique(groups[gid].consumers, c.node);
    }
  }
  for (const grp of groups) grp.name = grp.producers[0] ?? grp.depthwise[0] ?? `group ${grp.id}`;

  for (const id of orphan) {
    const grp = groups[slotGroup[slotOf.get(uf.find(id))!]];
    if (grp.producers.length === 0) addUnique(grp.reasons, "channels not produced by a Conv");
  }
  const skipped: SkippedOp[] = [];
  for (const b of blocks) {
    const names: string[] = [];
    for (const id of b.ids) {
      const grp = groups[slotGroup[slotOf.get(uf.find(id))!]];
      addUnique(grp.reasons, `${b.node} (${b.opType}): ${b.reason}`);
      addUnique(names, grp.name);
    }
    skipped.push({ node: b.node, opType: b.opType, reason: b.reason, groups: names });
  }
  for (const grp of groups) if (grp.reasons.length || grp.producers.length === 0) grp.prunable = false;
  return { groups, channels, slotGroup, convs, skipped, shapes };
}
