import { describe, expect, it } from "vitest";
import { FanoutQueue } from "../../src/server/fanout/fanout-queue.js";
import type { Session } from "../../src/server/fanout/session.js";

// The queue only iterates and hands out the items; plain objects stand in for sessions.
const fakeSessions = (n: number): Session[] =>
  Array.from({ length: n }, (_, i) => ({ id: i }) as unknown as Session);

describe("fan-out queue", () => {
  it("runs jobs in order, yields between slices, and runs the first slice synchronously", async () => {
    const visits: string[] = [];
    const errors: unknown[] = [];
    const queue = new FanoutQueue(3, (err) => errors.push(err));
    const sessions = fakeSessions(5);
    let finished = 0;
    for (const job of ["a", "b"]) {
      queue.push({
        sessions,
        visit: (s) => visits.push(`${job}${s.id}`),
        finish: () => finished++,
      });
    }
    expect(visits).toEqual(["a0", "a1", "a2"]);
    expect(queue.length).toBe(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(visits).toEqual(["a0", "a1", "a2", "a3", "a4", "b0"]);
    expect(finished).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(visits.slice(6)).toEqual(["b1", "b2", "b3"]);
    expect(finished).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(visits.slice(9)).toEqual(["b4"]);
    expect(finished).toBe(2);
    expect(queue.length).toBe(0);
    expect(errors).toEqual([]);
  });

  it("reports a failing visit and carries on with the next session", () => {
    const errors: unknown[] = [];
    const queue = new FanoutQueue(100, (err) => errors.push(err));
    const seen: number[] = [];
    queue.push({
      sessions: fakeSessions(3),
      visit: (s) => {
        if (s.id === 1) throw new Error("boom");
        seen.push(s.id);
      },
      finish: () => undefined,
    });
    expect(seen).toEqual([0, 2]);
    expect(errors).toHaveLength(1);
  });

  it("drops pending jobs on close", async () => {
    const queue = new FanoutQueue(1, () => undefined);
    const seen: number[] = [];
    queue.push({ sessions: fakeSessions(3), visit: (s) => seen.push(s.id), finish: () => undefined });
    queue.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([0]);
    queue.push({ sessions: fakeSessions(1), visit: (s) => seen.push(s.id), finish: () => undefined });
    expect(seen).toEqual([0]);
  });
});
