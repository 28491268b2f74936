// scripts/device-check.sh on this machine: no NVIDIA GPU, the npm onnxruntime-node. Its
// CPU path (inventory, real provider probe) runs, and its last line says plainly that there
// is no GPU; the GPU path waits for a board (docs/jetson.md).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "../..");
const script = join(repo, "scripts/device-check.sh");
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-device-check-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("scripts/device-check.sh", () => {
  it("without a GPU: inventories, probes the providers for real, and ends with a line naming what is missing", async () => {
    // PATH without any nvidia-smi, as on a machine with no NVIDIA driver.
    const path = (process.env.PATH ?? "").split(":").filter((d) => !existsSync(join(d, "nvidia-smi"))).join(":");
    const out = join(dir, "run");
    const r = spawnSync("bash", [script, "--out", out], { cwd: repo, encoding: "utf8", env: { ...process.env, PATH: path }, timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    const last = lines[lines.length - 1];
    expect(last).toMatch(/^NVIDIA GPU: nvidia-smi not found; /);
    expect(last).toMatch(/onnxruntime-node loads: cpu \(provider options: (ignored|no-gpu-providers)\); no GPU provider loads, nothing benchmarked/);
    expect(last).toContain(`(details in ${out})`);
    const providers = JSON.parse(await readFile(join(out, "providers.json"), "utf8")) as { providers: { provider: string; loads: boolean; error?: string }[] };
    expect(providers.providers.map((p) => [p.provider, p.loads])).toEqual([
      ["tensorrt", false],
      ["cuda", false],
      ["cpu", true],
    ]);
    for (const p of providers.providers.filter((x) => !x.loads)) expect(p.error, `why ${p.provider} did not load`).toMatch(/\S/);
    const inventory = await readFile(join(out, "inventory.txt"), "utf8");
    expect(inventory).toContain("device-check: nvidia-smi: not found");
    expect(inventory).toMatch(/device-check: TensorRT: (not found|\/)/);
    expect(inventory.trimEnd().split("\n").pop(), "the inventory ends with the same summary").toBe(last);
  });

  it("refuses an unknown argument, naming it", () => {
    const r = spawnSync("bash", [script, "--gpu"], { cwd: repo, encoding: "utf8" });
    expect(r.status).toBe(64);
    expect(r.stderr).toContain("unknown argument '--gpu'");
  });

  it("is shellcheck-clean", () => {
    const r = spawnSync("shellcheck", [script], { encoding: "utf8" });
    expect(r.error, "shellcheck is missing: scripts/setup.sh installs it").toBeUndefined();
    expect(r.status, r.stdout).toBe(0);
  });
});
