/**
 * Defect (c) of issue 12: a frozen API server (process stopped, sockets open: the simulator's pause fault)
 * is found by the upstream probe, not after the watchdog and a request timeout: every kind goes stale
 * within staleAfterMs and readiness fails; its return brings them back within a second or so. A quiet
 * cluster whose API server answers the probes never goes stale.
 */
import { request } from "node:http";
import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { TabbyClient } from "../../src/client/index.js";
import { runServer } from "../../src/server/main.js";
import { seedCluster } from "../../src/sim/churn.js";
import { seedSmallCluster } from "../support/datastore-fixtures.js";
import { startHarness } from "../support/datastore-harness.js";
import { startTestSim } from "./sim-test-utils.js";
import { loopbackServeConfig } from "../support/serve-config.js";

const silent = pino({ level: "silent" });

function readyzStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/readyz" }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("upstream probe: a frozen API server", () => {
  it("keeps a quiet cluster in sync while the probes are answered", async () => {
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim),
      datastore: {
        kinds: ["Node", "IPPool"],
        // Bounds with room for a loaded CI machine (event-loop stalls of a second or so), while the
        // observation below still spans several staleAfterMs periods.
        staleAfterMs: 1500,
        upstreamProbeMs: 100,
        upstreamProbeTimeoutMs: 1000,
      },
    });
    await h.converged();
    // Nothing changes and no bookmark comes (60 s period): only the probes show the server alive.
    await expect
      .poll(() => h.metric("tabby_upstream_probes_total", { result: "ok" }), { timeout: 20_000 })
      .toBeGreaterThanOrEqual(45);
    expect(h.sink.hasBeen("Node", "stale")).toBe(false);
    expect(h.sink.hasBeen("IPPool", "stale")).toBe(false);
    expect(await h.metric("tabby_upstream_probes_total", { result: "timeout" })).toBe(0);
  });

  it("reports every kind stale within staleAfterMs of the freeze, and in sync soon after it ends", async () => {
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim),
      datastore: {
        kinds: ["Node", "IPPool"],
        staleAfterMs: 1000,
        upstreamProbeMs: 100,
        upstreamProbeTimeoutMs: 200,
      },
    });
    await h.converged();
    const frozenAt = Date.now();
    h.sim.faults.pause(true);
    await expect.poll(() => h.sink.state("Node"), { timeout: 5000, interval: 10 }).toBe("stale");
    const staleAfter = Date.now() - frozenAt;
    expect(staleAfter).toBeLessThan(1000 + 500);
    expect(h.sink.state("IPPool")).toBe("stale");
    expect(h.ds.kindStates().get("Node")?.reason).toMatch(/ERR_DATASTORE_PROBE/);
    expect(await h.metric("tabby_upstream_probes_total", { result: "timeout" })).toBeGreaterThanOrEqual(1);
    expect(await h.metric("tabby_upstream_stale", { kind: "Node" })).toBe(1);

    // A change made while frozen arrives after the return (the watch delivers what queued).
    const resumedAt = Date.now();
    h.sim.patch("nodes", undefined, "node-0", { metadata: { labels: { thawed: "yes" } } });
    h.sim.faults.pause(false);
    await h.converged(5000);
    expect(Date.now() - resumedAt).toBeLessThan(2000);
    expect(h.sink.state("Node")).toBe("in-sync");
    expect(await h.metric("tabby_upstream_stale", { kind: "Node" })).toBe(0);
  });

  it("a server tells its agents stale and fails /readyz, then is ready again after the return", async () => {
    const sim = await startTestSim();
    seedCluster(sim, { nodes: 3, podsPerNode: 2, seed: 7 });
    const config = loopbackServeConfig({
      staleAfterMs: "1500",
      upstreamProbeMs: "200",
      upstreamProbeTimeoutMs: "300",
    });
    const server = await runServer(config, { logger: silent, kubeConfig: sim.kubeConfig() });
    onTestFinished(() => server.destroy());
    const client = new TabbyClient({
      servers: [`ws://127.0.0.1:${server.port}`],
      view: "felix",
      nodeName: "node-0001",
      logger: silent,
    });
    onTestFinished(() => client.destroy());
    client.start();
    await client.synced();
    await expect.poll(() => readyzStatus(server.healthPort), { timeout: 5000 }).toBe(200);

    const frozenAt = Date.now();
    sim.faults.pause(true);
    await expect.poll(() => client.status.state, { timeout: 10_000, interval: 20 }).toBe("stale");
    expect(Date.now() - frozenAt).toBeLessThan(1500 + 1000);
    expect(await readyzStatus(server.healthPort)).toBe(503);

    const resumedAt = Date.now();
    sim.faults.pause(false);
    await expect.poll(() => client.status.state, { timeout: 5000, interval: 20 }).toBe("in-sync");
    await expect.poll(() => readyzStatus(server.healthPort), { timeout: 5000, interval: 20 }).toBe(200);
    expect(Date.now() - resumedAt).toBeLessThan(5000);
  });

  // Issue 12's target, with tabby's default settings (staleAfterMs 25 s, probe every 5 s, 5 s timeout):
  // stale and unready within 30 s of the freeze, in sync and ready within 5 s of the return.
  it("with the default settings: stale and unready within 30 s, in sync and ready within 5 s after", async () => {
    const sim = await startTestSim();
    seedCluster(sim, { nodes: 2, podsPerNode: 1, seed: 3 });
    const server = await runServer(loopbackServeConfig(), { logger: silent, kubeConfig: sim.kubeConfig() });
    onTestFinished(() => server.destroy());
    const client = new TabbyClient({
      servers: [`ws://127.0.0.1:${server.port}`],
      view: "tunnel-ip-allocation",
      logger: silent,
    });
    onTestFinished(() => client.destroy());
    client.start();
    await client.synced();
    await expect.poll(() => readyzStatus(server.healthPort), { timeout: 5000 }).toBe(200);

    const frozenAt = Date.now();
    sim.faults.pause(true);
    await expect.poll(() => client.status.state, { timeout: 35_000, interval: 50 }).toBe("stale");
    const staleMs = Date.now() - frozenAt;
    expect(await readyzStatus(server.healthPort)).toBe(503);
    expect(staleMs).toBeLessThanOrEqual(30_000);

    const resumedAt = Date.now();
    sim.faults.pause(false);
    await expect.poll(() => client.status.state, { timeout: 5000, interval: 20 }).toBe("in-sync");
    await expect.poll(() => readyzStatus(server.healthPort), { timeout: 5000, interval: 20 }).toBe(200);
    const backMs = Date.now() - resumedAt;
    process.stderr.write(
      `frozen simulator, default settings: stale after ${staleMs} ms, back after ${backMs} ms\n`,
    );
    expect(backMs).toBeLessThanOrEqual(5000);
  }, 60_000);
});
