// `perceptd eval`'s per-set report: one table per data set (never pooled), and the bar's
// verdict when asked. Kept apart from eval.ts, which also runs the single-video and
// COCO-labels evaluations.
import { formatFixed, markdownTable } from "../bench/table.ts";
import type { BarVerdict } from "../../model/eval/bar.ts";
import type { SetAgreement } from "../../model/eval/set-agreement.ts";

const pct = (found: number, of: number): string => (of === 0 ? "" : `${found}/${of}`);

/** One set: per-class AP@0.5 and recall of confident objects, then the summary lines. */
export function renderSetAgreement(s: SetAgreement): string {
  const t = s.thresholds;
  const rows = s.perClass.map((c) => [
    c.label + (c.collapsed ? " (COLLAPSED)" : ""),
    String(c.references),
    formatFixed(c.ap50, 3),
    pct(c.found, c.confident),
    formatFixed(c.recall, 3),
  ]);
  const table = markdownTable(
    [
      { header: "class" },
      { header: "references", align: "right" },
      { header: "AP@0.5", align: "right" },
      { header: "confident found", align: "right" },
      { header: "recall", align: "right" },
    ],
    rows,
  );
  return [
    `${s.set}: ${s.model} against ${s.reference}, ${s.frames} frames`,
    "",
    table,
    "",
    `mAP@0.5 over the ${s.classesPresent} classes the reference found (its detections scoring above ${t.reference} as ground truth, the model's above ${t.predictionFloor} ranked): ${formatFixed(s.map50, 3)}`,
    `recall of the reference's confident objects (score >= ${t.confidentReference}; same class, IoU >= ${t.recallIou}, model score >= ${t.recallModel}): ` +
      `${formatFixed(s.recall, 3)} (${s.found}/${s.confident})`,
    s.collapsed.length === 0
      ? `class collapse: none (no class with >= ${t.collapseMinObjects} confident objects below ${t.collapseRecall})`
      : `class collapse: ${s.collapsed.join(", ")} (recall below ${t.collapseRecall} with >= ${t.collapseMinObjects} confident objects)`,
  ].join("\n");
}

export function renderVerdict(v: BarVerdict): string {
  const rows = v.checks.map((c) => [c.name, c.set ?? "", c.value === null ? "—" : formatFixed(c.value, 3), `>= ${c.threshold}`, c.pass ? "yes" : "NO", c.detail]);
  return [
    `the bar for ${v.model} (against ${v.reference}): ${v.holds ? "HOLDS" : "does not hold"}`,
    "",
    markdownTable([{ header: "check" }, { header: "set" }, { header: "value", align: "right" }, { header: "needs" }, { header: "pass" }, { header: "detail" }], rows),
  ].join("\n");
}
