import { describe, expect, it } from "vitest";
import { quantile } from "../../src/chaos/campaign.js";
import { FAULT_KINDS, laneOf, makeSchedule } from "../../src/chaos/schedule.js";

describe("chaos schedule", () => {
  const options = { durationMs: 8000, servers: 2, faults: [3, 7] as const };

  it("is the same for the same seed, and differs between seeds", () => {
    expect(makeSchedule(42, options)).toEqual(makeSchedule(42, options));
    expect(makeSchedule(42, options)).not.toEqual(makeSchedule(43, options));
  });

  it("stays within the run, sorted by time, within the fault count", () => {
    for (let seed = 0; seed < 200; seed++) {
      const s = makeSchedule(seed, options);
      expect(s.length).toBeGreaterThanOrEqual(3);
      expect(s.length).toBeLessThanOrEqual(7);
      for (const f of s) {
        expect(f.atMs).toBeGreaterThanOrEqual(0);
        expect(f.atMs).toBeLessThan(options.durationMs);
        expect(f.server).toBeLessThan(options.servers);
        expect(FAULT_KINDS).toContain(f.kind);
      }
      expect(s.map((f) => f.atMs)).toEqual([...s.map((f) => f.atMs)].sort((a, b) => a - b));
    }
  });

  it("draws every kind over a few hundred runs, and serializes faults per lane", () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 300; seed++) for (const f of makeSchedule(seed, options)) seen.add(f.kind);
    expect([...seen].sort()).toEqual([...FAULT_KINDS].sort());
    expect(laneOf({ atMs: 0, kind: "server-kill9", durationMs: 0, server: 1 })).toBe("server-1");
    expect(laneOf({ atMs: 0, kind: "proxy-cut", durationMs: 0, server: 0 })).toBe("proxy-0");
    expect(laneOf({ atMs: 0, kind: "api-pause", durationMs: 0, server: 0 })).toBe("api");
  });

  it("quantile is the nearest rank", () => {
    expect(quantile([], 0.5)).toBe(0);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
  });
});
