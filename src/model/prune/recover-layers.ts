// Which Convs least-squares recovery refits (recover.ts). Apart from recover.ts so that the
// command line can list the choices without loading ONNX Runtime.
import type { OnnxGraph } from "../onnx/ir.ts";

/**
 * Which Convs recovery refits: "consumers", those whose input channels were pruned (their
 * outputs change most); "all", those plus every Conv downstream of one, whose input values
 * differ from the dense graph's even where no channel of it was removed (a group kept whole,
 * as rounding leaves small groups, behind a pruned one).
 */
export const RECOVER_LAYERS = ["consumers", "all"] as const;
export type RecoverLayers = (typeof RECOVER_LAYERS)[number];
export const DEFAULT_RECOVER_LAYERS: RecoverLayers = "consumers";

/**
 * `seeds` and every group-1 Conv with initializer weights whose input depends on the output
 * of one of them, in graph (topological) order.
 */
export function downstreamConvs(g: OnnxGraph, seeds: readonly string[]): string[] {
  const seedSet = new Set(seeds);
  const changed = new Set<string>();
  const out: string[] = [];
  for (const n of g.nodes) {
    const reads = n.inputs.some((i) => i !== "" && changed.has(i));
    const refittable =
      n.opType === "Conv" && (n.attrs.group?.kind === "int" ? n.attrs.group.value : 1) === 1 && n.inputs[1] !== undefined && g.initializers.has(n.inputs[1]);
    if (seedSet.has(n.name) || (reads && refittable)) out.push(n.name);
    if (seedSet.has(n.name) || reads) for (const o of n.outputs) if (o) changed.add(o);
  }
  return out;
}
