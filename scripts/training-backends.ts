// Which library trains the distillation step: one training step (forward, backward, Adam) of
// the same small detector-shaped conv net on the same batch, in PyTorch (Debian's
// python3-torch, CPU) and in TensorFlow.js (the packages in this project's dependencies: the
// pure-JavaScript CPU backend and the WebAssembly one; tfjs-node, which wraps libtensorflow,
// cannot install without downloading it). Timed one after the other in this one run.
//
//   npx tsx scripts/training-backends.ts [--steps 5] [--batch 2] [--size 416] [--threads 2]
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { findTrainingPython } from "../src/model/finetune/distill.ts";

const { values: args } = parseArgs({ options: { steps: { type: "string", default: "5" }, batch: { type: "string", default: "2" }, size: { type: "string", default: "416" }, threads: { type: "string", default: "2" } } });
const steps = Number(args.steps);
const batch = Number(args.batch);
const size = Number(args.size);
const threads = Number(args.threads);
// stride-2 3x3 convs 3 -> 32 -> 64 -> 128 with LeakyReLU, then a 1x1 head to 80 + 44 channels (nanodet's per level)
const LAYERS: [number, number, number, number][] = [[3, 32, 3, 2], [32, 64, 3, 2], [64, 128, 3, 2], [128, 124, 1, 1]];

async function tfjsStep(backend: string): Promise<number | string> {
  try {
    await tf.setBackend(backend);
    await tf.ready();
  } catch (e) {
    return `backend unavailable: ${(e as Error).message}`;
  }
  const ws = LAYERS.map(([ci, co, k]) => tf.variable(tf.randomNormal([k, k, ci, co], 0, 0.05)));
  const x = tf.randomUniform([batch, size, size, 3]);
  const target = tf.randomUniform([batch, size / 8, size / 8, 124]);
  const opt = tf.train.adam(1e-3);
  const step = (): void => {
    tf.tidy(() => {
      opt.minimize(() => {
        let h: tf.Tensor4D = x as tf.Tensor4D;
        LAYERS.forEach(([, , , s], i) => {
          h = tf.conv2d(h, ws[i] as tf.Tensor4D, s, "same");
          if (i < LAYERS.length - 1) h = tf.leakyRelu(h, 0.1);
        });
        return tf.losses.meanSquaredError(target, h) as tf.Scalar;
      });
    });
  };
  try {
    step(); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step();
    return (performance.now() - t0) / steps;
  } catch (e) {
    return `failed: ${(e as Error).message.split("\n")[0]}`;
  }
}

function torchStep(): number | string {
  const py = findTrainingPython();
  if ("missing" in py) return py.missing;
  const code = `
import time, torch, torch.nn.functional as F
torch.set_num_threads(${threads})
L = ${JSON.stringify(LAYERS)}
ws = [torch.nn.Parameter(torch.randn(co, ci, k, k) * 0.05) for ci, co, k, s in L]
x = torch.rand(${batch}, 3, ${size}, ${size}); t = torch.rand(${batch}, 124, ${size / 8}, ${size / 8})
opt = torch.optim.Adam(ws, 1e-3)
def step():
    h = x
    for i, (ci, co, k, s) in enumerate(L):
        h = F.conv2d(h, ws[i], stride=s, padding=k // 2)
        if i < len(L) - 1: h = F.leaky_relu(h, 0.1)
    loss = F.mse_loss(h, t); opt.zero_grad(); loss.backward(); opt.step()
step()
t0 = time.perf_counter()
for _ in range(${steps}): step()
print((time.perf_counter() - t0) / ${steps} * 1000)
`;
  const r = spawnSync(py.python, ["-c", code], { encoding: "utf8" });
  return r.status === 0 ? Number(r.stdout.trim()) : `failed: ${r.stderr.trim().split("\n").at(-1)}`;
}

const rows: [string, number | string][] = [];
rows.push(["PyTorch 1.13 (Debian python3-torch), CPU", torchStep()]);
rows.push(["TensorFlow.js 4.22, wasm backend", await tfjsStep("wasm")]);
rows.push(["TensorFlow.js 4.22, cpu backend (JavaScript)", await tfjsStep("cpu")]);
const torchMs = typeof rows[0][1] === "number" ? rows[0][1] : NaN;
process.stdout.write(`one training step, batch ${batch} at ${size}x${size}, ${threads} thread(s) where the library takes a count, ${steps} steps after 1 warm-up\n\n`);
process.stdout.write("| library | ms per step | vs PyTorch |\n|---|---:|---:|\n");
for (const [name, v] of rows) process.stdout.write(`| ${name} | ${typeof v === "number" ? v.toFixed(0) : v} | ${typeof v === "number" ? `${(v / torchMs).toFixed(1)}x` : "-"} |\n`);
