// A model named on the command line: a manifest name, or an ONNX file such as a pruned
// variant that is not (yet) in the manifest. A file borrows the entry of the manifest model
// it is interchangeable with (same input name, dtype and shape, and every output the
// decoder reads), so it is preprocessed and decoded exactly like that model.
import { readFile, stat } from "node:fs/promises";
import { isAbsolute, relative, resolve } from "node:path";
import { decodeModel } from "../onnx/serialize.ts";
import { resolveModel, sha256Hex, type Manifest, type ModelEntry, type ResolvedModel } from "../../infer/manifest.ts";

function decoderOutputs(entry: ModelEntry): string[] {
  const d = entry.decoder;
  switch (d.kind) {
    case "nanodet-gfl":
      return d.outputs.levels.flatMap((l) => [l.scores, l.boxes]);
    case "centernet-heads":
      return [d.outputs.heatmap, d.outputs.wh];
    case "centernet-detections":
      return [d.outputs.detections];
  }
}

export async function resolveModelArg(arg: string, manifest: Manifest, manifestPath: string): Promise<ResolvedModel> {
  if (arg in manifest.models) return resolveModel(manifest, manifestPath, arg);
  const path = resolve(arg);
  const info = await stat(path).catch(() => null);
  if (info === null || !info.isFile()) {
    throw new Error(`model ${JSON.stringify(arg)} is neither a model in ${manifestPath} (${Object.keys(manifest.models).join(", ")}) nor an ONNX file`);
  }
  const bytes = await readFile(path);
  if (bytes.length === 0) throw new Error(`model file ${path} is empty, expected an ONNX model`);
  const sha256 = sha256Hex(bytes);
  // The very file of a manifest entry keeps that entry (and its name in reports).
  for (const name of Object.keys(manifest.models)) {
    const m = resolveModel(manifest, manifestPath, name);
    if (m.path === path && m.entry.sha256 === sha256) return m;
  }
  let graph;
  try {
    graph = decodeModel(bytes, path);
  } catch (e) {
    throw new Error(`model file ${path} is not a readable ONNX model: ${(e as Error).message}`, { cause: e });
  }
  const input = graph.inputs.length === 1 ? graph.inputs[0] : undefined;
  const outputs = new Set(graph.outputs.map((o) => o.name));
  // Of the interchangeable entries, the one nearest the imported model (fewest parents):
  // a file is run and compared like nanodet-u8, not like one of its pruned or INT8 variants.
  const depth = (name: string): number => {
    let d = 0;
    for (let e = manifest.models[name]; e?.parent != null && d < 16; e = manifest.models[e.parent]) d++;
    return d;
  };
  const like = Object.entries(manifest.models).sort(([a], [b]) => depth(a) - depth(b)).find(
    ([, e]) =>
      input !== undefined &&
      e.input.name === input.name &&
      e.input.dtype === input.dtype &&
      e.input.shape.length === input.dims.length &&
      e.input.shape.every((d, i) => d === input.dims[i]) &&
      decoderOutputs(e).every((o) => outputs.has(o)),
  );
  if (like === undefined) {
    const inputs = graph.inputs.map((i) => `${i.name} ${i.dtype} [${i.dims.join(", ")}]`).join(", ");
    throw new Error(
      `model file ${path}: no model in ${manifestPath} has its input (${inputs}) and outputs, so perceptd cannot tell how ` +
        `to preprocess and decode it; add it to the manifest`,
    );
  }
  const [parentName, parentEntry] = like;
  const rel = relative(process.cwd(), path);
  return {
    // as the user would type it again: relative to where they are, unless that climbs out
    name: rel.startsWith("..") || isAbsolute(rel) ? path : rel,
    path,
    entry: { ...parentEntry, file: path, sha256, bytes: bytes.length, parent: parentName, description: `${path} (run as ${parentName})` },
  };
}
