// TEST-ONLY: faults injected on demand into the running daemon, for `perceptd soak
// --faults` and the daemon's fault tests. Inert unless PERCEPTD_TEST_FAULT_DIR is set;
// never set it in production.
//
// The runner outside the daemon asks for a fault by writing a file into that folder, named
// after the fault ("inference-hang", "camera-stall.<camera id>") and holding its length in
// milliseconds. The stage that owns the fault claims the file by renaming it (so one file
// is one fault, taken by exactly one thread, whichever gets there first) at its next
// chance: the inference worker before its next frame, a camera before it pulls its next
// one. A file rather than a signal or a message: the inference worker is a thread, which
// receives no signals, and a file needs no new path into the stages; checking costs one
// failed rename per frame, and only when the variable is set.
import { readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

export const FAULT_DIR_ENV = "PERCEPTD_TEST_FAULT_DIR";

/** The trigger file's name for a fault. */
export const faultTriggerName = {
  inferenceHang: "inference-hang",
  cameraStall: (camera: string): string => `camera-stall.${camera}`,
} as const;

export interface FaultTriggers {
  /** The milliseconds asked for when a trigger file `name` is waiting (claimed and removed now); null otherwise. */
  take(name: string): number | null;
}

/** The triggers the environment asks for, or null (the normal case). */
export function faultTriggersFromEnv(env: NodeJS.ProcessEnv = process.env): FaultTriggers | null {
  const dir = env[FAULT_DIR_ENV];
  if (dir === undefined || dir === "") return null;
  let claims = 0;
  return {
    take(name) {
      const path = join(dir, name);
      const claimed = `${path}.taken-${process.pid}-${claims++}-${Math.random().toString(36).slice(2)}`;
      try {
        renameSync(path, claimed);
      } catch {
        return null; // no such fault asked for (the normal case), or another thread took it
      }
      const text = readFileSync(claimed, "utf8").trim();
      rmSync(claimed, { force: true });
      const ms = Number(text);
      if (!Number.isInteger(ms) || ms < 1) throw new RangeError(`${path} (${FAULT_DIR_ENV}, test-only fault trigger) must hold an integer number of milliseconds >= 1, got ${JSON.stringify(text)}`);
      return ms;
    },
  };
}
