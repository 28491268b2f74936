// What a soak ran on, recorded in soak.json and the report: two soaks compare only when
// these match (or differ in the one thing being compared, e.g. the model).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { join } from "node:path";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../infer/manifest.ts";
import { machineInfo, type MachineInfo } from "../util/machine-info.ts";
import { REPO_ROOT } from "./daemon-process.ts";

export interface SoakVersions {
  perceptd: string;
  /** git describe of the checkout, when it is one */
  commit: string | null;
  node: string;
  onnxruntime: string;
  /** the execution provider that ran the model (from /metrics), null when unknown */
  executionProvider: string | null;
  model: { name: string; file: string; sha256: string };
  gstreamer: string | null;
  kernel: string;
  machine: MachineInfo;
  /** nvpmodel's mode on a Jetson, else the CPU frequency governor; null when neither is readable */
  powerMode: string | null;
}

function run(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: REPO_ROOT, timeout: 5000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

function powerMode(): string | null {
  const nv = run("nvpmodel", ["-q"]);
  if (nv !== null) return `nvpmodel: ${nv.split("\n").join("; ")}`;
  try {
    return `cpufreq governor: ${readFileSync("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "utf8").trim()}`;
  } catch {
    return null;
  }
}

function packageVersion(name: string): string {
  try {
    const req = createRequire(join(REPO_ROOT, "package.json"));
    return (JSON.parse(readFileSync(req.resolve(`${name}/package.json`), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

export async function soakVersions(modelName: string | undefined, manifestPath: string | undefined, executionProvider: string | null): Promise<SoakVersions> {
  const path = manifestPath ?? DEFAULT_MANIFEST_PATH;
  const model = resolveModel(await readManifest(path), path, modelName);
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  const gst = run("gst-launch-1.0", ["--version"]);
  return {
    perceptd: pkg.version,
    commit: run("git", ["describe", "--always", "--dirty", "--tags"]),
    node: process.version,
    onnxruntime: `onnxruntime-node ${packageVersion("onnxruntime-node")}`,
    executionProvider,
    model: { name: model.name, file: model.entry.file, sha256: model.entry.sha256 },
    gstreamer: gst === null ? null : (/GStreamer (\S+)/.exec(gst)?.[1] ?? gst.split("\n")[0]),
    kernel: `${os.type()} ${os.release()}`,
    machine: machineInfo(),
    powerMode: powerMode(),
  };
}
