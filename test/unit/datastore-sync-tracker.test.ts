import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { findResource } from "../../src/server/datastore/index.js";
import { SyncTracker } from "../../src/server/datastore/sync-tracker.js";
import { Backoff } from "../../src/server/datastore/timing.js";
import type { KindState, UpstreamSink } from "../../src/snapshot/index.js";

function recordingSink(): UpstreamSink & { states: [string, KindState][] } {
  const states: [string, KindState][] = [];
  return {
    states,
    upsert: () => undefined,
    upsertPrepared: () => undefined,
    delete: () => undefined,
    keysOfKind: () => [],
    setKindState: (kind, state) => states.push([kind, state]),
  };
}

describe("SyncTracker", () => {
  const namespaces = findResource("namespaces")!;
  const serviceaccounts = findResource("serviceaccounts")!;
  const ippools = findResource("ippools")!;
  let tracker: SyncTracker;
  let sink: ReturnType<typeof recordingSink>;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    sink = recordingSink();
    tracker = new SyncTracker({
      resources: [namespaces, serviceaccounts, ippools],
      sink,
      clock: () => Date.now(),
      staleAfterMs: 30_000,
    });
    tracker.start();
  });
  afterEach(() => {
    tracker.close();
    vi.useRealTimers();
  });

  const state = (kind: string): string | undefined => tracker.states().get(kind)?.state;

  it("reports syncing at start, in-sync once every producing resource listed", () => {
    expect(sink.states.map(([k, s]) => [k, s.state])).toEqual([
      ["Profile", "syncing"],
      ["IPPool", "syncing"],
    ]);
    tracker.listed(namespaces);
    expect(state("Profile")).toBe("syncing");
    tracker.listed(serviceaccounts);
    expect(state("Profile")).toBe("in-sync");
    expect(sink.states.at(-1)).toEqual(["Profile", { state: "in-sync", since: 1_000_000 }]);
  });

  it("goes stale after failing for staleAfterMs, and back to in-sync on recovery", () => {
    tracker.listed(ippools);
    tracker.failing(ippools, "ERR_DATASTORE_WATCH: boom");
    vi.advanceTimersByTime(29_999);
    expect(state("IPPool")).toBe("in-sync");
    tracker.failing(ippools, "ERR_DATASTORE_WATCH: boom again"); // does not restart the clock
    vi.advanceTimersByTime(1);
    expect(tracker.states().get("IPPool")).toEqual({
      state: "stale",
      since: 1_030_000,
      reason: "ippools: ERR_DATASTORE_WATCH: boom again",
    });
    expect(tracker.isStale("IPPool")).toBe(true);
    tracker.healthy(ippools, "established");
    expect(state("IPPool")).toBe("in-sync");
  });

  it("does not go stale when the failure heals in time", () => {
    tracker.listed(ippools);
    tracker.failing(ippools, "x");
    vi.advanceTimersByTime(10_000);
    tracker.healthy(ippools, "data");
    vi.advanceTimersByTime(60_000);
    expect(state("IPPool")).toBe("in-sync");
  });

  it("a silent watch counts from the last activity, and only data ends it", () => {
    tracker.listed(ippools);
    tracker.failing(ippools, "ERR_DATASTORE_WATCHDOG", { sinceMs: Date.now() - 30_000, isSilence: true });
    vi.advanceTimersByTime(0);
    expect(state("IPPool")).toBe("stale");
    tracker.healthy(ippools, "established");
    expect(state("IPPool")).toBe("stale");
    tracker.healthy(ippools, "data");
    expect(state("IPPool")).toBe("in-sync");
  });

  it("a kind fed by two resources is stale when either is", () => {
    tracker.listed(namespaces);
    tracker.listed(serviceaccounts);
    tracker.failing(serviceaccounts, "x");
    vi.advanceTimersByTime(30_000);
    expect(state("Profile")).toBe("stale");
    tracker.healthy(serviceaccounts, "data");
    expect(state("Profile")).toBe("in-sync");
  });

  it("a silent API server makes every kind stale, counted from the last thing heard", () => {
    tracker.listed(namespaces);
    tracker.listed(serviceaccounts);
    tracker.listed(ippools);
    tracker.upstreamFailing("ERR_DATASTORE_PROBE: no answer", 1_000_000 - 20_000);
    expect(tracker.isUpstreamFailing).toBe(true);
    vi.advanceTimersByTime(9_999);
    expect(state("IPPool")).toBe("in-sync");
    vi.advanceTimersByTime(1);
    expect(state("IPPool")).toBe("stale");
    expect(state("Profile")).toBe("stale");
    expect(tracker.states().get("IPPool")?.reason).toBe("API server: ERR_DATASTORE_PROBE: no answer");
    tracker.upstreamHealthy();
    expect(state("IPPool")).toBe("in-sync");
    expect(state("Profile")).toBe("in-sync");
    expect(tracker.isUpstreamFailing).toBe(false);
  });

  it("a watchdog silence during an API outage heals with a re-opened watch, not only with data", () => {
    tracker.listed(ippools);
    tracker.failing(ippools, "ERR_DATASTORE_WATCHDOG: quiet", { isSilence: true });
    tracker.healthy(ippools, "established");
    vi.advanceTimersByTime(30_000);
    expect(state("IPPool")).toBe("stale"); // outside an outage: a silent watch needs data
    tracker.healthy(ippools, "data");
    tracker.upstreamFailing("ERR_DATASTORE_PROBE: no answer", Date.now());
    tracker.failing(ippools, "ERR_DATASTORE_WATCHDOG: quiet", { isSilence: true });
    vi.advanceTimersByTime(30_000);
    expect(state("IPPool")).toBe("stale");
    tracker.upstreamHealthy();
    tracker.healthy(ippools, "established");
    expect(state("IPPool")).toBe("in-sync");
  });

  it("reports nothing after close", () => {
    tracker.failing(ippools, "x");
    const before = sink.states.length;
    tracker.close();
    vi.advanceTimersByTime(60_000);
    expect(sink.states.length).toBe(before);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("Backoff", () => {
  it("doubles up to the cap, jittered in [d/2, d), and resets", () => {
    const lo = new Backoff(500, 30_000, () => 0);
    const hi = new Backoff(500, 30_000, () => 0.999999);
    const los = Array.from({ length: 10 }, () => lo.next());
    const his = Array.from({ length: 10 }, () => hi.next());
    expect(los).toEqual([250, 500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000, 15_000]);
    his.forEach((h, i) => {
      expect(h).toBeLessThan(los[i]! * 2);
      expect(h).toBeGreaterThan(los[i]! * 2 - 1);
    });
    lo.reset();
    expect(lo.next()).toBe(250);
  });
});
