import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Backoff } from "../../src/client/backoff.js";
import { ServerPicker } from "../../src/client/server-picker.js";

describe("Backoff", () => {
  it("doubles from the initial delay up to the cap, and starts over after reset()", () => {
    const b = new Backoff({ initialMs: 200, maxMs: 10_000, random: () => 0.5 });
    expect(Array.from({ length: 8 }, () => b.next())).toEqual([
      200, 400, 800, 1600, 3200, 6400, 10_000, 10_000,
    ]);
    b.reset();
    expect(b.next()).toBe(200);
  });

  it("jitters each delay within ×[0.5, 1.5] of its base and never above the cap", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }),
        (rs) => {
          let i = 0;
          const b = new Backoff({ initialMs: 100, maxMs: 5000, random: () => rs[i++ % rs.length]! });
          for (let n = 0; n < rs.length; n++) {
            const base = Math.min(5000, 100 * 2 ** n);
            const d = b.next();
            expect(d).toBeGreaterThanOrEqual(Math.round(base * 0.5));
            expect(d).toBeLessThanOrEqual(Math.min(5000, Math.round(base * 1.5)));
          }
        },
      ),
    );
  });

  it("survives thousands of attempts without overflowing", () => {
    const b = new Backoff({ initialMs: 1, maxMs: 60_000, random: () => 0.99 });
    for (let i = 0; i < 5000; i++) b.next();
    expect(b.next()).toBe(60_000);
  });
});

describe("ServerPicker", () => {
  const servers = ["ws://a", "ws://b", "ws://c"];

  it("does not repeat a server until every one was tried, nor right after a round", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 0.999, noNaN: true }), { minLength: 12, maxLength: 12 }),
        (rs) => {
          let i = 0;
          const p = new ServerPicker(() => rs[i++]!);
          const picks = Array.from({ length: 12 }, () => p.pick(servers)!);
          for (let round = 0; round < 4; round++) {
            expect(new Set(picks.slice(round * 3, round * 3 + 3)).size).toBe(3);
          }
          for (let j = 1; j < picks.length; j++) expect(picks[j]).not.toBe(picks[j - 1]);
        },
      ),
    );
  });

  it("prefers, avoids, and never picks a rejected server", () => {
    const p = new ServerPicker(() => 0);
    expect(p.pick(servers, { prefer: "ws://c" })).toBe("ws://c");
    p.newRound();
    expect(p.pick(servers, { prefer: "ws://c" })).toBe("ws://c"); // resume with the same server
    p.newRound();
    expect(p.pick(servers, { avoid: "ws://a" })).toBe("ws://b");
    p.reject("ws://a");
    p.reject("ws://b");
    expect(p.isAllRejected(servers)).toBe(false);
    expect(p.pick(servers)).toBe("ws://c");
    expect(p.pick(servers, { avoid: "ws://c" })).toBe("ws://c"); // the only one left
    p.reject("ws://c");
    expect(p.isAllRejected(servers)).toBe(true);
    expect(p.pick(servers)).toBeUndefined();
  });
});
