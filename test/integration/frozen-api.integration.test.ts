/**
 * Issue 12's frozen-API target on the real kube-apiserver 1.20.2, with tabby's default settings
 * (staleAfterMs 25 s, upstreamProbeMs 5 s, upstreamProbeTimeoutMs 5 s): kube-apiserver stopped with
 * SIGSTOP (process frozen, its sockets open) has the agents told `stale` and /readyz failing within 30 s;
 * SIGCONT has them in sync and ready again within 5 s. The measured times are printed.
 */
import { request } from "node:http";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { TabbyClient } from "../../src/client/index.js";
import { runServer } from "../../src/server/main.js";
import type { RunningServer } from "../../src/server/main.js";
import { loopbackServeConfig } from "../support/serve-config.js";
import { startCluster } from "./cluster.js";
import type { Cluster } from "./cluster.js";

const silent = pino({ level: "silent" });
let cluster: Cluster | undefined;
let server: RunningServer | undefined;

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

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCalicoCrds();
  server = await runServer(loopbackServeConfig(), { logger: silent, kubeConfig: cluster.kubeConfig() });
}, 180_000);

afterAll(async () => {
  const pid = cluster?.pids().apiServer;
  if (pid !== undefined) process.kill(pid, "SIGCONT");
  await server?.destroy();
  await cluster?.stop();
});

describe("a frozen kube-apiserver (SIGSTOP), default settings", () => {
  it("agents see stale and /readyz fails within 30 s; in sync and ready within 5 s of SIGCONT", async () => {
    const s = server!;
    const client = new TabbyClient({
      servers: [`ws://127.0.0.1:${s.port}`],
      view: "tunnel-ip-allocation",
      logger: silent,
    });
    onTestFinished(() => client.destroy());
    client.start();
    await client.synced();
    await expect.poll(() => readyzStatus(s.healthPort), { timeout: 30_000 }).toBe(200);
    const pid = cluster!.pids().apiServer;

    const frozenAt = Date.now();
    process.kill(pid, "SIGSTOP");
    await expect.poll(() => client.status.state, { timeout: 40_000, interval: 50 }).toBe("stale");
    const staleMs = Date.now() - frozenAt;
    await expect.poll(() => readyzStatus(s.healthPort), { timeout: 5000, interval: 50 }).toBe(503);
    const unreadyMs = Date.now() - frozenAt;

    const thawedAt = Date.now();
    process.kill(pid, "SIGCONT");
    await expect.poll(() => client.status.state, { timeout: 10_000, interval: 20 }).toBe("in-sync");
    const inSyncMs = Date.now() - thawedAt;
    await expect.poll(() => readyzStatus(s.healthPort), { timeout: 10_000, interval: 20 }).toBe(200);
    const readyMs = Date.now() - thawedAt;
    process.stderr.write(
      `frozen kube-apiserver: stale after ${staleMs} ms, unready after ${unreadyMs} ms; in sync ${inSyncMs} ms and ready ${readyMs} ms after SIGCONT\n`,
    );
    expect(staleMs).toBeLessThanOrEqual(30_000);
    expect(unreadyMs).toBeLessThanOrEqual(30_000);
    expect(inSyncMs).toBeLessThanOrEqual(5000);
    expect(readyMs).toBeLessThanOrEqual(5000);
  }, 90_000);
});
