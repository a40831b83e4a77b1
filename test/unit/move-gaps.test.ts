import { describe, expect, it } from "vitest";
import { MoveGapTracker } from "../../loadtest/move-gaps.js";

describe("MoveGapTracker", () => {
  it("reports a move's gap, from leaving in-sync to in sync again, split by the states between", () => {
    const t = new MoveGapTracker();
    expect(t.onStatus("connecting", 0, 0)).toBeUndefined();
    expect(t.onStatus("syncing", 0, 50)).toBeUndefined();
    // The first sync is not a move.
    expect(t.onStatus("in-sync", 0, 900)).toBeUndefined();
    // A move (the count went up before the session ended), then the way to the next replica.
    expect(t.onStatus("disconnected", 1, 1000)).toBeUndefined();
    expect(t.onStatus("connecting", 1, 1005)).toBeUndefined();
    expect(t.onStatus("syncing", 1, 1205)).toBeUndefined();
    expect(t.onStatus("in-sync", 1, 1240)).toEqual({
      fromMs: 1000,
      totalMs: 240,
      byState: { disconnected: 5, connecting: 200, syncing: 35 },
    });
  });

  it("does not report an absence without a move, nor repeated statuses", () => {
    const t = new MoveGapTracker();
    t.onStatus("in-sync", 0, 0);
    // A stale upstream, no move: nothing.
    expect(t.onStatus("stale", 0, 100)).toBeUndefined();
    expect(t.onStatus("in-sync", 0, 400)).toBeUndefined();
    // A move, with a repeated status on the way (no double count).
    t.onStatus("connecting", 1, 500);
    expect(t.onStatus("connecting", 1, 600)).toBeUndefined();
    expect(t.onStatus("in-sync", 1, 700)).toEqual({
      fromMs: 500,
      totalMs: 200,
      byState: { connecting: 200 },
    });
    // The next absence without a new move is not one either.
    t.onStatus("disconnected", 1, 800);
    expect(t.onStatus("in-sync", 1, 900)).toBeUndefined();
  });
});
