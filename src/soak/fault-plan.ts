// `perceptd soak --faults plan.yaml`: timed faults for rigs that test recovery, each one the
// daemon's tests already inject, so the soak shows how long the daemon takes to report it
// (DEGRADED or FAULT on the bus) and to come back to OK.
//
//   faults:
//     - { at: 30s, action: camera-stall, for: 3s }           # no frames from the camera (first one, or camera: ID)
//     - { at: 60s, action: inference-hang, for: 7s }         # the inference worker's thread blocked
//     - { at: 90s, action: subscriber-pause, for: 10s }      # a second subscriber stops reading
//
// `at` counts from the start of the measurement (after warm-up). camera-stall and
// inference-hang go through the daemon's test-only trigger files (src/util/fault-trigger.ts);
// subscriber-pause is a subscriber of the soak's own (subscriber.ts).
import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { z } from "zod";
import { parseDuration } from "./duration.ts";

export const FAULT_ACTIONS = ["camera-stall", "inference-hang", "subscriber-pause"] as const;
export type FaultAction = (typeof FAULT_ACTIONS)[number];

export interface PlannedFault {
  /** ms after the measurement starts */
  atMs: number;
  action: FaultAction;
  /** ms the fault lasts */
  forMs: number;
  /** camera-stall: the camera id */
  camera?: string;
}

const durationField = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return parseDuration(String(v));
    } catch (e) {
      ctx.addIssue({ code: "custom", message: `${what}: ${e instanceof Error ? e.message : String(e)}` });
      return z.NEVER;
    }
  });

const PlanSchema = z
  .object({
    faults: z
      .array(
        z
          .object({
            at: durationField("when, after the warm-up"),
            action: z.enum(FAULT_ACTIONS),
            for: durationField("how long"),
            camera: z.string().optional(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

export class FaultPlanError extends Error {}

/**
 * Reads and checks a plan: every problem in one error naming the file and the entry. The
 * cameras and the soak's duration are checked here too, so a plan that cannot happen fails
 * before a long soak starts.
 */
export async function readFaultPlan(path: string, cameras: readonly string[], durationMs: number): Promise<PlannedFault[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new FaultPlanError(`--faults ${path}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new FaultPlanError(`--faults ${path}: not YAML: ${e instanceof Error ? e.message : String(e)}`);
  }
  const parsed = PlanSchema.safeParse(doc);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(top)"}: ${i.message}`);
    throw new FaultPlanError(`--faults ${path}: invalid plan:\n${lines.join("\n")}\n(expected faults: [{ at: 30s, action: ${FAULT_ACTIONS.join("|")}, for: 3s }, ...])`);
  }
  const problems: string[] = [];
  const plan = parsed.data.faults.map((f, i): PlannedFault => {
    if (f.camera !== undefined && f.action !== "camera-stall") problems.push(`faults.${i}.camera: only camera-stall takes a camera`);
    if (f.camera !== undefined && !cameras.includes(f.camera)) problems.push(`faults.${i}.camera: "${f.camera}" is not a camera of the config (${cameras.join(", ")})`);
    if (f.for < 1) problems.push(`faults.${i}.for: must be at least 1 ms`);
    if (f.at >= durationMs) problems.push(`faults.${i}.at: ${f.at / 1000} s is not before the end of the soak (--duration ${durationMs / 1000} s)`);
    return { atMs: f.at, action: f.action, forMs: f.for, camera: f.action === "camera-stall" ? (f.camera ?? cameras[0]) : undefined };
  });
  if (problems.length > 0) throw new FaultPlanError(`--faults ${path}: invalid plan:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  return plan.sort((a, b) => a.atMs - b.atMs);
}

/** What the subscriber saw of one fault. */
export interface FaultOutcome {
  fault: PlannedFault;
  /** ms from the action to the first health message not OK; null: none seen */
  toDegradedMs: number | null;
  /** that message's state and reasons */
  degradedState: string | null;
  degradedReasons: string[];
  /** ms from the end of the action to the first OK after the degradation; null: not back */
  backToOkMs: number | null;
  /** subscriber-pause: messages the paused subscriber lost */
  pausedSubscriberMissed?: number;
}

/**
 * Reads a fault's effect from the health messages (times: performance.now()) up to `until`
 * (the next fault, or the end of the soak): the daemon's own STOPPING at the end is no
 * effect of the fault.
 */
export function faultOutcome(fault: PlannedFault, startedAt: number, health: readonly { at: number; state: string; reasons: string[] }[], until = Infinity): FaultOutcome {
  const after = health.filter((h) => h.at >= startedAt && h.at < until && h.state !== "STATE_STOPPING");
  const bad = after.find((h) => h.state !== "STATE_OK");
  const endedAt = startedAt + fault.forMs;
  const ok = bad === undefined ? undefined : after.find((h) => h.at > bad.at && h.at >= endedAt && h.state === "STATE_OK");
  return {
    fault,
    toDegradedMs: bad === undefined ? null : bad.at - startedAt,
    degradedState: bad?.state ?? null,
    degradedReasons: bad?.reasons ?? [],
    backToOkMs: ok === undefined ? null : ok.at - endedAt,
  };
}
