/**
 * Issue 12's leak target at CI size: agents behind a TCP proxy that cuts every connection, 100 times
 * each, against one server process; after a full GC its file descriptors and sockets are where they were
 * before (a cut session leaves nothing behind) and its heap has not grown beyond noise. The 1000-reconnect
 * run is `npm run bench:leak` (docs/RELIABILITY.md).
 */
import { describe, expect, it } from "vitest";
import { reconnectLeak } from "../../bench/reconnect-leak.js";

describe("forced reconnects", () => {
  it("100 cuts per agent leave the server's fds, sockets and heap where they were", async () => {
    const r = await reconnectLeak({
      agents: 3,
      reconnects: 100,
      nodes: 3,
      churnPerSecond: 10,
      warmupCycles: 10,
      sampleEvery: 0,
      cycleTimeoutMs: 10_000,
    });
    expect(r.before.connections).toBe(3);
    expect(r.after.connections).toBe(3);
    expect(r.after.fds - r.before.fds).toBeLessThanOrEqual(3);
    expect(r.after.sockets - r.before.sockets).toBeLessThanOrEqual(3);
    expect(r.after.heapUsedBytes - r.before.heapUsedBytes).toBeLessThan(8 * 2 ** 20);
    // Each cut session came back by resuming, not by a new snapshot.
    expect(r.resumes + r.snapshots).toBe(300);
    expect(r.resumes).toBeGreaterThanOrEqual(290);
  }, 60_000);
});
