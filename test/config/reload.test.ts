import { describe, expect, it } from "vitest";
import { planReload, reloadMarks } from "../../src/config/reload.ts";
import { ConfigSchema, type Config } from "../../src/config/schema.ts";

const parse = (extra: Record<string, unknown> = {}): Config =>
  ConfigSchema.parse({ cameras: [{ id: "cam", source: { type: "testsrc" } }], ...extra });

describe("reloadMarks", () => {
  it("reads from the schema exactly the keys the daemon's reload() applies, and the section it ignores", () => {
    // Daemon.reload applies these through detectSettings (the four model keys) and the
    // logger's level; a key marked here without being applied there would be a silent lie.
    expect(reloadMarks()).toEqual({
      "log.level": "apply",
      "model.scoreThreshold": "apply",
      "model.iouThreshold": "apply",
      "model.classes": "apply",
      "model.maxDetections": "apply",
      soak: "ignore",
    });
  });
});

describe("planReload", () => {
  it("applies changed reloadable keys and nothing else", () => {
    const running = parse();
    const plan = planReload(running, parse({ model: { scoreThreshold: 0.6, classes: ["person"] }, log: { level: "debug" } }));
    expect(plan.applied.sort()).toEqual(["log.level", "model.classes", "model.scoreThreshold"]);
    expect(plan.needsRestart).toEqual([]);
    expect(plan.next.model).toMatchObject({ scoreThreshold: 0.6, classes: ["person"], iouThreshold: running.model.iouThreshold });
    expect(plan.next.log.level).toBe("debug");
    expect(running.model.scoreThreshold, "the running config is not modified").toBe(0.35);
  });

  it("reports restart-only keys by their path and keeps their running values", () => {
    const running = parse();
    const changed = parse({
      cameras: [{ id: "other", source: { type: "testsrc" } }],
      health: { publishHz: 20 },
      model: { name: "centernet", scoreThreshold: 0.5 },
      log: { format: "json" },
    });
    const plan = planReload(running, changed);
    expect(plan.applied).toEqual(["model.scoreThreshold"]);
    expect(plan.needsRestart.sort()).toEqual(["cameras", "health.publishHz", "log.format", "model.name"]);
    expect(plan.next.cameras).toEqual(running.cameras);
    expect(plan.next.health.publishHz).toBe(running.health.publishHz);
    expect(plan.next.model.name).toBe(running.model.name);
    expect(plan.next.model.scoreThreshold).toBe(0.5);
  });

  it("neither applies nor reports the soak section, which the daemon does not read", () => {
    const plan = planReload(parse(), parse({ soak: { warmupS: 30 } }));
    expect(plan).toMatchObject({ applied: [], needsRestart: [] });
  });

  it("finds nothing to do when nothing changed", () => {
    const plan = planReload(parse(), parse());
    expect(plan).toMatchObject({ applied: [], needsRestart: [] });
  });
});
