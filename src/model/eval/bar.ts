// The bar a pruned (or quantized) variant must hold before it becomes the default, judged on
// every set it names (issue 22): side by side with the dense model on ONNX Runtime's CPU,
//   - at least 1.5x lower latency,
//   - person AP@0.5 >= 0.92 on the held-out frames of vtest.avi,
//   - on the out-of-scene set, recall >= 0.90 of the dense model's confident objects and no
//     class collapse.
// One function evaluates models against it and returns a verdict a command, the build of the
// shipped variants or a test can act on.
import { readVerifiedModel, type ResolvedModel } from "../../infer/manifest.ts";
import { decodeModel } from "../onnx/serialize.ts";
import { measureSideBySide } from "../prune/latency.ts";
import { COLLAPSE_RECALL, evaluateOnSets, type EvalProgress, type SessionChoice, type SetAgreement } from "./set-agreement.ts";

export const BAR = {
  speedup: 1.5,
  heldOutSet: "vtest:held-out",
  heldOutPersonAp50: 0.92,
  outOfSceneSet: "corpus:out-of-scene",
  outOfSceneRecall: 0.9,
} as const;

export interface BarCheck {
  name: "latency" | "held-out person AP@0.5" | "out-of-scene recall" | "out-of-scene class collapse";
  set: string | null;
  /** The measured figure; null when not measured. */
  value: number | null;
  threshold: number;
  pass: boolean;
  detail: string;
}

export interface LatencyFigures {
  referenceP50Ms: number;
  modelP50Ms: number;
  /** referenceP50Ms / modelP50Ms, from one interleaved run. */
  speedup: number;
  threads: number;
  runs: number;
}

export interface BarVerdict {
  model: string;
  reference: string;
  holds: boolean;
  checks: BarCheck[];
  sets: SetAgreement[];
  latency: LatencyFigures | null;
}

const fmt = (v: number): string => (Number.isNaN(v) ? "n/a" : v.toFixed(3));

/** The checks on figures already measured; a missing set or latency fails its check. */
export function judgeBar(model: string, reference: string, sets: readonly SetAgreement[], latency: LatencyFigures | null): BarVerdict {
  const heldOut = sets.find((s) => s.set === BAR.heldOutSet);
  const oos = sets.find((s) => s.set === BAR.outOfSceneSet);
  const person = heldOut?.perClass.find((c) => c.label === "person");
  const checks: BarCheck[] = [
    latency === null
      ? { name: "latency", set: null, value: null, threshold: BAR.speedup, pass: false, detail: "not measured" }
      : {
          name: "latency",
          set: null,
          value: latency.speedup,
          threshold: BAR.speedup,
          pass: latency.speedup >= BAR.speedup,
          detail: `p50 ${latency.modelP50Ms.toFixed(1)} ms vs ${latency.referenceP50Ms.toFixed(1)} ms dense (${latency.threads} thread(s), ${latency.runs} interleaved runs)`,
        },
    person === undefined
      ? { name: "held-out person AP@0.5", set: BAR.heldOutSet, value: null, threshold: BAR.heldOutPersonAp50, pass: false, detail: `${BAR.heldOutSet} not evaluated` }
      : {
          name: "held-out person AP@0.5",
          set: BAR.heldOutSet,
          value: person.ap50,
          threshold: BAR.heldOutPersonAp50,
          pass: person.ap50 >= BAR.heldOutPersonAp50,
          detail: `${person.references} reference people on ${heldOut!.frames} frames`,
        },
    oos === undefined
      ? { name: "out-of-scene recall", set: BAR.outOfSceneSet, value: null, threshold: BAR.outOfSceneRecall, pass: false, detail: `${BAR.outOfSceneSet} not evaluated` }
      : {
          name: "out-of-scene recall",
          set: BAR.outOfSceneSet,
          value: oos.recall,
          threshold: BAR.outOfSceneRecall,
          pass: oos.recall >= BAR.outOfSceneRecall,
          detail: `${oos.found} of ${oos.confident} confident reference objects found on ${oos.frames} frames`,
        },
    oos === undefined
      ? { name: "out-of-scene class collapse", set: BAR.outOfSceneSet, value: null, threshold: COLLAPSE_RECALL, pass: false, detail: `${BAR.outOfSceneSet} not evaluated` }
      : {
          name: "out-of-scene class collapse",
          set: BAR.outOfSceneSet,
          value: Math.min(...oos.perClass.filter((c) => c.confident >= oos.thresholds.collapseMinObjects).map((c) => c.recall), 1),
          threshold: oos.thresholds.collapseRecall,
          pass: oos.collapsed.length === 0,
          detail:
            oos.collapsed.length === 0
              ? `every class with >= ${oos.thresholds.collapseMinObjects} confident objects found >= ${oos.thresholds.collapseRecall}`
              : `collapsed: ${oos.perClass.filter((c) => c.collapsed).map((c) => `${c.label} ${c.found}/${c.confident} (${fmt(c.recall)})`).join(", ")}`,
        },
  ];
  return { model, reference, holds: checks.every((c) => c.pass), checks, sets: [...sets], latency };
}

export interface BarOptions {
  models: readonly ResolvedModel[];
  /** The dense model. */
  reference: ResolvedModel;
  /** Measure latency side by side (default: yes, 30 runs); false leaves the latency check failing as "not measured". */
  latency?: { runs?: number; threads?: number } | false;
  session?: SessionChoice;
  onProgress?: (p: EvalProgress | { set: "latency"; model: string; done: number; total: number }) => void;
}

/** Each model against the bar: both sets evaluated whole, latency measured against the reference. */
export async function evaluateAgainstBar(opts: BarOptions): Promise<BarVerdict[]> {
  // Latency first: it is quick, and a model that cannot be timed fails before the long part.
  const latencies: (LatencyFigures | null)[] = [];
  for (const m of opts.models) {
    if (opts.latency === false) {
      latencies.push(null);
      continue;
    }
    const graphs = [];
    for (const x of [opts.reference, m]) graphs.push({ label: x.name, graph: decodeModel(await readVerifiedModel(x), x.path) });
    const runs = opts.latency?.runs ?? 30;
    const r = await measureSideBySide(graphs, { runs, threads: opts.latency?.threads, onProgress: (done, total) => opts.onProgress?.({ set: "latency", model: m.name, done, total }) });
    latencies.push({ referenceP50Ms: r.rows[0].stats.p50Ms, modelP50Ms: r.rows[1].stats.p50Ms, speedup: r.rows[1].speedup, threads: r.threads, runs: r.runs });
  }
  const sets = await evaluateOnSets({ models: opts.models, reference: opts.reference, sets: [BAR.heldOutSet, BAR.outOfSceneSet], session: opts.session, onProgress: opts.onProgress });
  return opts.models.map((m, k) => judgeBar(m.name, opts.reference.name, sets.filter((s) => s.model === m.name), latencies[k]));
}

/**
 * The bar's third line alone (out-of-scene recall and no class collapse): what a pruned
 * variant must hold to ship at all, default or not (`perceptd models build-pruned`).
 */
export function findsOutOfScene(v: BarVerdict): boolean {
  const lines = v.checks.filter((c) => c.name === "out-of-scene recall" || c.name === "out-of-scene class collapse");
  return lines.length === 2 && lines.every((c) => c.pass);
}
