// Validates ONNX files with the reference implementation (Python onnx: checker with
// full_check plus strict, type-checked shape inference) by running scripts/onnx_check.py.
// ONNX Runtime accepts some models the spec rejects, so a converted model is checked here too.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { z } from "zod";

export interface OnnxValueInfo {
  name: string;
  /** Per dim: a size, a symbolic dim_param, or null when unknown. null: unranked/not a tensor. */
  shape: (number | string | null)[] | null;
  /** TensorProto data type name, e.g. "FLOAT", "INT64". */
  elemType: string | null;
}

export type CheckResult =
  | {
      file: string;
      ok: true;
      /** Opset of the default (ai.onnx) domain; null if the model imports none. */
      opset: number | null;
      irVersion: number;
      /** Graph inputs to feed (initializers listed as inputs are left out). */
      inputs: OnnxValueInfo[];
      /** Graph outputs after shape inference. */
      outputs: OnnxValueInfo[];
      nodes: number;
    }
  | { file: string; ok: false; error: string };

export interface CheckOnnxOptions {
  /** Python interpreter to use; default $PERCEPTD_PYTHON, else python3, else /usr/bin/python3. */
  python?: string;
}

const SCRIPT = fileURLToPath(new URL("../../scripts/onnx_check.py", import.meta.url));
const INSTALL_HINT = "install python3-onnx (scripts/setup.sh does)";
/** onnx_check.py's exit status when `import onnx` fails. */
const EXIT_NO_ONNX = 3;

const valueInfo = z.object({
  name: z.string(),
  shape: z.array(z.union([z.number(), z.string(), z.null()])).nullable(),
  elem_type: z.string().nullable(),
}).transform((v): OnnxValueInfo => ({ name: v.name, shape: v.shape, elemType: v.elem_type }));

const line = z.discriminatedUnion("ok", [
  z.object({
    file: z.string(),
    ok: z.literal(true),
    opset: z.number().int().nullable(),
    ir_version: z.number().int(),
    inputs: z.array(valueInfo),
    outputs: z.array(valueInfo),
    nodes: z.number().int(),
  }),
  z.object({ file: z.string(), ok: z.literal(false), error: z.string() }),
]);

// Debian's python3-onnx lives in the system interpreter's dist-packages; a python3 earlier on
// PATH (pyenv, a venv) usually cannot import it, so the system one is the second choice.
const DEFAULT_PYTHONS = ["python3", "/usr/bin/python3"];
let workingPython: string | null = null;

/**
 * Checks each file and returns one result per path, in order. A model that fails the check
 * is an `ok: false` result, not an exception; this throws only when the checker cannot run
 * (no python3, no onnx module) or its output is not what onnx_check.py prints.
 */
export async function checkOnnx(paths: string[], opts: CheckOnnxOptions = {}): Promise<CheckResult[]> {
  if (paths.length === 0) return [];
  const explicit = opts.python ?? process.env.PERCEPTD_PYTHON;
  const candidates = explicit ? [explicit] : workingPython ? [workingPython] : DEFAULT_PYTHONS;

  const notFound: string[] = [];
  const noOnnx: string[] = [];
  for (const python of candidates) {
    const run = await runScript(python, paths);
    if (run.kind === "enoent") {
      notFound.push(python);
      continue;
    }
    if (run.code === EXIT_NO_ONNX) {
      noOnnx.push(`${python}: ${run.stderr.trim()}`);
      continue;
    }
    if (run.code !== 0 && run.code !== 1) {
      throw new Error(
        `${SCRIPT}: ${python} exited with ${run.code ?? `signal ${run.signal}`}: ${run.stderr.trim() || "(no stderr)"}`,
      );
    }
    if (!explicit) workingPython = python;
    return parseLines(run.stdout, paths, python);
  }
  if (noOnnx.length > 0) {
    throw new Error(
      `checkOnnx: the onnx Python module cannot be imported (${noOnnx.join("; ")}); ${INSTALL_HINT}` +
      (explicit ? "" : ", or set PERCEPTD_PYTHON to a python3 that has it"),
    );
  }
  throw new Error(`checkOnnx: python3 not found (tried ${notFound.join(", ")}); ${INSTALL_HINT}`);
}

type ScriptRun =
  | { kind: "enoent" }
  | { kind: "exit"; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

function runScript(python: string, paths: string[]): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [SCRIPT, ...paths], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") resolve({ kind: "enoent" });
      else reject(new Error(`checkOnnx: cannot start ${python}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      resolve({
        kind: "exit",
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
  });
}

function parseLines(stdout: string, paths: string[], python: string): CheckResult[] {
  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== paths.length) {
    throw new Error(`${SCRIPT} (${python}): expected ${paths.length} result lines, got ${lines.length}:\n${stdout}`);
  }
  return lines.map((text, i) => {
    let parsed: CheckResult;
    try {
      const r = line.parse(JSON.parse(text));
      parsed = r.ok
        ? { file: r.file, ok: true, opset: r.opset, irVersion: r.ir_version, inputs: r.inputs, outputs: r.outputs, nodes: r.nodes }
        : r;
    } catch (e) {
      throw new Error(`${SCRIPT} (${python}): unexpected result line ${i + 1} ${JSON.stringify(text)}: ${(e as Error).message}`);
    }
    if (parsed.file !== paths[i]) {
      throw new Error(`${SCRIPT} (${python}): result line ${i + 1} is for ${parsed.file}, expected ${paths[i]}`);
    }
    return parsed;
  });
}
