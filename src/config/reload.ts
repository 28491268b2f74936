// What a SIGHUP may change, read from the schema's marks (reloadKeys in schema.ts) rather
// than from a list kept beside the daemon: a key marked "apply" takes effect in the running
// daemon, one marked "ignore" is not the daemon's (soak), and every other key needs a
// restart, so a change to it is reported by its path and left as it was.
import { z } from "zod";
import { ConfigSchema, reloadKeys, type Config } from "./schema.ts";

export interface ReloadPlan {
  /** changed keys the running daemon takes up, e.g. "model.scoreThreshold" */
  applied: string[];
  /** changed keys that keep their running value until a restart, e.g. "cameras", "health.publishHz" */
  needsRestart: string[];
  /** the running configuration with the applied keys taken from the new one */
  next: Config;
}

type Mark = "apply" | "ignore" | "restart";

function markOf(field: z.core.$ZodType): Mark {
  return reloadKeys.get(field)?.onReload ?? "restart";
}

/** The object schema inside default/prefault/optional wrappers, or null for a leaf. */
function objectOf(schema: z.core.$ZodType): z.ZodObject | null {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodObject) return s;
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) s = s.unwrap();
    else return null;
  }
}

/** Every key path with a mark other than "restart", walking the schema's nested objects. */
export function reloadMarks(): Record<string, "apply" | "ignore"> {
  const out: Record<string, "apply" | "ignore"> = {};
  const walk = (obj: z.ZodObject, prefix: string): void => {
    for (const [key, field] of Object.entries(obj.shape)) {
      const path = prefix + key;
      const mark = markOf(field);
      if (mark !== "restart") out[path] = mark;
      else {
        const inner = objectOf(field);
        if (inner) walk(inner, `${path}.`);
      }
    }
  };
  walk(ConfigSchema, "");
  return out;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Compares the running configuration with a new, already valid one. Objects are compared
 * key by key down to a marked key or a leaf; a list (cameras) counts as one key.
 */
export function planReload(running: Config, next: Config): ReloadPlan {
  const applied: string[] = [];
  const needsRestart: string[] = [];
  const merged = structuredClone(running);
  const walk = (obj: z.ZodObject, a: Record<string, unknown>, b: Record<string, unknown>, into: Record<string, unknown>, prefix: string): void => {
    for (const [key, field] of Object.entries(obj.shape)) {
      const path = prefix + key;
      const mark = markOf(field);
      const inner = objectOf(field);
      if (mark === "ignore" || same(a[key], b[key])) continue;
      if (mark === "apply") {
        applied.push(path);
        into[key] = structuredClone(b[key]);
      } else if (inner && isRecord(a[key]) && isRecord(b[key]) && isRecord(into[key])) {
        walk(inner, a[key], b[key], into[key], `${path}.`);
      } else {
        needsRestart.push(path);
      }
    }
  };
  walk(ConfigSchema, running as Record<string, unknown>, next as Record<string, unknown>, merged as Record<string, unknown>, "");
  return { applied, needsRestart, next: merged };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
