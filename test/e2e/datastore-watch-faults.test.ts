import { describe, expect, it } from "vitest";
import { podObject, seedSmallCluster } from "../support/datastore-fixtures.js";
import { startHarness } from "../support/datastore-harness.js";

describe("Datastore: dropped and stalled watches", () => {
  it("re-watches from the last resourceVersion after a dropped watch, without relisting", async () => {
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim),
      datastore: { kinds: ["WorkloadEndpoint", "Profile", "Node"] },
    });
    await h.converged();
    await expect.poll(() => h.sim.openWatches).toBe(4);
    const listsBefore = h.sim.requestCounts["list pods"];
    const watchesBefore = h.sim.requestCounts["watch pods"] ?? 0;

    h.sim.faults.dropWatches();
    h.sim.remove("pods", "payments", "api-4");
    h.sim.create("pods", podObject("payments", "api-new", { ip: "10.244.2.200" }));
    h.sim.patch("nodes", undefined, "node-2", { metadata: { labels: { zone: "b" } } });
    h.sim.patch("namespaces", undefined, "default", { metadata: { labels: { team: "web" } } });
    await h.converged();

    expect(
      await h.metric("tabby_upstream_watch_restarts_total", { reason: "closed" }),
    ).toBeGreaterThanOrEqual(4);
    expect(h.sim.requestCounts["watch pods"]).toBeGreaterThan(watchesBefore);
    expect(h.sim.requestCounts["list pods"]).toBe(listsBefore);
    expect(await h.metric("tabby_upstream_relists_total")).toBe(0);
    expect(h.sink.hasBeen("WorkloadEndpoint", "stale")).toBe(false);
  });

  it("restarts a stalled watch (watchdog), reports the kind stale, recovers when data flows", async () => {
    const h = await startHarness({
      sim: { bookmarkIntervalMs: 100 },
      seed: (sim) => seedSmallCluster(sim),
      datastore: { kinds: ["Node", "IPPool"], watchdogMs: 1000, staleAfterMs: 200 },
    });
    await h.converged();
    // Bookmarks every 100 ms keep healthy watches well inside the watchdog.
    await expect.poll(() => h.sim.stats.bookmarksSent, { timeout: 5000 }).toBeGreaterThan(2);
    expect(await h.metric("tabby_upstream_watch_restarts_total", { reason: "watchdog" })).toBe(0);

    h.sim.faults.stallWatches(true);
    h.sim.patch("nodes", undefined, "node-0", { metadata: { labels: { stalled: "yes" } } });
    await expect
      .poll(() => h.metric("tabby_upstream_watch_restarts_total", { kind: "Node", reason: "watchdog" }), {
        timeout: 5000,
      })
      .toBeGreaterThanOrEqual(1);
    await expect.poll(() => h.sink.state("Node"), { timeout: 5000 }).toBe("stale");
    expect(h.ds.kindStates().get("Node")?.reason).toMatch(/ERR_DATASTORE_WATCHDOG/);
    expect(await h.metric("tabby_upstream_stale", { kind: "Node" })).toBe(1);
    // The change made while stalled has not arrived.
    expect(
      (h.sink.hub.store.valueOf("Node/node-0")?.metadata as { labels: object }).labels,
    ).not.toHaveProperty("stalled");

    h.sim.faults.stallWatches(false);
    await h.converged();
    expect(h.sink.state("Node")).toBe("in-sync");
    expect(await h.metric("tabby_upstream_stale", { kind: "Node" })).toBe(0);
    expect(await h.metric("tabby_upstream_last_event_age_seconds", { kind: "Node" })).toBeLessThan(5);
  });
});
