import { createServer } from "node:net";
import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { TabbyClient } from "../../src/client/index.js";
import { runServer } from "../../src/server/main.js";
import type { RunningServer } from "../../src/server/main.js";
import type { ReplicasReport } from "../../src/server/replicas/index.js";
import { putTabbyService, seedCluster } from "../../src/sim/index.js";
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
      await expect
        .poll(
          async () =>
            (await statusOf(server)).replicas.peers.find((p) => p.url.endsWith(`:${servers[0]!.port}`))
              ?.sessions,
          {
            timeout: 10_000,
            interval: 50,
          },
        )
        .toBe(1);
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
    const peers = [0, 1, 2]
      .map((i) => `ws://127.0.0.1:${ports[2 * i]}=http://127.0.0.1:${ports[2 * i + 1]}`)
      .join(",");
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
});
