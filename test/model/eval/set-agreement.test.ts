// Per-set agreement and the bar's verdict: the metrics on detections built here (so every
// number can be checked by hand), then real models on a small set through `perceptd eval`.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import type { Box, Detection } from "../../../src/core/types.ts";
import { findsOutOfScene, judgeBar } from "../../../src/model/eval/bar.ts";
import { setAgreementMetrics, type SetAgreement } from "../../../src/model/eval/set-agreement.ts";
import { perceptd } from "../../cli/run-cli.ts";

const det = (label: string, score: number, box: Box): Detection => ({ classId: -1, label, score, box });
const at = (x: number): Box => [x, 0, x + 10, 10];

describe("setAgreementMetrics", () => {
  it("counts confident reference objects (>= 0.5) found at model score >= 0.3 and IoU >= 0.5, per class", () => {
    const frames = [
      {
        // person 0.9 and 0.6 confident, person 0.4 only AP ground truth; car 0.8 confident
        reference: [det("person", 0.9, at(0)), det("person", 0.6, at(20)), det("person", 0.4, at(40)), det("car", 0.8, at(60))],
        // first person found, second only at 0.2 (below 0.3: not found), car shifted off (IoU < 0.5)
        predicted: [det("person", 0.7, at(0)), det("person", 0.2, at(20)), det("car", 0.9, at(67))],
      },
    ];
    const m = setAgreementMetrics("s", "m", "r", frames);
    const person = m.perClass.find((c) => c.label === "person")!;
    expect([person.confident, person.found, person.references]).toEqual([2, 1, 3]);
    const car = m.perClass.find((c) => c.label === "car")!;
    expect([car.confident, car.found]).toEqual([1, 0]);
    expect(m.recall).toBeCloseTo(1 / 3, 10);
    expect(m.collapsed, "fewer than 5 objects never count as collapse").toEqual([]);
    expect(m.perClass.map((c) => c.label).slice(0, 6)).toEqual(["person", "bicycle", "car", "motorcycle", "bus", "truck"]);
  });

  it("flags a class with >= 5 confident objects found below 0.8, and reports classes outside the road six", () => {
    const reference = Array.from({ length: 5 }, (_, i) => det("dog", 0.9, at(i * 20)));
    const predicted = reference.slice(0, 3).map((d) => ({ ...d, score: 0.8 }));
    const m = setAgreementMetrics("s", "m", "r", [{ reference, predicted }]);
    expect(m.collapsed).toEqual(["dog"]);
    expect(m.perClass.find((c) => c.label === "dog")!.recall).toBeCloseTo(0.6, 10);
    expect(m.classesPresent).toBe(1);
    // AP over all classes present: the dog is the only one
    expect(m.map50).toBeCloseTo(m.perClass.find((c) => c.label === "dog")!.ap50, 10);
  });

  it("a model identical to its reference scores 1 everywhere", () => {
    const reference = [det("person", 0.9, at(0)), det("bus", 0.55, at(30)), det("cup", 0.35, at(60))];
    const m = setAgreementMetrics("s", "m", "r", [{ reference, predicted: reference }]);
    expect([m.map50, m.recall, m.classesPresent]).toEqual([1, 1, 3]);
  });
});

function fakeSet(set: string, personAp: number, recall: number, collapsed: string[]): SetAgreement {
  const m = setAgreementMetrics(set, "m", "r", [{ reference: [det("person", 0.9, at(0))], predicted: [det("person", 0.9, at(0))] }]);
  m.perClass[0].ap50 = personAp;
  m.recall = recall;
  m.collapsed = collapsed;
  for (const c of m.perClass) c.collapsed = collapsed.includes(c.label);
  return m;
}

describe("judgeBar", () => {
  const latency = { referenceP50Ms: 40, modelP50Ms: 20, speedup: 2, threads: 2, runs: 30 };
  it("holds only when every check passes", () => {
    const good = judgeBar("m", "r", [fakeSet("vtest:held-out", 0.95, 1, []), fakeSet("corpus:out-of-scene", 1, 0.93, [])], latency);
    expect(good.holds).toBe(true);
    const slow = judgeBar("m", "r", good.sets, { ...latency, speedup: 1.4 });
    expect(slow.checks.filter((c) => !c.pass).map((c) => c.name)).toEqual(["latency"]);
    const blind = judgeBar("m", "r", [fakeSet("vtest:held-out", 0.95, 1, []), fakeSet("corpus:out-of-scene", 1, 0.5, ["person"])], latency);
    expect(blind.checks.filter((c) => !c.pass).map((c) => c.name)).toEqual(["out-of-scene recall", "out-of-scene class collapse"]);
    const inClip = judgeBar("m", "r", [fakeSet("vtest:held-out", 0.91, 1, []), fakeSet("corpus:out-of-scene", 1, 1, [])], latency);
    expect(inClip.checks.filter((c) => !c.pass).map((c) => c.name)).toEqual(["held-out person AP@0.5"]);
  });

  it("a variant ships when it holds the third line (out of scene), whatever its speed or in-clip figures", () => {
    const oos = (recall: number, collapsed: string[]): SetAgreement => fakeSet("corpus:out-of-scene", 1, recall, collapsed);
    expect(findsOutOfScene(judgeBar("m", "r", [fakeSet("vtest:held-out", 0.9, 1, []), oos(0.93, [])], { ...latency, speedup: 1.1 }))).toBe(true);
    expect(findsOutOfScene(judgeBar("m", "r", [fakeSet("vtest:held-out", 0.95, 1, []), oos(0.652, ["person"])], latency))).toBe(false);
    expect(findsOutOfScene(judgeBar("m", "r", [fakeSet("vtest:held-out", 0.95, 1, []), oos(0.95, ["person"])], latency))).toBe(false);
    expect(findsOutOfScene(judgeBar("m", "r", [fakeSet("vtest:held-out", 0.95, 1, [])], latency)), "out-of-scene set not measured").toBe(false);
  });

  it("a set or the latency not measured fails its check rather than passing by absence", () => {
    const v = judgeBar("m", "r", [], null);
    expect(v.holds).toBe(false);
    expect(v.checks.every((c) => !c.pass && c.value === null)).toBe(true);
  });
});

const VTEST = resolve(".cache/fixtures/vtest.avi");
describe.skipIf(!existsSync(VTEST))("perceptd eval per data set", () => {
  it("reports each set on its own; a model against itself agrees fully", async () => {
    const run = await perceptd("eval", "--model", "nanodet-u8", "--reference", "nanodet-u8", "--data", `${VTEST}:300-304`, "--data", `${VTEST}:600-602`, "--json");
    expect(run.code, run.stderr).toBe(0);
    const sets = JSON.parse(run.stdout) as SetAgreement[];
    expect(sets.map((s) => [s.set, s.frames])).toEqual([
      [`${VTEST}:300-304`, 5],
      [`${VTEST}:600-602`, 3],
    ]);
    for (const s of sets) expect([s.map50, s.recall, s.collapsed.length]).toEqual([1, 1, 0]);
  }, 120_000);

  it("centernet against nanodet: a table per set, readable", async () => {
    const run = await perceptd("eval", "--model", "centernet-u8", "--reference", "nanodet-u8", "--data", `${VTEST}:400-403`);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/vtest\.avi:400-403: centernet-u8 against nanodet-u8, 4 frames/);
    expect(run.stdout).toMatch(/\| person +\| +\d+ \| +[01]\.\d{3} \|/);
    expect(run.stdout).toMatch(/recall of the reference's confident objects \(score >= 0\.5; same class, IoU >= 0\.5, model score >= 0\.3\): [01]\.\d{3} \(\d+\/\d+\)/);
  }, 120_000);

  it("names a data spec it cannot use", async () => {
    const run = await perceptd("eval", "--model", "nanodet-u8", "--reference", "nanodet-u8", "--data", `${VTEST}:790-900`);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/vtest\.avi: frame range 790-900 goes past the end of the video: it has 795 frames/);
  }, 120_000);
});
