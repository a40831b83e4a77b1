import { createServer } from "node:net";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { startHttpServers } from "../../src/server/http/index.js";
import type { HttpServers } from "../../src/server/http/index.js";
import { hello, markInSync, RawClient, resource, silentLogger, startFanout } from "./fanout-harness.js";
import type { Harness } from "./fanout-harness.js";

async function start(h: Harness, ports: { healthPort: number; metricsPort: number }): Promise<HttpServers> {
  const servers = await startHttpServers({
    host: "127.0.0.1",
    ...ports,
    registry: h.registry,
    isReady: () => h.server.isReady(),
    isLive: () => true,
    status: () => h.server.status(),
    notReadyReason: () => h.server.notReadyReason(),
    logger: silentLogger,
  });
  onTestFinished(() => servers.close());
  return servers;
}

async function get(
  port: number,
  path: string,
  method = "GET",
): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
}

/** A port that was free a moment ago (to ask for two different ports). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe("HTTP side doors", () => {
  it("serves /livez, /readyz, /status and /metrics on one port", async () => {
    const h = await startFanout({ isInSync: false });
    const http = await start(h, { healthPort: 0, metricsPort: 0 });
    expect(http.metricsPort).toBe(http.healthPort);
    const port = http.healthPort;

    expect(await get(port, "/livez")).toMatchObject({ status: 200, body: '{"live":true}\n' });
    const notReady = await get(port, "/readyz");
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body)).toMatchObject({
      ready: false,
      reason: expect.stringMatching(/syncing/),
    });

    for (const kind of ["IPPool", "Node"]) h.server.setKindState(kind, { state: "in-sync", since: 1 });
    expect((await get(port, "/readyz")).status).toBe(503);
    markInSync(h.server);
    expect(await get(port, "/readyz")).toMatchObject({ status: 200, body: '{"ready":true}\n' });

    h.server.upsert("IPPool/p", resource("IPPool", "p"));
    h.server.flushNow();
    await RawClient.live(h.url, hello({ view: "felix" }));
    const status = await get(port, "/status");
    expect(status.type).toMatch(/^application\/json/);
    expect(JSON.parse(status.body)).toMatchObject({
      server: h.server.serverId,
      revision: 1,
      ready: true,
      views: { felix: { connections: 1, entries: 1, status: { state: "in-sync" } } },
    });

    const metrics = await get(port, "/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.type).toBe(h.registry.contentType);
    for (const name of [
      "tabby_connections_accepted_total 1",
      "tabby_connections_active 1",
      'tabby_connections_streaming{view="felix"} 1',
      'tabby_cache_size{view="felix"} 1',
      "tabby_revision 1",
      'tabby_snapshots_generated_total{view="felix"} 1',
      'tabby_updates_total{view="felix"} 1',
      'tabby_frames_encoded_total{view="felix"} 1',
      "tabby_delta_fanout_seconds_count",
      "tabby_client_snapshot_send_seconds_count",
      'tabby_sessions_lagging{view="felix"} 0',
    ]) {
      expect(metrics.body).toContain(name);
    }

    expect((await get(port, "/nope")).status).toBe(404);
    expect((await get(port, "/livez", "POST")).status).toBe(405);
    expect((await get(port, "/livez?verbose=1")).status).toBe(200);

    void h.server.close();
    const draining = await get(port, "/readyz");
    expect(draining.status).toBe(503);
    expect(JSON.parse(draining.body)).toEqual({ ready: false, reason: "draining" });
  });

  it("splits health and metrics on two ports, and reports a busy port with ERR_HTTP_LISTEN", async () => {
    const h = await startFanout();
    const metricsPort = await freePort();
    const http = await start(h, { healthPort: 0, metricsPort });
    expect(http.metricsPort).toBe(metricsPort);
    expect(http.healthPort).not.toBe(metricsPort);
    expect((await get(http.healthPort, "/livez")).status).toBe(200);
    expect((await get(http.healthPort, "/metrics")).status).toBe(404);
    expect((await get(http.metricsPort, "/metrics")).status).toBe(200);
    expect((await get(http.metricsPort, "/status")).status).toBe(200);
    expect((await get(http.metricsPort, "/readyz")).status).toBe(404);

    await expect(
      startHttpServers({
        host: "127.0.0.1",
        healthPort: 0,
        metricsPort,
        registry: new Registry(),
        isReady: () => true,
        isLive: () => true,
        status: () => ({}),
        logger: silentLogger,
      }),
    ).rejects.toMatchObject({ code: "ERR_HTTP_LISTEN" });

    const first = http.close();
    expect(http.close()).toBe(first);
    await first;
    await expect(fetch(`http://127.0.0.1:${metricsPort}/metrics`)).rejects.toThrow();
  });

  it("answers 500 when a handler fails, and 503 when not live", async () => {
    const registry = new Registry();
    const http = await startHttpServers({
      host: "127.0.0.1",
      healthPort: 0,
      metricsPort: 0,
      registry,
      isReady: () => false,
      isLive: () => false,
      status: () => {
        throw new Error("boom");
      },
      logger: silentLogger,
    });
    onTestFinished(() => http.close());
    expect((await get(http.healthPort, "/status")).status).toBe(500);
    expect((await get(http.healthPort, "/livez")).status).toBe(503);
    expect(JSON.parse((await get(http.healthPort, "/readyz")).body)).toEqual({
      ready: false,
      reason: "not ready",
    });
  });

  it("rejects a port out of range with ERR_HTTP_INVALID_PORT", async () => {
    await expect(
      startHttpServers({
        healthPort: 70_000,
        metricsPort: 0,
        registry: new Registry(),
        isReady: () => true,
        isLive: () => true,
        status: () => ({}),
        logger: silentLogger,
      }),
    ).rejects.toMatchObject({ code: "ERR_HTTP_INVALID_PORT" });
  });
});
