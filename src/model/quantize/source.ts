// Which model a quantized file was made from. `perceptd quantize` writes a report beside its
// output (<file>.report.json) naming the source as it was given (a manifest name or a path,
// relative to where the command ran) and, since the report learned it, the source's sha256.
// The sha256 is what identifies the parent: files move and commands run from other folders;
// the name is the fallback for reports written before.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

export interface QuantizeSource {
  /** the source as the quantize command named it: a manifest name or a path */
  name: string;
  sha256?: string;
}

/** Where `perceptd quantize` writes an output file's report without --report: this + ".json" and ".md". */
export function quantizeReportPrefix(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, "") + ".report";
}

/** The source recorded in a quantized file's report, or undefined when it has no readable report. */
export function readQuantizeSource(modelPath: string): QuantizeSource | undefined {
  const report = `${quantizeReportPrefix(modelPath)}.json`;
  if (!existsSync(report)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(report, "utf8"));
  } catch (e) {
    throw new Error(`${report}: not a readable quantize report: ${(e as Error).message}`, { cause: e });
  }
  const model = (parsed as { model?: { source?: unknown; sourceSha256?: unknown } } | null)?.model;
  if (typeof model?.source !== "string") return undefined;
  return { name: model.source, sha256: typeof model.sourceSha256 === "string" ? model.sourceSha256 : undefined };
}

export interface ParentCandidate {
  name: string;
  path: string;
  sha256: string;
}

/**
 * The candidate a quantized file was made from: the one whose bytes match the report's
 * sha256, else the one the report names (manifest name, or a path resolved against the
 * current folder), else undefined.
 */
export function findQuantizeParent<T extends ParentCandidate>(modelPath: string, candidates: readonly T[]): T | undefined {
  const source = readQuantizeSource(modelPath);
  if (source === undefined) return undefined;
  const self = resolve(modelPath);
  const others = candidates.filter((c) => resolve(c.path) !== self);
  if (source.sha256 !== undefined) return others.find((c) => c.sha256 === source.sha256);
  return others.find((c) => c.name === source.name) ?? others.find((c) => resolve(c.path) === resolve(source.name));
}
