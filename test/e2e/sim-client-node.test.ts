import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { seedCluster } from "../../src/sim/churn.js";
import { podBody, startTestSim } from "./sim-test-utils.js";

describe("@kubernetes/client-node against the simulator, unmodified", () => {
  it("lists with CoreV1Api (paged), and watches with Watch from the list resourceVersion", async () => {
    const sim = await startTestSim();
    seedCluster(sim, { nodes: 4, podsPerNode: 5, seed: 3 });
    const kc = sim.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);

    const names: string[] = [];
    let cont: string | undefined;
    let listRv = "";
    do {
      const page = await core.listPodForAllNamespaces({
        limit: 7,
        ...(cont === undefined ? {} : { _continue: cont }),
      });
      listRv ||= page.metadata?.resourceVersion ?? "";
      for (const p of page.items) names.push(`${p.metadata?.namespace}/${p.metadata?.name}`);
      cont = page.metadata?._continue;
    } while (cont !== undefined && cont !== "");
    expect(names).toHaveLength(20);
    expect(names).toEqual(sim.list("pods").map((p) => `${p.metadata.namespace}/${p.metadata.name}`));
    const nodes = await core.listNode();
    expect(nodes.items.map((n) => n.metadata?.name)).toEqual([
      "node-0001",
      "node-0002",
      "node-0003",
      "node-0004",
    ]);
    expect(nodes.items[0]?.metadata?.annotations?.["projectcalico.org/IPv4Address"]).toMatch(
      /^10\.0\.\d+\.\d+\/16$/,
    );

    const events: { type: string; name: string | undefined }[] = [];
    let resolveEvents!: () => void;
    const gotThree = new Promise<void>((r) => (resolveEvents = r));
    let resolveDone!: (err: unknown) => void;
    const done = new Promise<unknown>((r) => (resolveDone = r));
    const watch = new Watch(kc);
    const controller = await watch.watch(
      "/api/v1/pods",
      { resourceVersion: listRv, allowWatchBookmarks: true },
      (type: string, obj: V1Pod) => {
        events.push({ type, name: obj.metadata?.name });
        if (events.filter((e) => e.type !== "BOOKMARK").length === 3) resolveEvents();
      },
      (err: unknown) => resolveDone(err),
    );
    sim.create("pods", podBody("fresh", "app-00"));
    const victim = sim.list("pods")[0]!;
    sim.patch("pods", victim.metadata.namespace, victim.metadata.name, {
      metadata: { labels: { version: "v9" } },
    });
    sim.remove("pods", victim.metadata.namespace, victim.metadata.name);
    await gotThree;
    expect(events.filter((e) => e.type !== "BOOKMARK")).toEqual([
      { type: "ADDED", name: "fresh" },
      { type: "MODIFIED", name: victim.metadata.name },
      { type: "DELETED", name: victim.metadata.name },
    ]);
    expect(sim.openWatches).toBe(1);
    sim.faults.dropWatches();
    expect(await done).toBeNull(); // a clean end of the stream
    controller.abort();
    expect(sim.requestCounts["watch pods"]).toBe(1);
  });

  it("reports a 410 to Watch's done callback, and writes through the generated APIs", async () => {
    const sim = await startTestSim({ historyLimit: 1 });
    const kc = sim.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const rv = sim.resourceVersion;
    await core.createNamespacedPod({ namespace: "default", body: podBody("a") });
    await core.createNamespacedPod({ namespace: "default", body: podBody("b") });
    const err = await new Promise<unknown>((resolve) => {
      void new Watch(kc).watch("/api/v1/pods", { resourceVersion: rv }, () => {}, resolve);
    });
    expect(err).toMatchObject({ statusCode: 410 });

    const patched = await core.patchNamespacedPod(
      { namespace: "default", name: "a", body: { metadata: { labels: { tier: "web" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    expect(patched.metadata?.labels).toEqual({ app: "a", tier: "web" });
    await expect(core.readNamespacedPod({ namespace: "default", name: "nope" })).rejects.toMatchObject({
      code: 404,
    });

    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.createClusterCustomObject({
      group: "crd.projectcalico.org",
      version: "v1",
      plural: "ippools",
      body: {
        apiVersion: "crd.projectcalico.org/v1",
        kind: "IPPool",
        metadata: { name: "pool" },
        spec: { cidr: "10.48.0.0/12" },
      },
    });
    const pools = (await custom.listClusterCustomObject({
      group: "crd.projectcalico.org",
      version: "v1",
      plural: "ippools",
    })) as {
      items: { metadata: { name: string } }[];
    };
    expect(pools.items.map((p) => p.metadata.name)).toEqual(["pool"]);
  });
});
