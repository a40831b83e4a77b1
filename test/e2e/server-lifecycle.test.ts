import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { TabbyClient } from "../../src/client/index.js";
import type { ClientStatus } from "../../src/client/index.js";
import { runServer } from "../../src/server/main.js";
import type { RunningServer } from "../../src/server/main.js";
import { seedCluster } from "../../src/sim/churn.js";
import { startTestSim } from "./sim-test-utils.js";
import { loopbackServeConfig } from "../support/serve-config.js";

const silent = pino({ level: "silent" });

/** A simulator, `runServer` on port 0 over it, and `agents` clients in sync (all closed after the test). */
async function serverWithAgents(agents: number): Promise<{ server: RunningServer; clients: TabbyClient[] }> {
  const sim = await startTestSim();
  seedCluster(sim, { nodes: 4, podsPerNode: 2, seed: 1 });
  const config = loopbackServeConfig({
    drainMs: "20000",
  });
  const server = await runServer(config, { logger: silent, kubeConfig: sim.kubeConfig() });
  onTestFinished(() => server.destroy());
  const clients = Array.from(
    { length: agents },
    (_, i) =>
      new TabbyClient({
        servers: [`ws://127.0.0.1:${server.port}`],
        view: "felix",
        nodeName: `node-000${i + 1}`,
        logger: silent,
        // Stay disconnected after the server goes: the test counts closes, not reconnects.
        backoffInitialMs: 60_000,
        backoffMaxMs: 60_000,
      }),
  );
  for (const c of clients) {
    onTestFinished(() => c.destroy());
    c.start();
  }
  await Promise.all(clients.map((c) => c.synced()));
  return { server, clients };
}

function closeCodes(clients: readonly TabbyClient[]): Promise<number>[] {
  return clients.map(
    (c) =>
      new Promise<number>((resolve) => {
        const onStatus = (s: ClientStatus): void => {
          if (s.state !== "disconnected") return;
          c.off("status", onStatus);
          resolve(s.closeCode ?? -1);
        };
        c.on("status", onStatus);
      }),
  );
}

describe("RunningServer close() and destroy()", () => {
  it("destroy() during close({drainMs: 20 s}) wins: both resolve at once and every session is closed", async () => {
    const { server, clients } = await serverWithAgents(4);
    const codes = closeCodes(clients);
    const startedAt = Date.now();
    const closing = server.close();
    expect(server.fanout.isReady()).toBe(false);
    const destroying = server.destroy();
    expect(server.close()).toBe(destroying);
    expect(server.destroy()).toBe(destroying);
    await Promise.all([closing, destroying]);
    expect(Date.now() - startedAt).toBeLessThan(3000);
    expect(server.fanout.status().connections.active).toBe(0);
    // The drain had closed at most the first session gracefully; destroy cut the rest.
    const got = await Promise.all(codes);
    expect(got.filter((c) => c === CloseCode.shuttingDown).length).toBeLessThanOrEqual(1);
    expect(server.datastore.upstreamWatches).toBe(0);
  }, 30_000);

  it("close() drains the sessions with shuttingDown over drainMs, then closes the upstream", async () => {
    const { server, clients } = await serverWithAgents(3);
    const codes = closeCodes(clients);
    const startedAt = Date.now();
    await server.close({ drainMs: 600 });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(350); // the third session closes at ~400 ms
    expect(await Promise.all(codes)).toEqual([
      CloseCode.shuttingDown,
      CloseCode.shuttingDown,
      CloseCode.shuttingDown,
    ]);
    expect(server.datastore.upstreamWatches).toBe(0);
    expect(server.close()).toBe(server.close());
  }, 30_000);
});
