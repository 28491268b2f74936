// Runs an original TensorFlow.js graph model (model.json + weight shards) in Node, as the
// reference that converted ONNX models are compared against and benchmarked with.
//
// What running tfjs-backend-wasm 4.22 under Node takes (checked on Node 20):
// - setWasmPaths() takes a directory *prefix* that is string-concatenated with the binary's
//   file name, so it must end in "/". Under Node, Emscripten reads the binary with
//   fs.readFileSync, so a plain file path works (a file:// URL does too). A wrong path does
//   not throw: tf.setBackend() logs and resolves false.
// - Threads are off in Node: the backend hard-codes WASM_HAS_MULTITHREAD_SUPPORT=false there
//   (tfjs issue #3830). Forcing the flag on fails at init because Emscripten starts its
//   pthread workers from blob: URLs, which Node's worker_threads refuses (ERR_WORKER_PATH).
//   So the backend runs the single-threaded SIMD binary, and one run uses one core.
// - NanoDet (SparseToDense) and CenterNet (TopKV2) both run with the synchronous
//   model.execute(): tfjs-converter only requires executeAsync for control flow,
//   NonMaxSuppression, Where and hash tables.

import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";

export type TfjsBackend = "wasm" | "cpu";

export interface TfjsReferenceOptions {
  /** "wasm" (default) or "cpu", the slow pure-JS fallback. One backend per process. */
  backend?: TfjsBackend;
  /**
   * Worker threads for the wasm backend. Only 1 is possible under Node (see the top of this
   * file); asking for more throws rather than silently benchmarking one thread as many.
   */
  threads?: number;
}

export interface ReferenceTensor {
  dims: number[];
  data: Float32Array;
}

/**
 * The outputs of one run. Enumerable keys are the signature output names with the ":0"
 * tensor suffix removed ("Identity_3", "tower_0/detections"), in `outputNames` order. Where
 * the signature name had the suffix, the same tensor is also reachable under that spelling
 * ("Identity_3:0") through a non-enumerable alias, so a lookup by either the TF tensor name
 * or the plain name works while Object.keys/entries see every output once.
 */
export type ReferenceOutputs = Record<string, ReferenceTensor>;

/** What the process's TensorFlow.js backend turned out to be, for benchmark reports. */
export interface TfjsBackendInfo {
  backend: TfjsBackend;
  /** wasm backend only: whether the SIMD binary runs. */
  simd: boolean;
  /** wasm backend only: worker threads per run (always 1 under Node). */
  threads: number;
}

/**
 * Ops for which tfjs-converter refuses the synchronous execute() (its model_analysis.js, which
 * spells If as "if"; both are listed so a real "If" goes the async way too).
 */
const ASYNC_OPS = new Set([
  "Switch", "Merge", "Enter", "Exit", "NextIteration", "StatelessIf", "StatelessWhile", "If", "if", "While",
  "NonMaxSuppressionV2", "NonMaxSuppressionV3", "NonMaxSuppressionV5", "Where",
  "HashTable", "HashTableV2", "LookupTableImport", "LookupTableImportV2",
  "LookupTableFind", "LookupTableFindV2", "LookupTableSize", "LookupTableSizeV2",
]);

/** Bytes per stored weight element, by quantization dtype or, unquantized, by dtype. */
const STORED_BYTES: Record<string, number> = {
  float32: 4, int32: 4, bool: 1, complex64: 8, float16: 2, uint16: 2, uint8: 1,
};

let backendInit: { backend: TfjsBackend; ready: Promise<TfjsBackendInfo> } | null = null;

/**
 * Selects and initialises the backend once per process. TF.js has one global engine: a
 * second backend would mean moving every loaded weight between them, so asking for a
 * different one later is an error rather than a silent switch.
 */
export function initTfjsBackend(backend: TfjsBackend = "wasm"): Promise<TfjsBackendInfo> {
  if (backendInit) {
    if (backendInit.backend !== backend) {
      return Promise.reject(new Error(
        `TensorFlow.js backend "${backendInit.backend}" is already initialised in this process; ` +
        `"${backend}" was asked for. Use one backend per process.`,
      ));
    }
    return backendInit.ready;
  }
  const ready = initBackendOnce(backend);
  backendInit = { backend, ready };
  // A failed init may be fixed (e.g. the wasm files restored) and retried.
  ready.catch(() => {
    if (backendInit?.ready === ready) backendInit = null;
  });
  return ready;
}

async function initBackendOnce(backend: TfjsBackend): Promise<TfjsBackendInfo> {
  if (backend === "wasm") {
    const dir = wasmDistDir();
    // The simd binary is the one Node loads; the plain one is what a CPU without wasm SIMD gets.
    for (const name of ["tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm.wasm"]) {
      if (!existsSync(path.join(dir, name))) {
        throw new Error(`tfjs-backend-wasm: ${path.join(dir, name)} is missing; reinstall @tensorflow/tfjs-backend-wasm`);
      }
    }
    setWasmPaths(dir + path.sep);
  }
  const ok = await tf.setBackend(backend);
  await tf.ready();
  if (!ok || tf.getBackend() !== backend) {
    throw new Error(
      `TensorFlow.js backend "${backend}" failed to initialise (the reason is logged above)` +
      (backend === "wasm" ? `; binaries looked for in ${wasmDistDir()}; backend "cpu" is the fallback` : ""),
    );
  }
  if (backend === "cpu") return { backend, simd: false, threads: 1 };
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  return { backend, simd: simd === true, threads: 1 };
}

function wasmDistDir(): string {
  // The package's "main" is dist/tf-backend-wasm.node.js, next to the .wasm binaries.
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
}

export class TfjsReference {
  /** Graph input name without the ":0" suffix, e.g. "input_1", "tower_0/images". */
  readonly inputName: string;
  /** Static input shape from the model, e.g. [1, 3, 416, 416]. */
  readonly inputShape: number[];
  /** Output keys of run(), signature names without ":0", in natural sort order. */
  readonly outputNames: string[];
  readonly backend: TfjsBackend;
  /** Whether the graph needs model.executeAsync (control flow, NMS, Where, hash tables). */
  readonly usesExecuteAsync: boolean;

  readonly #model: tf.GraphModel;
  readonly #file: string;
  readonly #inputNode: string;
  readonly #outputNodes: string[];
  readonly #inputSize: number;
  #disposed = false;

  private constructor(model: tf.GraphModel, file: string, backend: TfjsBackend, usesExecuteAsync: boolean) {
    this.#model = model;
    this.#file = file;
    this.backend = backend;
    this.usesExecuteAsync = usesExecuteAsync;

    if (model.inputNodes.length !== 1) {
      throw new Error(`${file}: expected one graph input, found ${model.inputNodes.length} (${model.inputNodes.join(", ")})`);
    }
    this.#inputNode = model.inputNodes[0];
    this.inputName = stripTensorSuffix(this.#inputNode);
    const shape = model.inputs[0]?.shape;
    if (!shape || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new Error(`${file}: input ${this.#inputNode} needs a static shape, found [${shape?.join(", ") ?? "unknown"}]`);
    }
    this.inputShape = [...shape];
    this.#inputSize = shape.reduce((a, b) => a * b, 1);

    this.#outputNodes = [...model.outputNodes].sort((a, b) =>
      stripTensorSuffix(a).localeCompare(stripTensorSuffix(b), "en", { numeric: true }));
    this.outputNames = this.#outputNodes.map(stripTensorSuffix);
    if (new Set(this.outputNames).size !== this.outputNames.length) {
      throw new Error(`${file}: output names collide once ":0" is removed: ${this.#outputNodes.join(", ")}`);
    }
  }

  /** Loads model.json and the weight files its manifest names, from the same directory. */
  static async load(modelJsonPath: string, opts: TfjsReferenceOptions = {}): Promise<TfjsReference> {
    const backend = opts.backend ?? "wasm";
    const threads = opts.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new Error(`TfjsReference.load(${modelJsonPath}): threads must be a positive integer, got ${threads}`);
    }
    if (threads > 1) {
      throw new Error(
        `TfjsReference.load(${modelJsonPath}): threads=${threads} is not possible: tfjs-backend-wasm ` +
        `runs single-threaded under Node (its pthread workers need blob: URLs)`,
      );
    }
    await initTfjsBackend(backend);

    const json = await readModelJson(modelJsonPath);
    const model = await tf.loadGraphModel(fileHandler(modelJsonPath, json));
    const usesAsync = json.modelTopology.node.some((n) => ASYNC_OPS.has(n.op));
    try {
      return new TfjsReference(model, modelJsonPath, backend, usesAsync);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /**
   * Runs the model once. `input` is laid out exactly as the graph input (NCHW for NanoDet,
   * NHWC for CenterNet) with inputShape's element count. Every tensor the run creates is
   * disposed before this resolves; the returned arrays are copies the caller owns.
   */
  async run(input: Float32Array): Promise<ReferenceOutputs> {
    if (this.#disposed) throw new Error(`${this.#file}: run() after dispose()`);
    if (input.length !== this.#inputSize) {
      throw new Error(
        `${this.#file}: input ${this.inputName} needs ${this.#inputSize} values ` +
        `([${this.inputShape.join(", ")}]), got ${input.length}`,
      );
    }
    const x = tf.tensor(input, this.inputShape, "float32");
    let outs: tf.Tensor[] = [];
    try {
      const feed = { [this.#inputNode]: x };
      const res = this.usesExecuteAsync
        ? await this.#model.executeAsync(feed, this.#outputNodes)
        : this.#model.execute(feed, this.#outputNodes);
      outs = Array.isArray(res) ? res : [res];
      if (outs.length !== this.#outputNodes.length) {
        throw new Error(`${this.#file}: expected ${this.#outputNodes.length} outputs, the graph returned ${outs.length}`);
      }
      const datas = await Promise.all(outs.map((t) => t.data()));
      const result: ReferenceOutputs = {};
      outs.forEach((t, i) => {
        const d = datas[i];
        // The wasm backend's data() already copies out of its heap; the cpu backend hands
        // out its own storage (possibly a weight's, for pass-through outputs), so copy there.
        const data = d instanceof Float32Array && this.backend === "wasm" ? d : Float32Array.from(d);
        const tensor: ReferenceTensor = { dims: [...t.shape], data };
        const name = this.outputNames[i];
        result[name] = tensor;
        const node = this.#outputNodes[i];
        if (node !== name) Object.defineProperty(result, node, { value: tensor, enumerable: false });
      });
      return result;
    } finally {
      x.dispose();
      tf.dispose(outs);
    }
  }

  /** Frees the model's weights. The backend itself stays up for other models. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#model.dispose();
  }
}

/** "Identity_3:0" -> "Identity_3"; names without an output-index suffix stay as they are. */
export function stripTensorSuffix(name: string): string {
  return name.endsWith(":0") ? name.slice(0, -2) : name;
}

interface GraphModelJson {
  format?: string;
  modelTopology: { node: { op: string }[] };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string; quantization?: { dtype: string } }[] }[];
}

async function readModelJson(file: string): Promise<GraphModelJson> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(`${file}: cannot read TF.js model.json: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  const j = json as Partial<GraphModelJson> | null;
  if (typeof j !== "object" || j === null || !Array.isArray(j.modelTopology?.node) || !Array.isArray(j.weightsManifest)) {
    throw new Error(`${file}: not a TF.js graph model (needs modelTopology.node and weightsManifest)`);
  }
  if (j.format !== undefined && j.format !== "graph-model") {
    throw new Error(`${file}: format is "${j.format}", expected "graph-model" (layers models are not supported)`);
  }
  return j as GraphModelJson;
}

/**
 * An IOHandler reading from disk: tf.loadGraphModel(path) would go through fetch(), which
 * under Node cannot read local files. Weight paths are relative to model.json's directory.
 */
function fileHandler(modelJsonPath: string, json: GraphModelJson): tf.io.IOHandler {
  const dir = path.dirname(modelJsonPath);
  return {
    load: () =>
      // GraphModelJson was checked to have the parts ModelJSON needs; the rest passes through.
      tf.io.getModelArtifactsForJSON(json as unknown as tf.io.ModelJSON, async (manifest) => {
        const buffers: ArrayBuffer[] = [];
        let bytes = 0;
        for (const group of manifest) {
          for (const rel of group.paths) {
            const file = path.resolve(dir, rel);
            if (path.relative(dir, file).startsWith("..")) {
              throw new Error(`${modelJsonPath}: weight path "${rel}" points outside ${dir}`);
            }
            let buf: Buffer;
            try {
              buf = await readFile(file);
            } catch (err) {
              throw new Error(`${modelJsonPath}: cannot read weight file ${file}: ${(err as Error).message}`);
            }
            buffers.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
            bytes += buf.byteLength;
          }
        }
        const specs = manifest.flatMap((g) => g.weights);
        const expected = expectedWeightBytes(specs);
        if (expected !== null && expected !== bytes) {
          throw new Error(
            `${modelJsonPath}: weight files hold ${bytes} bytes, the weightsManifest describes ${expected} ` +
            `(truncated or mismatched .bin?)`,
          );
        }
        return [specs, buffers];
      }),
  };
}

/** Total stored size of the weights, or null where it cannot be known up front (strings). */
function expectedWeightBytes(specs: tf.io.WeightsManifestEntry[]): number | null {
  let total = 0;
  for (const s of specs) {
    const stored = s.quantization?.dtype ?? s.dtype;
    const per = STORED_BYTES[stored];
    if (per === undefined) return null;
    total += s.shape.reduce((a, b) => a * b, 1) * per;
  }
  return total;
}
