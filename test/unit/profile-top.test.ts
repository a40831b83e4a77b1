import { describe, expect, it } from "vitest";
import { ownTotals, stageTimes } from "../../loadtest/profile-top.js";

/** A profile node: `url` as V8 writes it for the compiled server. */
function node(id: number, functionName: string, url: string, children: number[] = []) {
  return { id, callFrame: { functionName, url, lineNumber: 0 }, children };
}

// root → resource-loop #watch → watch-decoder #decode → (JSON.parse, self)
//      → store upsert → msgpackr pack
//      → session send (nothing tabby-specific below it)
//      → (idle), (garbage collector)
const profile = {
  nodes: [
    node(1, "(root)", "", [2, 6, 8, 9, 10]),
    node(2, "#watch", "file:///app/dist/src/server/datastore/resource-loop.js", [3, 4]),
    node(3, "#decode", "file:///app/dist/src/server/datastore/watch-decoder.js"),
    node(4, "upsert", "file:///app/dist/src/snapshot/store.js", [5]),
    node(5, "pack", "file:///app/node_modules/msgpackr/pack.js"),
    node(6, "send", "file:///app/dist/src/server/fanout/session.js", [7]),
    node(7, "writev", ""),
    node(8, "(idle)", ""),
    node(9, "(garbage collector)", ""),
    node(10, "tick", "node:internal/timers"),
  ],
  // 1 ms per sample: decode, pack (under upsert), writev (under send), idle, GC, other, then decode at 6 ms.
  samples: [3, 5, 7, 8, 9, 10, 3],
  timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000],
  startTime: 0,
  endTime: 7000,
};

describe("profile-top stage times", () => {
  it("attributes each sample to the innermost stage on its stack", () => {
    const byStage = Object.fromEntries(stageTimes(profile).map((s) => [s.stage, s.ms]));
    expect(byStage).toEqual({
      "watch decode (JSON.parse)": 2,
      "store upsert (encode, compare)": 1,
      "socket writes (ws send, writev)": 1,
      idle: 1,
      GC: 1,
      other: 1,
    });
  });

  it("counts only the samples in the window", () => {
    // Samples end at 1..7 ms; [1.5 ms, 4.5 ms) holds the 2nd, 3rd and 4th (pack, writev, idle).
    const stages = stageTimes(profile, 1.5, 4.5);
    expect(stages.map((s) => s.stage).sort()).toEqual(
      ["idle", "socket writes (ws send, writev)", "store upsert (encode, compare)"].sort(),
    );
    expect(stages.reduce((a, s) => a + s.percent, 0)).toBeCloseTo(100, 0);
  });
});

describe("profile-top total time of tabby's functions", () => {
  it("adds each sample to every tabby function on its stack, once, and to nothing else", () => {
    const totals = Object.fromEntries(ownTotals(profile).map((f) => [f.name, f.selfMs]));
    expect(totals).toEqual({ "#watch": 3, "#decode": 2, upsert: 1, send: 1 });
    expect(ownTotals(profile)[0]).toMatchObject({
      name: "#watch",
      location: "src/server/datastore/resource-loop.js:1",
      selfPercent: 42.9,
    });
  });

  it("counts only the samples in the window", () => {
    const totals = Object.fromEntries(ownTotals(profile, 1.5, 4.5).map((f) => [f.name, f.selfMs]));
    expect(totals).toEqual({ "#watch": 1, upsert: 1, send: 1 });
  });
});
