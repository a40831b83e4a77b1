import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { kubernetesDiscovery, TabbyClient } from "../../src/client/index.js";
import { runServer } from "../../src/server/main.js";
import type { RunningServer } from "../../src/server/main.js";
import { formatStaticPeers } from "../../src/server/replicas/index.js";
import type { ReplicasReport } from "../../src/server/replicas/index.js";
import { putTabbyService, seedCluster, SIM_TOKEN } from "../../src/sim/index.js";
import type { Simulator } from "../../src/sim/index.js";
import { loopbackServeConfig } from "../support/serve-config.js";
import { startTestSim } from "./sim-test-utils.js";

const silent = pino({ level: "silent" });
const NAMESPACE = "calico-system";

async function statusOf(server: RunningServer): Promise<{ server: string; replicas: ReplicasReport }> {
  const res = await fetch(`http://127.0.0.1:${server.healthPort}/status`);
  return (await res.json()) as { server: string; replicas: ReplicasReport };
}

async function seededSim(): Promise<Simulator> {
  const sim = await startTestSim();
  seedCluster(sim, { nodes: 3, podsPerNode: 2, seed: 9 });
  return sim;
}

async function start(sim: Simulator, settings: Record<string, string>): Promise<RunningServer> {
  const server = await runServer(loopbackServeConfig({ peerPollMs: "100", ...settings }), {
    logger: silent,
    kubeConfig: sim.kubeConfig(),
  });
  onTestFinished(() => server.destroy());
  return server;
}

/** Free loopback ports, found by listening on port 0 (for the static list, which names ports up front). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const s = createServer();
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

describe("replica directory: three servers over one simulator (real sockets)", () => {
  it("from the Service's EndpointSlices: each server sees 3 ready replicas, itself once, and the others' load", async () => {
    const sim = await seededSim();
    const servers = await Promise.all(
      [0, 1, 2].map((i) =>
        start(sim, { serviceName: "tabby", serviceNamespace: NAMESPACE, podName: `tabby-${i}` }),
      ),
    );
    // The EndpointSlice controller's view of the Deployment: one endpoint per replica, on its node and zone.
    putTabbyService(sim, {
      namespace: NAMESPACE,
      service: "tabby",
      replicas: servers.map((s, i) => ({
        ip: "127.0.0.1",
        agentPort: s.port,
        statusPort: s.metricsPort,
        podName: `tabby-${i}`,
        nodeName: `node-000${i + 1}`,
        zone: `zone-${i % 2}`,
      })),
    });
    // An agent on server 0: the others read its session count from server 0's /status.
    const agent = new TabbyClient({
      servers: [`ws://127.0.0.1:${servers[0]!.port}`],
      view: "felix",
      nodeName: "node-0001",
      logger: silent,
    });
    onTestFinished(() => agent.destroy());
    agent.start();
    await agent.synced();

    for (const [i, server] of servers.entries()) {
      await expect.poll(() => server.replicas.readyReplicas(), { timeout: 10_000, interval: 50 }).toBe(3);
      // Every replica's session count, as this server last read it (one poll round at most behind).
      const sessionsOf = async (): Promise<(number | undefined)[]> => {
        const { replicas } = await statusOf(server);
        return servers.map((s) => replicas.peers.find((p) => p.url.endsWith(`:${s.port}`))?.sessions);
      };
      await expect.poll(sessionsOf, { timeout: 10_000, interval: 50 }).toEqual([1, 0, 0]);
      const { replicas } = await statusOf(server);
      expect(replicas.source).toBe("endpoint-slices");
      expect(replicas.ready).toBe(3);
      expect(replicas.peers.map((p) => p.url).sort()).toEqual(
        servers.map((s) => `ws://127.0.0.1:${s.port}`).sort(),
      );
      const self = replicas.peers.filter((p) => p.self);
      expect(self.map((p) => p.url)).toEqual([`ws://127.0.0.1:${server.port}`]);
      expect(replicas.peers.find((p) => p.url.endsWith(`:${servers[1]!.port}`))).toMatchObject({
        ready: true,
        node: "node-0002",
        zone: "zone-1",
        sessions: 0,
      });
      const metrics = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
      expect(metrics, `server ${i}`).toMatch(/^tabby_replicas_ready 3$/m);
    }

    // Replica 2 fails its readiness probe: the EndpointSlice says so, and the others count 2.
    putTabbyService(sim, {
      namespace: NAMESPACE,
      service: "tabby",
      replicas: servers.map((s, i) => ({
        ip: "127.0.0.1",
        agentPort: s.port,
        statusPort: s.metricsPort,
        podName: `tabby-${i}`,
        isReady: i !== 2,
      })),
    });
    // Every replica counts the same set, replica 2 included (it is not ready in its own slice).
    for (const server of servers) {
      await expect.poll(() => server.replicas.readyReplicas(), { timeout: 10_000, interval: 50 }).toBe(2);
    }
    expect(servers[2]!.replicas.peers().find((p) => p.self)).toMatchObject({ ready: false });
  }, 60_000);

  it("from a static --peers list: readiness from each peer's /status, self found by its server id", async () => {
    const sim = await seededSim();
    const ports = await freePorts(6);
    // What the load test passes with --replicas N: the same list to every replica.
    const peers = formatStaticPeers(
      [0, 1, 2].map((i) => ({ port: ports[2 * i]!, statusPort: ports[2 * i + 1]! })),
    );
    const servers = await Promise.all(
      [0, 1, 2].map((i) =>
        start(sim, {
          port: String(ports[2 * i]),
          healthPort: String(ports[2 * i + 1]),
          metricsPort: String(ports[2 * i + 1]),
          peers,
        }),
      ),
    );
    for (const server of servers) {
      await expect.poll(() => server.replicas.readyReplicas(), { timeout: 20_000, interval: 50 }).toBe(3);
      const { replicas } = await statusOf(server);
      expect(replicas.source).toBe("static");
      expect(replicas.peers).toHaveLength(3);
      expect(replicas.peers.filter((p) => p.self).map((p) => p.url)).toEqual([
        `ws://127.0.0.1:${server.port}`,
      ]);
      expect(replicas.peers.every((p) => p.ready && p.sessions === 0)).toBe(true);
    }
    // One replica goes away: the others notice at their next poll.
    await servers[2]!.destroy();
    for (const server of servers.slice(0, 2)) {
      await expect.poll(() => server.replicas.readyReplicas(), { timeout: 10_000, interval: 50 }).toBe(2);
    }
  }, 60_000);

  it("a static list that names this server by --advertise-url (as the load test starts replicas): it starts, is itself once, and times the other's readiness", async () => {
    const sim = await seededSim();
    const ports = await freePorts(4);
    const peers = formatStaticPeers(
      [0, 1].map((i) => ({ port: ports[2 * i]!, statusPort: ports[2 * i + 1]! })),
    );
    const servers = await Promise.all(
      [0, 1].map((i) =>
        start(sim, {
          port: String(ports[2 * i]),
          healthPort: String(ports[2 * i + 1]),
          metricsPort: String(ports[2 * i + 1]),
          peers,
          advertiseUrl: `ws://127.0.0.1:${ports[2 * i]}`,
        }),
      ),
    );
    for (const server of servers) {
      await expect.poll(() => server.replicas.readyReplicas(), { timeout: 20_000, interval: 50 }).toBe(2);
      const listed = server.replicas.peers();
      expect(listed.filter((p) => p.self).map((p) => p.url)).toEqual([`ws://127.0.0.1:${server.port}`]);
      const other = listed.find((p) => !p.self);
      // Since when it has been ready, for the balancer's warm-up; never for this server itself.
      expect(other?.readySinceMs).toBeLessThanOrEqual(Date.now());
      expect(listed.find((p) => p.self)?.readySinceMs).toBeUndefined();
    }
  }, 60_000);
});

describe("client discovery from EndpointSlices served by the simulator (real sockets)", () => {
  it("finds the real tabby servers; with the API server stopped, an agent that restarts its client still finds a replica", async () => {
    const sim = await seededSim();
    const servers = await Promise.all(
      [0, 1, 2].map((i) =>
        // The servers keep serving (in sync, not yet stale) while the API server is stopped below.
        start(sim, {
          serviceName: "tabby",
          serviceNamespace: NAMESPACE,
          podName: `tabby-${i}`,
          staleAfterMs: "600000",
        }),
      ),
    );
    putTabbyService(sim, {
      namespace: NAMESPACE,
      service: "tabby",
      replicas: servers.map((s, i) => ({
        ip: "127.0.0.1",
        agentPort: s.port,
        statusPort: s.metricsPort,
        podName: `tabby-${i}`,
        nodeName: `node-000${i + 1}`,
        zone: i === 0 ? "zone-a" : "zone-b",
      })),
    });
    const urls = servers.map((s) => `ws://127.0.0.1:${s.port}`);
    const dir = await mkdtemp(join(tmpdir(), "tabby-discovery-e2e-"));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const cacheFile = join(dir, "tabby-servers.json");
    // The agent's own credentials (the simulator takes any bearer token), its node and zone.
    const options = {
      namespace: NAMESPACE,
      service: "tabby",
      apiServer: sim.url,
      token: SIM_TOKEN,
      scheme: "ws",
      node: "node-0002",
      zone: "zone-a",
      cacheFile,
      cacheTtlMs: 0,
      logger: silent,
    } as const;
    const discover = kubernetesDiscovery(options);
    const found = await discover(new AbortController().signal);
    expect(found).toEqual([urls[1], urls[0], urls[2]]); // own node, then own zone, then the rest
    expect(discover.lastSource()).toBe("api");

    const agent = new TabbyClient({
      servers: discover,
      view: "felix",
      nodeName: "node-0002",
      logger: silent,
    });
    onTestFinished(() => agent.destroy());
    agent.start();
    await agent.synced();
    expect(urls).toContain(agent.status.server);
    const entries = agent.size;
    expect(entries).toBeGreaterThan(0);
    await agent.close();

    // The API server goes away; the agent restarts (a new client, a new discovery: nothing in memory).
    await sim.close();
    const afterRestart = kubernetesDiscovery(options);
    const restarted = new TabbyClient({
      servers: afterRestart,
      view: "felix",
      nodeName: "node-0002",
      logger: silent,
    });
    onTestFinished(() => restarted.destroy());
    restarted.start();
    await restarted.synced();
    expect(afterRestart.lastSource()).toBe("file");
    expect(urls).toContain(restarted.status.server);
    expect(restarted.size).toBe(entries);
  }, 60_000);

  it("reads discovery.k8s.io/v1beta1 slices (an API server without v1) with their topology", async () => {
    const sim = await startTestSim({ endpointSliceVersion: "v1beta1" });
    putTabbyService(sim, {
      namespace: NAMESPACE,
      service: "tabby",
      replicas: [
        { ip: "10.0.0.1", nodeName: "n1", zone: "z1" },
        { ip: "10.0.0.2", nodeName: "n2", zone: "z2", isReady: false },
        { ip: "10.0.0.3", nodeName: "n3", zone: "z2" },
      ],
    });
    // Another Service's slice in the same namespace is not selected.
    putTabbyService(sim, {
      namespace: NAMESPACE,
      service: "other",
      replicas: [{ ip: "10.9.9.9", nodeName: "n3" }],
    });
    const discover = kubernetesDiscovery({
      namespace: NAMESPACE,
      service: "tabby",
      apiServer: sim.url,
      token: SIM_TOKEN,
      scheme: "ws",
      node: "n3",
      zone: "z1",
    });
    expect(await discover(new AbortController().signal)).toEqual([
      "ws://10.0.0.3:5473",
      "ws://10.0.0.1:5473",
    ]);
    expect(sim.requestCounts["list endpointslices"]).toBe(1);
  }, 30_000);
});
