import { describe, expect, it } from "vitest";
import { seedSmallCluster } from "../support/datastore-fixtures.js";
import { startHarness } from "../support/datastore-harness.js";

describe("Datastore: Calico CRDs not installed", () => {
  it("counts a missing CRD as empty and in sync, picks it up once installed, drops it when removed", async () => {
    const h = await startHarness({
      sim: { installedCrds: ["globalnetworkpolicies"] },
      seed: (sim) => {
        sim.create("nodes", { metadata: { name: "node-0" } });
        sim.create("globalnetworkpolicies", { metadata: { name: "default.a" }, spec: { selector: "all()" } });
      },
      datastore: { kinds: ["IPPool", "GlobalNetworkPolicy", "Node"], missingCrdRecheckMs: 200 },
    });
    await h.converged();
    expect(h.sink.state("IPPool")).toBe("in-sync");
    expect([...h.sink.keysOfKind("IPPool")]).toEqual([]);
    expect(h.ds.upstreamWatches).toBeLessThanOrEqual(2); // no watch on a resource that is not there

    h.sim.installCrd("ippools");
    h.sim.create("ippools", { metadata: { name: "pool-a" }, spec: { cidr: "10.1.0.0/16" } });
    await expect.poll(() => h.sink.hub.store.has("IPPool/pool-a"), { timeout: 5000 }).toBe(true);
    await h.converged();
    await expect.poll(() => h.ds.upstreamWatches).toBe(3);
    h.sim.patch("ippools", undefined, "pool-a", { spec: { natOutgoing: true } });
    await h.converged();

    h.sim.uninstallCrd("ippools");
    await expect.poll(() => h.sink.hub.store.has("IPPool/pool-a"), { timeout: 5000 }).toBe(false);
    await h.converged();
    expect(h.sink.state("IPPool")).toBe("in-sync");
    expect(h.sink.hasBeen("IPPool", "stale")).toBe(false);
    expect(
      await h.metric("tabby_upstream_watch_restarts_total", { kind: "IPPool", reason: "missing" }),
    ).toBeGreaterThanOrEqual(1);
  });

  it("with no Calico CRD at all, every Calico kind is in sync and empty", async () => {
    const h = await startHarness({
      sim: { installedCrds: [] },
      seed: (sim) => seedSmallCluster(sim, { pods: 2, hasCrds: false }),
      datastore: { missingCrdRecheckMs: 60_000 },
    });
    await h.converged();
    expect([...h.sink.keysOfKind("IPPool")]).toEqual([]);
    expect(h.sink.hub.store.countOfKind("WorkloadEndpoint")).toBe(2);
  });
});
