import { describe, expect, it, vi } from "vitest";
import { seedSmallCluster } from "../support/datastore-fixtures.js";
import { openFdCount, startHarness } from "../support/datastore-harness.js";

describe("Datastore: no socket leak across watch reconnects", () => {
  it("holds no more sockets after 200 forced watch reconnects than before", async () => {
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim, { pods: 2 }),
      datastore: { kinds: ["Node", "IPPool"], backoffInitialMs: 1, backoffMaxMs: 5 },
    });
    await h.converged();
    await expect.poll(() => h.sim.openWatches).toBe(2);
    // The ingest worker's thread (its event loop's descriptors) is a fixed cost, counted once it is up.
    await expect.poll(() => h.ds.ingestWorker?.isAvailable, { timeout: 10_000 }).toBe(true);
    const socketsBefore = h.ds.socketCount();
    const fdsBefore = openFdCount();
    const listsBefore = h.sim.requestCounts["list nodes"];
    const restarts = (): Promise<number> =>
      h.metric("tabby_upstream_watch_restarts_total", { reason: "closed" });

    const rounds = 100; // 2 watches each: 200 reconnects
    for (let i = 1; i <= rounds; i++) {
      h.sim.faults.dropWatches();
      if (i % 25 === 0)
        h.sim.patch("nodes", undefined, "node-0", { metadata: { labels: { round: String(i) } } });
      await vi.waitFor(
        async () => {
          if ((await restarts()) < 2 * i) throw new Error(`round ${i}: watches not restarted yet`);
          if (h.sim.openWatches !== 2 || h.ds.upstreamWatches !== 2)
            throw new Error(`round ${i}: not re-watching`);
        },
        { timeout: 5000, interval: 2 },
      );
    }

    expect(await restarts()).toBe(2 * rounds);
    expect(h.sim.requestCounts["watch nodes"]).toBeGreaterThanOrEqual(rounds + 1);
    expect(h.sim.requestCounts["list nodes"]).toBe(listsBefore); // re-watched, never relisted
    await h.converged();
    // The shared keep-alive agent reuses its sockets: no socket per reconnect.
    expect(h.ds.socketCount()).toBeLessThanOrEqual(socketsBefore);
    if (fdsBefore !== undefined) expect(openFdCount()).toBeLessThanOrEqual(fdsBefore + 2);
  });
});
