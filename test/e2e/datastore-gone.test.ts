import { describe, expect, it } from "vitest";
import { podObject, seedSmallCluster, wepKey } from "../support/datastore-fixtures.js";
import { startHarness } from "../support/datastore-harness.js";

describe("Datastore: 410 Gone", () => {
  it("relists on a 410 status at watch start and turns vanished objects into deletes", async () => {
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim),
      datastore: { kinds: ["WorkloadEndpoint", "Profile"], backoffInitialMs: 50, backoffMaxMs: 100 },
    });
    await h.converged();
    expect(h.sink.hub.store.has(wepKey("payments", "api-0"))).toBe(true);

    // Keep the pods watch down while pods change, then compact the history past its resourceVersion.
    h.sim.faults.failRequests(500, 400, { resources: ["pods"] });
    h.sim.faults.dropWatches();
    for (let i = 0; i < 4; i++) h.sim.remove("pods", "payments", `api-${i}`);
    h.sim.create("pods", podObject("payments", "late-0", { ip: "10.244.0.250" }));
    h.sim.faults.setHistoryLimit(1);

    await h.converged();
    expect(h.sink.hub.store.has(wepKey("payments", "api-0"))).toBe(false);
    expect(h.sink.hub.store.has(wepKey("payments", "late-0"))).toBe(true);
    expect(await h.metric("tabby_upstream_gone_total", { kind: "WorkloadEndpoint" })).toBeGreaterThanOrEqual(
      1,
    );
    expect(
      await h.metric("tabby_upstream_relists_total", { kind: "WorkloadEndpoint" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      await h.metric("tabby_upstream_watch_restarts_total", { kind: "WorkloadEndpoint", reason: "gone" }),
    ).toBeGreaterThanOrEqual(1);
    // Profiles were not relisted: the diff only touched what the pods resource owns.
    expect(await h.metric("tabby_upstream_relists_total", { kind: "Profile" })).toBe(0);
  });

  it.each([true, false])(
    "relists on an in-stream ERROR 410 event; only the relist can reveal the deletes (ingest worker: %s)",
    async (ingestWorker) => {
      const h = await startHarness({
        seed: (sim) => seedSmallCluster(sim),
        datastore: { kinds: ["WorkloadEndpoint", "Profile"], ingestWorker },
      });
      await h.converged();
      await expect.poll(() => h.sim.openWatches).toBe(3); // every watch is open to receive the ERROR event
      const relistsBefore = await h.metric("tabby_upstream_relists_total");

      // Stalled: the DELETED events are queued on the server, then discarded when the watch expires.
      h.sim.faults.stallWatches(true);
      h.sim.remove("pods", "payments", "api-5");
      h.sim.remove("serviceaccounts", "payments", "api");
      h.sim.patch("namespaces", undefined, "payments", { metadata: { labels: { expired: "yes" } } });
      h.sim.faults.expireWatches();

      await expect
        .poll(() => h.metric("tabby_upstream_relists_total"), { timeout: 5000 })
        .toBeGreaterThanOrEqual(relistsBefore + 3);
      await h.converged();
      expect(h.sink.hub.store.has(wepKey("payments", "api-5", "node-2"))).toBe(false);
      expect(h.sink.hub.store.has("Profile/ksa.payments.api")).toBe(false);
      expect(h.sink.hub.store.has("Profile/kns.payments")).toBe(true);
      expect(await h.metric("tabby_upstream_events_total", { kind: "WorkloadEndpoint", type: "error" })).toBe(
        1,
      );
      expect(await h.metric("tabby_upstream_gone_total", { kind: "Profile" })).toBe(2);
      h.sim.faults.stallWatches(false);
    },
  );
});
