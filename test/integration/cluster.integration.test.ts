/**
 * Smoke test of the real-cluster harness: etcd + kube-apiserver 1.20.2 answer client-node, the Calico
 * CRDs install, compaction expires old resourceVersions, restarts keep the data, and stop() leaves
 * nothing behind.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, Watch } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError, startCluster } from "./cluster.js";
import type { Cluster } from "./cluster.js";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

describe("real kube-apiserver harness", () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("serves client-node over TLS with the admin token, and refuses a wrong token", async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "smoke" } } });
    for (const name of ["a", "b", "c"]) {
      await core.createNamespacedConfigMap({
        namespace: "smoke",
        body: { metadata: { name, labels: { app: "smoke" } }, data: { name } },
      });
    }
    const list = await core.listNamespacedConfigMap({ namespace: "smoke", labelSelector: "app=smoke" });
    expect(list.items.map((c) => c.data?.name).sort()).toEqual(["a", "b", "c"]);

    const badConfig = new KubeConfig();
    badConfig.loadFromString(cluster.kubeconfigYaml().replace(cluster.token, "not-the-token"));
    const refused = badConfig.makeApiClient(CoreV1Api).listNamespace();
    await expect(refused).rejects.toBeInstanceOf(ApiException);
    await expect(refused).rejects.toMatchObject({ code: 401 });
  });

  it("installs the Calico CRDs for 1.20 and serves Calico objects", async () => {
    const plurals = await cluster.installCalicoCrds();
    expect(plurals).toContain("ippools");
    expect(plurals.length).toBeGreaterThanOrEqual(20);
    const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    await custom.createClusterCustomObject({
      group: "crd.projectcalico.org",
      version: "v1",
      plural: "ippools",
      body: {
        apiVersion: "crd.projectcalico.org/v1",
        kind: "IPPool",
        metadata: { name: "pool-a" },
        spec: { cidr: "10.244.0.0/16", ipipMode: "Always", natOutgoing: true },
      },
    });
    const pools = (await custom.listClusterCustomObject({
      group: "crd.projectcalico.org",
      version: "v1",
      plural: "ippools",
    })) as { items: { metadata: { name: string }; spec: { cidr: string } }[] };
    expect(pools.items.map((p) => [p.metadata.name, p.spec.cidr])).toEqual([["pool-a", "10.244.0.0/16"]]);
  });

  it("expires an old continue token with 410 after an etcd compaction", async () => {
    const first = await cluster.request<{ metadata: { continue?: string } }>(
      "GET",
      "/api/v1/namespaces/smoke/configmaps?limit=1",
    );
    const token = first.metadata.continue;
    expect(token).toBeTruthy();
    const compacted = await cluster.compactEtcd();
    expect(compacted).toBeGreaterThan(0);
    const next = cluster.request(
      "GET",
      `/api/v1/namespaces/smoke/configmaps?limit=1&continue=${encodeURIComponent(token!)}`,
    );
    await expect(next).rejects.toBeInstanceOf(KubeApiError);
    await expect(next).rejects.toMatchObject({ status: 410, reason: "Expired" });
  });

  it("restarts kube-apiserver on the same port with the same data, ending open watches", async () => {
    const before = cluster.pids();
    const watch = new Watch(cluster.kubeConfig());
    const ended = new Promise<unknown>((resolve) => {
      void watch.watch(
        "/api/v1/namespaces/smoke/configmaps",
        {},
        () => undefined,
        (err: unknown) => resolve(err ?? "ended"),
      );
    });
    await cluster.restartApiServer();
    await expect(ended).resolves.toBeDefined();
    const after = cluster.pids();
    expect(after.apiServer).not.toBe(before.apiServer);
    expect(after.etcd).toBe(before.etcd);
    expect(isAlive(before.apiServer)).toBe(false);
    const list = await cluster
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .listNamespacedConfigMap({ namespace: "smoke" });
    expect(list.items).toHaveLength(3);
  });

  it("restarts after a crash (SIGKILL) and runs a hook while it is down", async () => {
    const before = cluster.pids();
    let wasDownInHook = false;
    await cluster.restartApiServer({
      signal: "SIGKILL",
      whileDown: async () => {
        wasDownInHook = !isAlive(before.apiServer);
        await cluster.etcdctl(["del", "/registry/configmaps/smoke/a"]);
      },
    });
    expect(wasDownInHook).toBe(true);
    const list = await cluster
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .listNamespacedConfigMap({ namespace: "smoke" });
    expect(list.items.map((c) => c.metadata?.name).sort()).toEqual(["b", "c"]);
  });

  it("stop() kills both processes and removes its temp dir; a second stop is a no-op", async () => {
    const other = await startCluster({ isWatchCacheEnabled: false });
    const pids = other.pids();
    expect(isAlive(pids.etcd) && isAlive(pids.apiServer)).toBe(true);
    await other.stop();
    await other.stop();
    expect(isAlive(pids.etcd)).toBe(false);
    expect(isAlive(pids.apiServer)).toBe(false);
    expect(existsSync(path.dirname(other.caPath))).toBe(false);
  });

  it("fails with ERR_INTEGRATION_SETUP when the kube-apiserver binary is not provisioned", async () => {
    const emptyCache = await mkdtemp(path.join(os.tmpdir(), "tabby-empty-cache-"));
    const saved = process.env.TABBY_CACHE_DIR;
    process.env.TABBY_CACHE_DIR = emptyCache;
    try {
      await expect(startCluster()).rejects.toMatchObject({ code: "ERR_INTEGRATION_SETUP" });
    } finally {
      if (saved === undefined) delete process.env.TABBY_CACHE_DIR;
      else process.env.TABBY_CACHE_DIR = saved;
      await rm(emptyCache, { recursive: true, force: true });
    }
  });
});
