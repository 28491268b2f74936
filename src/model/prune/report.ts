// The pruning report, as JSON (for scripts and the manifest's build record) and Markdown (for
// people and issues): what was removed, what it cost and what it bought, measured, with
// everything the pruner refused to touch and why.
import { writeFileAtomic } from "../../util/atomic-write.ts";
import { machineInfo, type MachineInfo } from "../../util/machine-info.ts";
import type { AgreementReport } from "../eval/agreement.ts";
import type { SkippedOp } from "./dependency-graph.ts";
import type { LatencyResult } from "./latency.ts";
import type { GroupReport, LayerReport } from "./structured.ts";
import type { SensitivityRow } from "./sweep.ts";
import { NO_SPEEDUP_NOTE, type UnstructuredLayer } from "./unstructured.ts";

export interface BeforeAfter {
  before: number;
  after: number;
}

export interface RecoveryLayerReport {
  node: string;
  relMseBefore: number;
  relMseAfter: number;
  samples: number;
  /** On the positions held out of the fit (absent in reports written before they were recorded). */
  heldOutBefore?: number;
  heldOutAfter?: number;
  /** relative ridge of the kept refit; null when the refit was not kept (absent in older reports) */
  ridge?: number | null;
}

export interface PruneReport {
  schemaVersion: 1;
  createdAt: string;
  command: string;
  machine: Omit<MachineInfo, "totalMemoryGiB">;
  model: { source: string; output: string };
  method: "structured" | "unstructured";
  /** the options the run used, as given and as defaulted */
  settings: Record<string, unknown>;
  parameters: BeforeAfter;
  /** 2 x multiply-accumulates of the Conv layers */
  flops: BeforeAfter;
  fileBytes: BeforeAfter;
  /** deflate level 9 of the file */
  compressedBytes: BeforeAfter;
  groups?: GroupReport[];
  layers?: LayerReport[];
  skipped?: SkippedOp[];
  changedConvs?: string[];
  unstructured?: { sparsity: number; layers: UnstructuredLayer[]; skipped: { node: string; reason: string }[]; note: string };
  sweep?: {
    levels: number[];
    rows: SensitivityRow[];
    picked: Record<string, number>;
    estimatedDistortion: number;
    /** pruned / dense from the profiled Conv times (latency targets only) */
    estimatedMsFraction?: number;
    target: string;
  };
  recovery?:
    | {
        frames: number;
        /** what the ridge pulled toward, its strength ("auto": picked per layer on the validation frames) and those frames */
        ridge?: { toward: "zero" | "original"; strength: number | "auto"; validationFrames: number; validation: string[] | null; validationSha256?: string };
        layers: RecoveryLayerReport[];
      }
    | { skipped: string };
  latency?: LatencyResult;
  agreement?: AgreementReport;
  check: { onnxChecker: string; onnxruntime: string };
  notes: string[];
}

/** The machine fields a pruning report records (the benches' machineInfo without memory). */
export function machine(): PruneReport["machine"] {
  const { cpu, cores, availableParallelism, arch, platform } = machineInfo();
  return { cpu, cores, availableParallelism, arch, platform };
}

const fmtInt = (n: number): string => n.toLocaleString("en-US");
const mb = (n: number): string => `${(n / 1e6).toFixed(2)} MB`;
const pct = (a: number, b: number): string => (b === 0 ? "-" : `${((100 * a) / b).toFixed(1)}%`);
const esc = (s: string): string => s.replace(/\|/g, "\\|");

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`)].join("\n");
}

export function renderMarkdown(r: PruneReport): string {
  const out: string[] = [];
  out.push(`# Pruning report: ${r.model.source} -> ${r.model.output}`, "");
  out.push(`Method: **${r.method}**. Created ${r.createdAt} on ${r.machine.cpu} (${r.machine.availableParallelism} of ${r.machine.cores} cores usable, ${r.machine.arch}).`, "");
  out.push("```", r.command, "```", "");
  out.push(
    table(
      ["", "before", "after", "after / before"],
      [
        ["parameters", fmtInt(r.parameters.before), fmtInt(r.parameters.after), pct(r.parameters.after, r.parameters.before)],
        ["FLOPs (Conv, 2 x MACs)", `${(r.flops.before / 1e9).toFixed(3)} G`, `${(r.flops.after / 1e9).toFixed(3)} G`, pct(r.flops.after, r.flops.before)],
        ["file size", mb(r.fileBytes.before), mb(r.fileBytes.after), pct(r.fileBytes.after, r.fileBytes.before)],
        ["compressed (deflate -9)", mb(r.compressedBytes.before), mb(r.compressedBytes.after), pct(r.compressedBytes.after, r.compressedBytes.before)],
      ],
    ),
    "",
  );
  if (r.latency) {
    const l = r.latency;
    out.push(`## Latency (ONNX Runtime CPU, ${l.threads} thread(s), ${l.runs} runs each after ${l.warmup} warm-up, ${l.order})`, "");
    out.push(
      table(
        ["model", "p50 ms", "p90 ms", "mean ms", "min ms", "speed-up (p50)"],
        l.rows.map((x) => [x.label, x.stats.p50Ms.toFixed(2), x.stats.p90Ms.toFixed(2), x.stats.meanMs.toFixed(2), x.stats.minMs.toFixed(2), `${x.speedup.toFixed(2)}x`]),
      ),
      "",
    );
  }
  if (r.unstructured) {
    const u = r.unstructured;
    out.push("## Unstructured sparsity", "", `**${u.note}**`, "", `Zeros in the pruned Conv weights: ${(u.sparsity * 100).toFixed(1)}%.`, "");
    out.push(table(["layer", "weights", "zeros before", "zeros after", "sparsity"], u.layers.map((x) => [x.node, fmtInt(x.weights), fmtInt(x.zerosBefore), fmtInt(x.zerosAfter), `${(x.sparsity * 100).toFixed(1)}%`])), "");
    if (u.skipped.length) out.push("Left dense:", "", ...u.skipped.map((s) => `- ${s.node}: ${s.reason}`), "");
  }
  if (r.agreement) {
    const a = r.agreement;
    out.push("## Agreement with the dense parent", "");
    out.push(
      `${a.frames} frames of ${a.video} (indices ${a.frameIndices[0]}..${a.frameIndices.at(-1)}, none used for calibration). ` +
        `Reference: the dense model's detections scoring above ${a.referenceThreshold}; the pruned model's detections above ${a.predictionScoreFloor} are ranked.`,
      "",
    );
    out.push(
      table(
        ["class", "AP@0.5", "AP@0.5:0.95", "reference boxes", "predictions"],
        [
          ...a.perClass.map((c) => [c.label, c.ap50.toFixed(3), c.ap50_95.toFixed(3), String(c.references), String(c.predictions)]),
          ["**mean**", a.map50.toFixed(3), a.map50_95.toFixed(3), "", ""],
        ],
      ),
      "",
      `Recall of people at the daemon's operating threshold (${a.operatingThreshold}): ${a.personRecall.toFixed(3)}.`,
      "",
    );
  }
  if (r.recovery) {
    out.push("## Least-squares recovery", "");
    if ("skipped" in r.recovery) out.push(r.recovery.skipped, "");
    else {
      const rg = r.recovery.ridge;
      const validation = rg !== undefined && rg.validationFrames > 0;
      out.push(
        `Refitted on ${r.recovery.frames} calibration frame(s); relative MSE of each layer's output against the dense layer, on the calibration samples ` +
          (validation
            ? `it was fitted on and on ${rg.validationFrames} validation frame(s) (${(rg.validation ?? []).join(", ")}) it never saw, which pick the ridge and veto a refit.`
            : "it was fitted on and on the sampled positions held out of the fit (what the refit is worth on data it did not see)."),
        "",
      );
      if (rg !== undefined) out.push(`Ridge toward ${rg.toward === "original" ? "the original weights of the kept channels (W0)" : "zero"}, strength ${String(rg.strength)} (relative to the mean diagonal of XᵀX).`, "");
      const held = (v: number | undefined): string => (v === undefined ? "-" : v.toExponential(3));
      out.push(
        table(
          ["layer", "rel. MSE before", "rel. MSE after", "held-out before", "held-out after", "ridge", "samples"],
          r.recovery.layers.map((x) => [x.node, x.relMseBefore.toExponential(3), x.relMseAfter.toExponential(3), held(x.heldOutBefore), held(x.heldOutAfter), x.ridge === undefined || x.ridge === null ? "-" : x.ridge.toExponential(0), String(x.samples)]),
        ),
        "",
      );
    }
  }
  if (r.groups) {
    const pruned = r.groups.filter((g) => g.after !== g.before);
    out.push("## Channel groups", "", `${r.groups.length} groups, ${r.groups.filter((g) => g.prunable).length} prunable, ${pruned.length} pruned.`, "");
    out.push(
      table(
        ["group (first Conv)", "Convs", "channels before", "after", "ratio asked", "prunable"],
        r.groups.map((g) => [g.name, String(g.producers.length), String(g.before), String(g.after), g.prunable ? g.ratio.toFixed(2) : "-", g.prunable ? "yes" : "no"]),
      ),
      "",
    );
  }
  if (r.layers) {
    out.push("## Conv layers", "");
    out.push(
      table(
        ["layer", "kind", "in", "out", "params", "MFLOPs"],
        r.layers.map((l) => [
          l.node,
          l.kind,
          l.inBefore === l.inAfter ? String(l.inBefore) : `${l.inBefore} -> ${l.inAfter}`,
          l.outBefore === l.outAfter ? String(l.outBefore) : `${l.outBefore} -> ${l.outAfter}`,
          l.paramsBefore === l.paramsAfter ? fmtInt(l.paramsBefore) : `${fmtInt(l.paramsBefore)} -> ${fmtInt(l.paramsAfter)}`,
          l.macsBefore === l.macsAfter ? (2 * l.macsBefore / 1e6).toFixed(1) : `${((2 * l.macsBefore) / 1e6).toFixed(1)} -> ${((2 * l.macsAfter) / 1e6).toFixed(1)}`,
        ]),
      ),
      "",
    );
  }
  if (r.skipped) {
    out.push("## Left untouched, and why", "");
    if (r.skipped.length === 0) out.push("Nothing: every channel group was understood.", "");
    else out.push(table(["node", "op", "reason", "groups kept whole"], r.skipped.map((s) => [s.node, s.opType, s.reason, s.groups.join(", ")])), "");
  }
  if (r.sweep) {
    out.push(`## Sensitivity sweep (${r.sweep.target})`, "");
    out.push("Distortion: mean relative squared error of the graph outputs against the dense graph on calibration frames, with only that group pruned.", "");
    const ms = r.sweep.rows.some((x) => x.ms !== undefined);
    out.push(
      table(
        ["group", "channels", "ratio", "kept", "distortion", ...(ms ? ["est. ms (whole graph)"] : [])],
        r.sweep.rows.map((x) => [x.group, String(x.size), x.ratio.toFixed(2), String(x.kept), x.distortion.toExponential(3), ...(ms ? [x.ms!.toFixed(2)] : [])]),
      ),
      "",
    );
    out.push("Picked ratios:", "", ...Object.entries(r.sweep.picked).map(([g, v]) => `- ${g}: ${v}`), "");
  }
  out.push("## Checks", "", `- ONNX checker (full check, strict shape inference): ${r.check.onnxChecker}`, `- ONNX Runtime (CPU) loads and runs it: ${r.check.onnxruntime}`, "");
  if (r.notes.length) out.push("## Notes", "", ...r.notes.map((n) => `- ${n}`), "");
  return out.join("\n");
}

/** Writes `<prefix>.json` and `<prefix>.md`, each atomically. */
export async function writeReport(prefix: string, r: PruneReport): Promise<{ json: string; markdown: string }> {
  const json = `${prefix}.json`;
  const markdown = `${prefix}.md`;
  await writeFileAtomic(json, JSON.stringify(r, null, 2) + "\n");
  await writeFileAtomic(markdown, renderMarkdown(r));
  return { json, markdown };
}

export { NO_SPEEDUP_NOTE };
