// The Markdown view of a quantization report: what was quantized per layer and why the rest
// stayed float, calibration, the sweep, latency with the CPU's int8 features beside it.
import type { QuantizeReport } from "./pipeline.ts";

const esc = (s: string): string => s.replace(/\|/g, "\\|");
const f3 = (v: number): string => (Number.isNaN(v) ? "n/a" : v.toFixed(3));

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`)].join("\n");
}

export function renderQuantizeMarkdown(r: QuantizeReport): string {
  const s = r.settings;
  const out: string[] = [];
  out.push(`# Quantization report: ${r.model.source} -> ${r.model.output}`, "");
  out.push(`Created ${r.createdAt} on ${r.machine.cpu} (${r.machine.availableParallelism} of ${r.machine.cores} cores usable, ${r.machine.arch}); ${r.machine.int8.summary}.`, "");
  out.push("```", r.command, "```", "");
  out.push(
    `Static INT8 in the QDQ format: weights ${s.weights}; activations ${s.activations === "int8" ? "int8 symmetric (zero point 0; TensorRT and ONNX Runtime)" : "uint8 asymmetric (ONNX Runtime CPU)"}; ` +
      `ranges by ${s.method}${s.percentile === null ? "" : ` (${s.percentile} %)`} on ${s.calibration.frames} of ${s.calibration.of} frames of ${s.calibration.specs.join(" ")}.`,
    "",
  );
  out.push(`File: ${(r.model.bytesBefore / 1e6).toFixed(2)} MB -> ${(r.model.bytesAfter / 1e6).toFixed(2)} MB. Checks: ONNX checker ${r.checks.onnxChecker}; ONNX Runtime ${r.checks.onnxRuntime}.`, "");
  if (r.latency !== null) {
    out.push(
      `Latency (ONNX Runtime CPU, ${r.latency.threads} thread(s), ${r.latency.runs} interleaved runs): float p50 ${r.latency.floatP50Ms.toFixed(1)} ms, int8 ${r.latency.int8P50Ms.toFixed(1)} ms, ` +
        `**${r.latency.speedup.toFixed(2)}x** (${r.machine.int8.summary}).`,
      "",
    );
  }
  if (r.agreement !== null) {
    const a = r.agreement;
    const person = a.perClass.find((c) => c.label === "person");
    out.push(
      `Agreement with ${a.reference} on ${a.set} (${a.frames} frames; validation data, not a test set): mAP@0.5 ${f3(a.map50)}, person AP@0.5 ${f3(person?.ap50 ?? Number.NaN)}, ` +
        `recall of confident objects ${f3(a.recall)} (${a.found}/${a.confident})${a.collapsed.length ? `, collapsed: ${a.collapsed.join(", ")}` : ""}.`,
      "",
    );
  }
  out.push("## Layers in int8", "");
  out.push(
    table(
      ["layer", "op", "input scale", "zero point", "channels", "weight scales", "weight error (mean, relative)"],
      r.layers.map((l) => [l.node, l.opType, l.inputScale.toExponential(3), String(l.inputZeroPoint), String(l.weightChannels), `${l.weightScaleMin.toExponential(2)} .. ${l.weightScaleMax.toExponential(2)}`, `${(100 * l.weightError).toFixed(2)} %`]),
    ),
    "",
  );
  out.push(`Ops kept in int8 between them: ${r.chain.length ? r.chain.join(", ") : "none"}.`, "");
  out.push("## Layers kept float", "");
  out.push(table(["layer", "op", "why"], r.keptFloat.map((k) => [k.node, k.opType, k.reason === "excluded" && r.sweep?.keepFloat.includes(k.node) ? "sweep" : k.reason])), "");
  if (r.sweep !== null) {
    out.push("## Sensitivity sweep", "");
    out.push(`Screen (each layer quantized alone; relative squared error of the outputs), worst first:`, "");
    out.push(table(["layer", "output error"], r.sweep.screen.map((l) => [l.node, l.outputError.toExponential(3)])), "");
    out.push(`Confirmed on ${"validation frames"} to agreement ${r.sweep.target} (min of mAP@0.5 and recall): ${r.sweep.reached ? "reached" : "NOT reached; the best step is used"}.`, "");
    out.push(table(["layers kept float", "agreement", "detail"], r.sweep.steps.map((st) => [st.keptFloat.join(", ") || "(none)", f3(st.agreement), st.detail])), "");
  }
  out.push("## Activation ranges", "");
  out.push(table(["tensor", "range", "scale", "zero point"], r.activations.map((a) => [a.tensor, `${a.min.toPrecision(4)} .. ${a.max.toPrecision(4)}`, a.scale.toExponential(3), String(a.zeroPoint)])), "");
  return out.join("\n");
}
