import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, describeConfig, loadConfig } from "../../src/config/load.ts";
import { ConfigSchema } from "../../src/config/schema.ts";

const repo = resolve(import.meta.dirname, "../..");
const configDir = join(repo, "config");
const noEnv = { env: {} };

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "perceptd-config-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function writeYaml(name: string, text: string): Promise<string> {
  const p = join(tmp, name);
  await writeFile(p, text);
  return p;
}

async function loadError(path: string, overrides: Parameters<typeof loadConfig>[1] = noEnv): Promise<ConfigError> {
  const err = await loadConfig(path, overrides).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError from ${path}, got ${String(err)}`);
  return err;
}

const minimal = "cameras:\n  - id: cam\n    source:\n      type: testsrc\n";

describe("config files in config/", () => {
  it("has the four shipped configs", async () => {
    const files = (await readdir(configDir)).filter((f) => f.endsWith(".yaml")).sort();
    expect(files).toEqual(["bench-soak.yaml", "default.yaml", "demo.yaml", "jetson-orin.yaml"]);
  });

  it.each(["default.yaml", "demo.yaml", "jetson-orin.yaml", "bench-soak.yaml"])("%s loads and validates", async (name) => {
    const { config, path, sources } = await loadConfig(join(configDir, name), noEnv);
    expect(path).toBe(join(configDir, name));
    expect(sources).toEqual([join(configDir, name)]);
    expect(config.cameras.length).toBeGreaterThan(0);
  });

  it("default.yaml is the generic CPU box", async () => {
    const { config } = await loadConfig(join(configDir, "default.yaml"), noEnv);
    expect(config.cameras).toHaveLength(1);
    expect(config.cameras[0]).toMatchObject({ id: "front", source: { type: "v4l2", device: "/dev/video0", width: 1280, height: 720, framerate: 30 } });
    expect(config.model.name).toBeUndefined();
    expect(config.inference.executionProviders).toEqual(["cpu"]);
    expect(config.bus.endpoints).toEqual(["tcp://127.0.0.1:5555", "ipc:///run/perceptd/bus.sock"]);
    expect(config.metrics).toMatchObject({ host: "127.0.0.1", port: 9464 });
    expect(config.log.format).toBe("auto");
    expect(config.inference.replayWorkers, "replay workers chosen by the daemon").toBe(0);
  });

  it("demo.yaml replays the real fixture, resolved against config/ and not the cwd", async () => {
    const { config } = await loadConfig(join(configDir, "demo.yaml"), noEnv);
    const source = config.cameras[0].source;
    expect(source).toMatchObject({ type: "file", realtime: true, loop: false });
    if (source.type !== "file") throw new Error("unreachable");
    expect(source.path).toBe(join(repo, ".cache/fixtures/vtest.avi"));
    expect(existsSync(source.path), `${source.path} (scripts/setup.sh fetches it)`).toBe(true);
    expect(config.status.mode).toBe("auto");
  });

  it("jetson-orin.yaml runs TensorRT first with an engine cache, a worker per camera", async () => {
    const { config } = await loadConfig(join(configDir, "jetson-orin.yaml"), noEnv);
    expect(config.cameras[0].source).toMatchObject({ type: "csi", sensorId: 0, width: 1920, height: 1080, framerate: 30 });
    expect(config.inference).toMatchObject({ executionProviders: ["tensorrt", "cuda", "cpu"], trtFp16: true, trtCacheDir: "/var/cache/perceptd/trt", workers: "per-camera" });
    expect(config.bus.endpoints).toContain("tcp://0.0.0.0:5555");
  });

  it("jetson-orin.yaml, bound beyond loopback, has CURVE on with the keys made at install (systemd/README.md)", async () => {
    const { config } = await loadConfig(join(configDir, "jetson-orin.yaml"), noEnv);
    expect(config.bus.endpoints.some((e) => !/^tcp:\/\/(127\.|\[::1\])/.test(e) && e.startsWith("tcp://"))).toBe(true);
    expect(config.bus.curve).toEqual({
      enabled: true,
      serverSecretKeyFile: "/etc/perceptd/keys/server.key_secret",
      allowedClientKeys: [],
      allowedClientKeysDir: "/etc/perceptd/keys/clients",
    });
  });

  it("bench-soak.yaml loops, paced like a camera, quietly, with its soak budgets", async () => {
    const { config } = await loadConfig(join(configDir, "bench-soak.yaml"), noEnv);
    expect(config.cameras[0].source).toMatchObject({ type: "file", loop: true, realtime: true, path: join(repo, ".cache/fixtures/vtest.avi") });
    expect(config.soak).toMatchObject({ warmupS: 10, e2eP99MaxMs: 200, minHealthOkFraction: 0.99 });
    expect(config.status.mode).toBe("off");
    expect(config.log.level).toBe("warn");
  });
});

describe("problems", () => {
  it("reports every problem of a file in one error, with path and line:column", async () => {
    const file = await writeYaml(
      "bad.yaml",
      [
        "model:", //                                  1
        "  scoreTreshold: 0.5", //                    2
        "cameras:", //                                3
        "  - id: front", //                           4
        "    source:", //                             5
        "      type: file", //                        6
        "  - id: front", //                           7
        "    source:", //                             8
        "      type: usb", //                         9
        "bus:", //                                    10
        "  endpoints: [udp://0.0.0.0:5555]", //       11
        "metrics:", //                                12
        "  port: 70000", //                           13
        "",
      ].join("\n"),
    );
    const err = await loadError(file);
    const lines = err.message.split("\n");
    expect(lines[0]).toBe(`${file}: 6 problems`);
    expect(lines.slice(1)).toEqual([
      `  ${file}:2:3 model.scoreTreshold: unknown key "scoreTreshold" in model, did you mean scoreThreshold?`,
      `  ${file}:6:7 cameras.0.source.path: required (a string) [camera "front"]`,
      `  ${file}:7:9 cameras.1.id: camera id "front" is also used by cameras.0`,
      `  ${file}:9:13 cameras.1.source.type: must be one of file, v4l2, csi, rtsp, testsrc, pipeline (got "usb") [camera "front"]`,
      `  ${file}:11:15 bus.endpoints.0: transport "udp" is not supported (tcp or ipc) (got "udp://0.0.0.0:5555")`,
      `  ${file}:13:9 metrics.port: must be within 0..65535 (got 70000)`,
    ]);
    expect(err.problems.map((p) => p.path)).toEqual(["model.scoreTreshold", "cameras.0.source.path", "cameras.1.id", "cameras.1.source.type", "bus.endpoints.0", "metrics.port"]);
    expect(err.problems[0]).toMatchObject({ where: file, line: 2, column: 3 });
  });

  it("refuses a replay worker count outside 0..16, naming the key", async () => {
    const file = await writeYaml("replay.yaml", `${minimal}inference:\n  replayWorkers: 17\n`);
    expect((await loadError(file)).message).toContain(`${file}:6:18 inference.replayWorkers: must be within 0..16 (got 17)`);
  });

  it("reports a missing section, a key of another source type and a cross-field mistake", async () => {
    const file = await writeYaml(
      "cross.yaml",
      ["log: {level: verbose}", "cameras:", "  - id: a", "    source: {type: file, path: x.avi, device: /dev/video0}", "    restart: {initialBackoffMs: 5000, maxBackoffMs: 1000}", ""].join("\n"),
    );
    const err = await loadError(file);
    expect(err.message).toContain(`${file}:1:14 log.level: must be one of trace, debug, info, warn, error, fatal (got "verbose")`);
    expect(err.message).toContain(`${file}:4:39 cameras.0.source.device: unknown key "device" in cameras.0.source; device belongs to type v4l2, this is type file`);
    expect(err.message).toContain(`${file}:5:33 cameras.0.restart.initialBackoffMs: initialBackoffMs (5000) exceeds maxBackoffMs (1000)`);

    const empty = await loadError(await writeYaml("empty.yaml", "# nothing yet\n"));
    expect(empty.message).toContain("cameras: required (a list)");
  });

  it("names the line and column of a YAML syntax error", async () => {
    const file = await writeYaml("syntax.yaml", "cameras:\n  - id: a\n    source: {type: file, path: x.avi\nbus: {}\n");
    const err = await loadError(file);
    expect(err.problems[0]).toMatchObject({ where: file, line: 4, column: 1 });
    expect(err.message).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:4:1 YAML: .+`));
  });

  it("suggests the close key for a typo, at the key's own position", async () => {
    const file = await writeYaml("typo.yaml", minimal + "inference:\n  executionProvider: [cpu]\n");
    const err = await loadError(file);
    expect(err.problems).toHaveLength(1);
    expect(err.message).toContain(`${file}:6:3 inference.executionProvider: unknown key "executionProvider" in inference, did you mean executionProviders?`);
  });

  it("names a missing file", async () => {
    const err = await loadError(join(tmp, "nope.yaml"));
    expect(err.message).toContain(`${join(tmp, "nope.yaml")} cannot read the config file: no such file`);
  });
});

describe("overrides", () => {
  it("applies environment then --set over the file, and reports the sources", async () => {
    const file = await writeYaml("ovr.yaml", minimal + "metrics:\n  port: 1000\nlog:\n  level: warn\n");
    const { config, sources } = await loadConfig(file, {
      env: { PERCEPTD_METRICS__PORT: "2000", PERCEPTD_LOG__LEVEL: "debug", PERCEPTD_MODEL__SCORETHRESHOLD: "0.5", PATH: "/usr/bin", PERCEPTD_SKIP_APT: "1" },
      set: ["metrics.port=3000", "cameras.0.source.numBuffers=10", "model.classes=[person, car]"],
    });
    expect(config.metrics.port).toBe(3000);
    expect(config.log.level).toBe("debug");
    expect(config.model.scoreThreshold).toBe(0.5);
    expect(config.model.classes).toEqual(["person", "car"]);
    expect(config.cameras[0].source).toMatchObject({ type: "testsrc", numBuffers: 10 });
    expect(sources).toEqual([
      file,
      "env PERCEPTD_LOG__LEVEL",
      "env PERCEPTD_METRICS__PORT",
      "env PERCEPTD_MODEL__SCORETHRESHOLD",
      "--set metrics.port",
      "--set cameras.0.source.numBuffers",
      "--set model.classes",
    ]);
  });

  it("takes --set over the environment, and the environment over the file", async () => {
    const file = await writeYaml("order.yaml", minimal + "metrics:\n  port: 1000\n");
    expect((await loadConfig(file, noEnv)).config.metrics.port).toBe(1000);
    expect((await loadConfig(file, { env: { PERCEPTD_METRICS__PORT: "0" } })).config.metrics.port).toBe(0);
    expect((await loadConfig(file, { env: { PERCEPTD_METRICS__PORT: "0" }, set: ["metrics.port=5"] })).config.metrics.port).toBe(5);
  });

  it("matches keys case-insensitively and keeps text values verbatim", async () => {
    const file = await writeYaml("case.yaml", minimal);
    const { config } = await loadConfig(file, { env: { PERCEPTD_MODEL__NAME: "010" }, set: ["Cameras.0.Source.Pattern=null", "status.MODE=off"] });
    expect(config.model.name).toBe("010");
    expect(config.cameras[0].source).toMatchObject({ pattern: "null" });
    expect(config.status.mode).toBe("off");
  });

  it("can build a camera from --set alone", async () => {
    const file = await writeYaml("blank.yaml", "");
    const { config } = await loadConfig(file, { env: {}, set: ["cameras.0.id=cli", "cameras.0.source.type=file", "cameras.0.source.path=clip.mp4", "cameras.0.source.loop=true"] });
    expect(config.cameras[0]).toMatchObject({ id: "cli", source: { type: "file", loop: true, path: resolve(process.cwd(), "clip.mp4") } });
  });

  it("rejects a bad override value naming the key and the override", async () => {
    const file = await writeYaml("badval.yaml", minimal);
    const err = await loadError(file, { env: {}, set: ["metrics.port=abc"] });
    expect(err.problems).toHaveLength(1);
    expect(err.message).toContain(`metrics.port: expected a number, got "abc" (from --set metrics.port=abc)`);

    const env = await loadError(file, { env: { PERCEPTD_CAMERAS__0__SOURCE__WIDTH: "wide" } });
    expect(env.message).toContain(`cameras.0.source.width: expected a number, got "wide" [camera "cam"] (from PERCEPTD_CAMERAS__0__SOURCE__WIDTH=wide)`);
  });

  it("lists every environment variable and --set that names no key", async () => {
    const file = await writeYaml("badkeys.yaml", minimal);
    const err = await loadError(file, {
      env: { PERCEPTD_MODEL__SCORETRESHOLD: "0.5", PERCEPTD_MODEL_NAME: "x", PERCEPTD_NOPE: "1" },
      set: ["model.scoreTreshold=0.5", "metrics.port.x=1", "cameras.5.id=x", "noequals"],
    });
    expect(err.message).toContain(`model.SCORETRESHOLD: unknown key "SCORETRESHOLD" in model, did you mean scoreThreshold? (from PERCEPTD_MODEL__SCORETRESHOLD=0.5)`);
    expect(err.message).toContain(`MODEL_NAME: unknown key "MODEL_NAME" at the top level; levels are separated by '__': PERCEPTD_MODEL__NAME (from PERCEPTD_MODEL_NAME=x)`);
    expect(err.message).toContain(`NOPE: unknown key "NOPE" at the top level (from PERCEPTD_NOPE=1)`);
    expect(err.message).toContain(`model.scoreTreshold: unknown key "scoreTreshold" in model, did you mean scoreThreshold? (from --set model.scoreTreshold=0.5)`);
    expect(err.message).toContain(`metrics.port.x: no key "x" here: this is a single value, not a section (from --set metrics.port.x=1)`);
    expect(err.message).toContain(`cameras.5: index 5 is past the end of cameras (1 entry; the next one is 1) (from --set cameras.5.id=x)`);
    expect(err.message).toContain(`expected key.path=value (from --set noequals)`);
    expect(err.problems).toHaveLength(7);
  });
});

describe("relative paths", () => {
  it("resolve against the config file's folder, whatever the cwd", async () => {
    const file = await writeYaml(
      "paths.yaml",
      ["model:", "  manifest: models/manifest.json", "inference:", "  trtCacheDir: cache/trt", "cameras:", "  - id: a", "    source: {type: file, path: clips/a.avi}", "  - id: b", "    source: {type: file, path: /abs/b.avi}", ""].join("\n"),
    );
    const { config } = await loadConfig(file, noEnv);
    expect(config.model.manifest).toBe(join(tmp, "models/manifest.json"));
    expect(config.inference.trtCacheDir).toBe(join(tmp, "cache/trt"));
    expect(config.cameras.map((c) => (c.source.type === "file" ? c.source.path : ""))).toEqual([join(tmp, "clips/a.avi"), "/abs/b.avi"]);
  });

  it("from an override resolve against the cwd, like any path typed in a shell", async () => {
    const file = await writeYaml("paths2.yaml", minimal);
    const { config } = await loadConfig(file, { env: {}, set: ["model.manifest=m/manifest.json"] });
    expect(config.model.manifest).toBe(resolve(process.cwd(), "m/manifest.json"));
  });
});

describe("describeConfig", () => {
  const text = describeConfig();

  it("mentions every top-level section", () => {
    for (const section of Object.keys(ConfigSchema.shape)) expect(text).toMatch(new RegExp(`^${section}:`, "m"));
  });

  it("gives type, default and description of keys, source variants included", () => {
    expect(text).toContain("  metrics.port: integer 0..65535, default 9464\n      0: any free port");
    expect(text).toContain("  log.level: trace|debug|info|warn|error|fatal, default info");
    expect(text).toContain("cameras.<i>.source.type: rtsp");
    expect(text).toContain("cameras.<i>.source.url: string matching");
    expect(text).toContain("inference.executionProviders: list of tensorrt|cuda|cpu, at least 1, default [cpu]");
  });
});
