// The bench's on-demand collection, which keeps earlier scenarios' garbage out of timed windows.
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { collectGarbage } from "../../../src/cli/bench/collect-garbage.ts";

function unreachableObject(): WeakRef<object> {
  return new WeakRef({ payload: new Array(1000).fill("x") });
}

describe("collectGarbage", () => {
  it("reclaims an object nothing refers to", async () => {
    const ref = unreachableObject();
    // A WeakRef's target survives until the job that created or read it ends.
    await nextTurn();
    collectGarbage();
    await nextTurn();
    expect(ref.deref(), "an unreachable object should be gone after a full collection").toBeUndefined();
  });

  it("keeps what is still referenced, and can run again", async () => {
    const kept = { payload: [1, 2, 3] };
    const ref = new WeakRef(kept);
    await nextTurn();
    collectGarbage();
    collectGarbage();
    await nextTurn();
    expect(ref.deref(), "a referenced object must survive a collection").toBe(kept);
  });
});
