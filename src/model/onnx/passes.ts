// Graph clean-up passes over OnnxGraph: constant folding, Transpose cancellation, bias
// folding into Conv, Identity removal and dead-node elimination. Each returns whether it
// changed the graph; optimize() runs them until nothing changes.
import { broadcastBinary, broadcastShapes } from "../convert/broadcast.ts";
import { consumers, intAttr, intsAttr, producers, renameUses, topoSort, type OnnxGraph, type OnnxNode } from "./ir.ts";
import { dtypeFromOnnx } from "./serialize.ts";
import { floatTensor, fromNumbers, sizeOf, toNumbers, transposeTensor, type Tensor } from "./tensor.ts";

type Folder = (node: OnnxNode, inputs: Tensor[]) => Tensor | null;

const ARITH: Record<string, (x: number, y: number) => number> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => x / y,
};

const FOLDERS: Record<string, Folder> = {
  Identity: (_n, [x]) => x,
  Transpose: (n, [x]) => transposeTensor(x, intsAttr(n, "perm", x.dims.map((_, i) => x.dims.length - 1 - i))),
  Reshape: (_n, [x, shape]) => {
    const target = toNumbers(shape).map((d, i) => (d === 0 ? x.dims[i] : d));
    const known = target.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
    return { ...x, dims: target.map((d) => (d === -1 ? sizeOf(x.dims) / known : d)) };
  },
  Unsqueeze: (_n, [x, axesT]) => {
    const dims = [...x.dims];
    const rank = dims.length + axesT.dims[0];
    for (const a of toNumbers(axesT).map((v) => (v < 0 ? v + rank : v)).sort((p, q) => p - q)) dims.splice(a, 0, 1);
    return { ...x, dims };
  },
  Squeeze: (_n, [x, axesT]) => {
    const axes = axesT ? toNumbers(axesT).map((a) => (a < 0 ? a + x.dims.length : a)) : x.dims.flatMap((d, i) => (d === 1 ? [i] : []));
    return { ...x, dims: x.dims.filter((_, i) => !axes.includes(i)) };
  },
  Cast: (n, [x]) => {
    const to = dtypeFromOnnx(intAttr(n, "to", 1), `node ${n.name}`);
    if (to === "float16" || x.dtype === "float16") return null;
    return fromNumbers(to, x.dims, toNumbers(x));
  },
  ...Object.fromEntries(
    Object.entries(ARITH).map(([op, f]) => [
      op,
      (_n: OnnxNode, [a, b]: Tensor[]): Tensor | null => {
        if (a.dtype !== "float32" || b.dtype !== "float32") return null;
        const dims = broadcastShapes(a.dims, b.dims);
        if (!dims) return null;
        return floatTensor(dims, broadcastBinary(a.data as Float32Array, a.dims, b.data as Float32Array, b.dims, dims, f));
      },
    ]),
  ),
};

export function foldConstants(g: OnnxGraph): boolean {
  let changed = false;
  const outputNames = new Set(g.outputs.map((o) => o.name));
  g.nodes = g.nodes.filter((n) => {
    const fold = FOLDERS[n.opType];
    if (!fold || n.outputs.length !== 1 || outputNames.has(n.outputs[0])) return true;
    const ins = n.inputs.filter((i) => i !== "");
    if (!ins.length || !ins.every((i) => g.initializers.has(i))) return true;
    const result = fold(n, ins.map((i) => g.initializers.get(i)!));
    if (!result) return true;
    g.initializers.set(n.outputs[0], result);
    changed = true;
    return false;
  });
  return changed;
}

function isIdentityPerm(p: number[]): boolean {
  return p.every((v, i) => v === i);
}

export function cancelTransposes(g: OnnxGraph): boolean {
  let changed = false;
  const prod = producers(g);
  const outputNames = new Set(g.outputs.map((o) => o.name));
  for (const n of g.nodes) {
    if (n.opType !== "Transpose") continue;
    const first = prod.get(n.inputs[0]);
    const p2 = intsAttr(n, "perm", []);
    if (first?.opType === "Transpose") {
      const p1 = intsAttr(first, "perm", []);
      // out axis i = first's axis p2[i] = source axis p1[p2[i]]
      n.inputs = [first.inputs[0]];
      n.attrs.perm = { kind: "ints", value: p2.map((i) => p1[i]) };
      changed = true;
    }
    const perm = intsAttr(n, "perm", []);
    if (perm.length && isIdentityPerm(perm) && !outputNames.has(n.outputs[0])) {
      renameUses(g, n.outputs[0], n.inputs[0]);
      n.opType = "Identity";
      n.attrs = {};
      changed = true;
    }
  }
  return changed;
}

/** Conv followed by Add of a per-channel constant: the constant joins the Conv's bias. */
export function fuseConvBias(g: OnnxGraph): boolean {
  let changed = false;
  const cons = consumers(g);
  const outputNames = new Set(g.outputs.map((o) => o.name));
  const removed = new Set<OnnxNode>();
  for (const conv of g.nodes) {
    if (conv.opType !== "Conv" || removed.has(conv)) continue;
    const y = conv.outputs[0];
    const users = cons.get(y) ?? [];
    if (users.length !== 1 || outputNames.has(y)) continue;
    const add = users[0];
    if (add.opType !== "Add") continue;
    const other = add.inputs[0] === y ? add.inputs[1] : add.inputs[0];
    const k = g.initializers.get(other);
    const w = g.initializers.get(conv.inputs[1]);
    if (!k || !w || k.dtype !== "float32") continue;
    const cout = w.dims[0];
    const perChannel =
      sizeOf(k.dims) === 1 ||
      (sizeOf(k.dims) === cout && k.dims.length >= 3 && k.dims.length <= 4 && k.dims[k.dims.length - 3] === cout);
    if (!perChannel) continue;
    const oldBias = conv.inputs[2] ? g.initializers.get(conv.inputs[2]) : undefined;
    if (conv.inputs[2] && !oldBias) continue;
    const bias = new Float32Array(cout);
    for (let c = 0; c < cout; c++) {
      bias[c] = (oldBias ? (oldBias.data as Float32Array)[c] : 0) + (k.data as Float32Array)[sizeOf(k.dims) === 1 ? 0 : c];
    }
    const biasName = `${conv.name}/bias_folded`;
    g.initializers.set(biasName, { dtype: "float32", dims: [cout], data: bias });
    conv.inputs = [conv.inputs[0], conv.inputs[1], biasName];
    conv.outputs = [add.outputs[0]];
    removed.add(add);
    changed = true;
  }
  if (removed.size) g.nodes = g.nodes.filter((n) => !removed.has(n));
  return changed;
}

/**
 * A zero-valued constant Pad whose only readers are Convs becomes part of their pads.
 * NanoDet pads explicitly before every convolution (an artefact of its ONNX -> TF export);
 * folded, ONNX Runtime pads inside the convolution instead of copying the tensor.
 */
export function foldPadIntoConv(g: OnnxGraph): boolean {
  let changed = false;
  const cons = consumers(g);
  const outputNames = new Set(g.outputs.map((o) => o.name));
  const removed = new Set<OnnxNode>();
  for (const pad of g.nodes) {
    if (pad.opType !== "Pad") continue;
    const mode = pad.attrs.mode;
    if (mode && mode.kind === "string" && mode.value !== "constant") continue;
    const padsT = g.initializers.get(pad.inputs[1]);
    if (!padsT || padsT.dims[0] !== 8) continue;
    const value = pad.inputs[2] ? g.initializers.get(pad.inputs[2]) : undefined;
    if (pad.inputs[2] && (!value || toNumbers(value)[0] !== 0)) continue;
    const p = toNumbers(padsT);
    if (p[0] || p[1] || p[4] || p[5] || p.some((v) => v < 0)) continue;
    const users = cons.get(pad.outputs[0]) ?? [];
    if (!users.length || outputNames.has(pad.outputs[0]) || !users.every((u) => u.opType === "Conv" && u.inputs[0] === pad.outputs[0])) continue;
    for (const conv of users) {
      const cp = intsAttr(conv, "pads", [0, 0, 0, 0]);
      conv.attrs.pads = { kind: "ints", value: [cp[0] + p[2], cp[1] + p[3], cp[2] + p[6], cp[3] + p[7]] };
      conv.inputs[0] = pad.inputs[0];
    }
    removed.add(pad);
    changed = true;
  }
  if (removed.size) g.nodes = g.nodes.filter((n) => !removed.has(n));
  return changed;
}

export function removeIdentities(g: OnnxGraph): boolean {
  let changed = false;
  const outputNames = new Set(g.outputs.map((o) => o.name));
  const inputNames = new Set(g.inputs.map((i) => i.name));
  const prod = producers(g);
  const keep: OnnxNode[] = [];
  for (const n of g.nodes) {
    if (n.opType !== "Identity") {
      keep.push(n);
      continue;
    }
    const [x] = n.inputs;
    const [y] = n.outputs;
    if (!outputNames.has(y)) {
      renameUses(g, y, x);
      changed = true;
      continue;
    }
    const p = prod.get(x);
    if (p && !outputNames.has(x) && !inputNames.has(x)) {
      // The graph output keeps its public name; the producer writes it directly.
      p.outputs = p.outputs.map((o) => (o === x ? y : o));
      renameUses(g, x, y);
      changed = true;
      continue;
    }
    keep.push(n);
  }
  g.nodes = keep;
  return changed;
}

export function eliminateDeadNodes(g: OnnxGraph): boolean {
  const prod = producers(g);
  const live = new Set<OnnxNode>();
  const needed = new Set<string>();
  const stack = g.outputs.map((o) => o.name);
  while (stack.length) {
    const t = stack.pop()!;
    if (needed.has(t)) continue;
    needed.add(t);
    const p = prod.get(t);
    if (p && !live.has(p)) {
      live.add(p);
      for (const i of p.inputs) if (i) stack.push(i);
    }
  }
  const before = g.nodes.length + g.initializers.size;
  g.nodes = g.nodes.filter((n) => live.has(n));
  for (const k of [...g.initializers.keys()]) if (!needed.has(k)) g.initializers.delete(k);
  return g.nodes.length + g.initializers.size !== before;
}

/** Runs every pass until the graph stops changing, then orders nodes topologically. */
export function optimize(g: OnnxGraph): void {
  for (let round = 0; round < 20; round++) {
    let changed = false;
    changed = foldConstants(g) || changed;
    changed = cancelTransposes(g) || changed;
    changed = removeIdentities(g) || changed;
    changed = fuseConvBias(g) || changed;
    changed = foldPadIntoConv(g) || changed;
    changed = eliminateDeadNodes(g) || changed;
    if (!changed) break;
  }
  topoSort(g);
}
