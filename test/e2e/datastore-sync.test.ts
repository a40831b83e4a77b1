import { describe, expect, it, vi } from "vitest";
import { RESOURCES, resourceId } from "../../src/server/datastore/index.js";
import { ALL_KINDS } from "../../src/snapshot/index.js";
import { podObject, seedSmallCluster, wepKey } from "../support/datastore-fixtures.js";
import { startHarness } from "../support/datastore-harness.js";

describe("Datastore: list, watch, convert", () => {
  it.each([true, false])(
    "syncs every resource of the registry and follows live changes (ingest worker: %s)",
    async (ingestWorker) => {
      const h = await startHarness({
        seed: (sim) => seedSmallCluster(sim),
        datastore: { pageSize: 5, ingestWorker },
      });
      await h.converged();
      // The data path ran where it was asked to.
      expect(h.ds.ingestWorker === undefined).toBe(!ingestWorker);
      // The worker decodes once its thread has loaded (the main thread does until then).
      if (ingestWorker) {
        await vi.waitFor(() => expect(h.ds.ingestWorker?.isAvailable).toBe(true), { timeout: 10_000 });
      }
      const served = h.ds.ingestWorker?.served ?? 0;
      expect(new Set(h.kinds)).toEqual(new Set(ALL_KINDS));
      for (const kind of ALL_KINDS) expect(h.ds.kindStates().get(kind)?.state, kind).toBe("in-sync");
      // Paged: 15 pods at 5 a page; one watch per resource.
      expect(h.sim.requestCounts["list pods"]).toBeGreaterThanOrEqual(3);
      await expect.poll(() => h.ds.upstreamWatches).toBe(RESOURCES.length);
      expect(h.sim.openWatches).toBe(RESOURCES.length);
      expect(await h.metric("tabby_upstream_watches")).toBe(RESOURCES.length);
      // Pods without endpoint produced nothing.
      expect(h.sink.hub.store.has(wepKey("kube-system", "kube-proxy-a"))).toBe(false);
      expect(h.sink.hub.store.has(wepKey("payments", "pending-0"))).toBe(false);
      expect(h.sink.hub.store.has(wepKey("payments", "job-0"))).toBe(false);
      expect(h.sink.hub.store.has(wepKey("payments", "api-0"))).toBe(true);

      // Live changes of every sort.
      h.sim.patch("pods", "payments", "api-1", { metadata: { labels: { app: "api", version: "v2" } } });
      h.sim.patch("pods", "payments", "pending-0", {
        status: { podIP: "10.244.0.77", podIPs: [{ ip: "10.244.0.77" }] },
      });
      h.sim.patch("pods", "payments", "api-2", { status: { phase: "Failed" } });
      h.sim.remove("pods", "payments", "api-3");
      h.sim.create("pods", podObject("default", "web-0", { ip: "10.244.1.50" }));
      h.sim.patch("namespaces", undefined, "payments", { metadata: { labels: { tier: "gold" } } });
      h.sim.remove("serviceaccounts", "payments", "api");
      h.sim.patch("nodes", undefined, "node-1", {
        metadata: { annotations: { "projectcalico.org/IPv4VXLANTunnelAddr": "10.244.1.2" } },
      });
      h.sim.remove("networkpolicies", "payments", "allow-api");
      h.sim.patch("ippools", undefined, "default-ipv4-ippool", { spec: { natOutgoing: false } });
      h.sim.remove("networkpolicies.crd.projectcalico.org", "payments", "default.db");
      await h.converged();
      expect(h.sink.hub.store.has(wepKey("payments", "pending-0"))).toBe(true);
      expect(h.sink.hub.store.has(wepKey("payments", "api-2", "node-2"))).toBe(false);
      expect(h.sink.hub.store.has("Profile/ksa.payments.api")).toBe(false);
      expect(h.sink.hub.store.has("NetworkPolicy/payments/default.db")).toBe(false);
      expect(
        await h.metric("tabby_upstream_events_total", { kind: "WorkloadEndpoint" }),
      ).toBeGreaterThanOrEqual(5);
      if (ingestWorker) expect(h.ds.ingestWorker?.served).toBeGreaterThan(served);
    },
  );

  it("falls back to discovery.k8s.io/v1beta1 EndpointSlices when v1 is not served", async () => {
    const h = await startHarness({
      sim: { endpointSliceVersion: "v1beta1" },
      seed: (sim) => {
        sim.create("namespaces", { metadata: { name: "payments" } });
        sim.create("endpointslices", {
          metadata: { name: "api-1", namespace: "payments", labels: { "kubernetes.io/service-name": "api" } },
          addressType: "IPv4",
          endpoints: [{ addresses: ["10.0.0.1"], topology: { "kubernetes.io/hostname": "node-0" } }],
        });
      },
      datastore: { kinds: ["KubernetesEndpointSlice"] },
    });
    await h.converged();
    const value = h.sink.hub.store.valueOf("KubernetesEndpointSlice/payments/api-1");
    expect(value?.spec).toEqual({
      addressType: "IPv4",
      endpoints: [{ addresses: ["10.0.0.1"], nodeName: "node-0" }],
    });
    expect(h.sim.requestCounts["list endpointslices"]).toBeGreaterThanOrEqual(1);
    h.sim.remove("endpointslices", "payments", "api-1");
    await h.converged();
    expect(h.actual().size).toBe(0);
  });

  it("drops the endpoint of a pod Calico rejects, counts it, and brings it back once fixed", async () => {
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim, { pods: 3 }),
      datastore: { kinds: ["WorkloadEndpoint"] },
    });
    await h.converged();
    expect(h.sink.hub.store.has(wepKey("payments", "api-1", "node-1"))).toBe(true);
    const annotate = (value: string): void => {
      h.sim.patch("pods", "payments", "api-1", {
        metadata: { annotations: { "cni.projectcalico.org/allowedSourcePrefixes": value } },
      });
    };
    annotate("10.0.0.0/8"); // not JSON: Calico fails the pod
    await h.converged();
    expect(h.sink.hub.store.has(wepKey("payments", "api-1", "node-1"))).toBe(false);
    expect(await h.metric("tabby_upstream_invalid_objects_total", { kind: "WorkloadEndpoint" })).toBe(1);
    annotate('["10.0.0.0/8"]');
    await h.converged();
    const value = h.sink.hub.store.valueOf(wepKey("payments", "api-1", "node-1"));
    expect((value?.spec as { allowSpoofedSourcePrefixes: string[] }).allowSpoofedSourcePrefixes).toEqual([
      "10.0.0.0/8",
    ]);
  });

  it("restricted to some kinds, watches only their resources", async () => {
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim),
      datastore: { kinds: ["Profile", "IPPool"] },
    });
    await h.converged();
    expect(h.ds.resources.map(resourceId).sort()).toEqual(["ippools", "namespaces", "serviceaccounts"]);
    expect(h.sim.requestCounts["list pods"]).toBeUndefined();
    expect([...h.ds.kindStates().keys()].sort()).toEqual(["IPPool", "Profile"]);
  });

  it("close() is idempotent, ends every watch and holds no socket", async () => {
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim),
      datastore: { kinds: ["Node", "IPPool"] },
    });
    await h.converged();
    const first = h.ds.close();
    expect(h.ds.close()).toBe(first);
    await first;
    expect(h.ds.upstreamWatches).toBe(0);
    expect(h.ds.socketCount()).toBe(0);
    await expect.poll(() => h.sim.openWatches).toBe(0);
  });
});
