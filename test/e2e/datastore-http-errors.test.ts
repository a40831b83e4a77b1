import { describe, expect, it } from "vitest";
import { podObject, seedSmallCluster } from "../support/datastore-fixtures.js";
import { startHarness } from "../support/datastore-harness.js";

describe.each([500, 429] as const)("Datastore: HTTP %i", (status) => {
  it("retries with backoff, goes stale, and recovers to the exact state", async () => {
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim),
      datastore: {
        kinds: ["WorkloadEndpoint", "Node"],
        staleAfterMs: 300,
        backoffInitialMs: 20,
        backoffMaxMs: 100,
      },
    });
    await h.converged();

    h.sim.faults.failRequests(status, 1200);
    h.sim.faults.dropWatches();
    h.sim.remove("pods", "payments", "api-1");
    h.sim.create("pods", podObject("payments", "during-outage", { ip: "10.244.1.201" }));
    h.sim.patch("nodes", undefined, "node-0", { metadata: { labels: { outage: "yes" } } });

    await expect.poll(() => h.sink.state("WorkloadEndpoint"), { timeout: 5000 }).toBe("stale");
    expect(h.ds.kindStates().get("WorkloadEndpoint")?.reason).toContain("ERR_DATASTORE_WATCH");
    await h.converged();
    expect(h.sink.hasBeen("Node", "stale")).toBe(true);
    expect(await h.metric("tabby_upstream_watch_restarts_total", { reason: "error" })).toBeGreaterThanOrEqual(
      2,
    );
    expect(await h.metric("tabby_upstream_stale")).toBe(0);
    expect(h.sim.stats.injectedFailures).toBeGreaterThanOrEqual(2);
  });

  it("keeps a kind syncing while its first list fails, then syncs", async () => {
    const h = await startHarness({
      seed: (sim) => {
        seedSmallCluster(sim);
        sim.faults.failRequests(status, 500, { resources: ["nodes"] });
      },
      datastore: { kinds: ["Node", "IPPool"], staleAfterMs: 60_000, backoffInitialMs: 20, backoffMaxMs: 100 },
    });
    await expect.poll(() => h.sink.state("IPPool")).toBe("in-sync");
    expect(h.sink.state("Node")).toBe("syncing");
    await h.converged();
    expect(h.sink.hasBeen("Node", "stale")).toBe(false);
    expect(h.sim.requestCounts["list nodes"]).toBeGreaterThanOrEqual(2);
  });
});
