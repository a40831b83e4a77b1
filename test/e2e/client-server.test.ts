/**
 * The client against the real FanoutServer over a Hub (no test double on either side). A TCP proxy between
 * them lets a test drop the connection, or point the same address at a restarted server.
 */
import { connect, createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { pino } from "pino";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import type { ResourceValue } from "../../proto/messages.js";
import { FanoutServer } from "../../src/server/fanout/index.js";
import { Hub } from "../../src/snapshot/hub.js";
import { VIEWS } from "../../src/snapshot/kinds.js";
import { inSync, makeClient, nextEvent, pool, record } from "./client-test-utils.js";

const STATE: Record<string, ResourceValue> = {
  ...Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`IPPool/pool-${i}`, pool(`10.${i}.0.0/16`)])),
  "Node/node-1": { metadata: { name: "node-1" }, spec: { bgp: { ipv4Address: "10.0.0.1/24" } } },
  "NetworkPolicy/ns1/allow": { spec: { tier: "default", selector: "all()", order: 10 } },
};

/** A FanoutServer serving `state` (after `churn` throwaway changes, so revisions differ), every kind in sync. */
async function startFanout(
  state: Record<string, ResourceValue>,
  churn = 0,
): Promise<{ server: FanoutServer; port: number }> {
  const hub = new Hub({ snapshotChunkBytes: 1024 });
  const server = new FanoutServer({
    hub,
    logger: pino({ level: "silent" }),
    registry: new Registry(),
    options: { flushWindowMs: 1 },
  });
  onTestFinished(() => server.destroy());
  for (let i = 0; i < churn; i++) server.upsert("IPPool/churn", { spec: { i } });
  if (churn > 0) server.delete("IPPool/churn");
  for (const [key, value] of Object.entries(state)) server.upsert(key, value);
  server.flushNow();
  for (const kind of VIEWS.felix.kinds) server.setKindState(kind, { state: "in-sync", since: Date.now() });
  const address = await server.listen(0, "127.0.0.1");
  return { server, port: address.port };
}

/** A TCP proxy to 127.0.0.1:`target`; `cut()` drops every proxied connection, `target` may change. */
class TcpProxy {
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;
  connections = 0;

  private constructor(
    server: Server,
    public target: number,
  ) {
    this.#server = server;
    server.on("connection", (downstream) => {
      this.connections++;
      const upstream = connect(this.target, "127.0.0.1");
      for (const [a, b] of [
        [downstream, upstream],
        [upstream, downstream],
      ] as const) {
        this.#sockets.add(a);
        a.on("error", () => b.destroy());
        a.on("close", () => {
          this.#sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
  }

  static async start(target: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const proxy = new TcpProxy(server, target);
    onTestFinished(() => proxy.close());
    return proxy;
  }

  get url(): string {
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("not listening");
    return `ws://127.0.0.1:${address.port}`;
  }

  cut(): void {
    for (const s of this.#sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

describe("client against the real FanoutServer", () => {
  it("resumes after a dropped connection and receives only the missing deltas (no snapshot)", async () => {
    const { server, port } = await startFanout(STATE);
    const proxy = await TcpProxy.start(port);
    const client = makeClient({
      servers: [proxy.url],
      view: "felix",
      nodeName: "node-1",
      backoffInitialMs: 20,
    });
    const rec = record(client);
    client.start();
    await client.synced();
    expect(client.size).toBe(52);
    expect(client.serverId).toBe(server.serverId);
    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 0 });

    // Live deltas.
    const live = nextEvent(client, "updates");
    server.upsert("IPPool/pool-0", pool("10.0.0.0/16", { natOutgoing: true }));
    expect(await live).toEqual([
      { key: "IPPool/pool-0", kind: "IPPool", value: pool("10.0.0.0/16", { natOutgoing: true }) },
    ]);

    // Drop the connection; change things while the client is away.
    const down = nextEvent(client, "status", (s) => s.state === "disconnected");
    proxy.cut();
    await down;
    server.delete("IPPool/pool-1");
    server.upsert("IPPool/pool-2", pool("10.2.0.0/16", { ipipMode: "Always" }));
    server.upsert("Tier/default", { spec: { order: 100 } });
    server.flushNow();

    const missing = nextEvent(client, "updates");
    const back = inSync(client);
    const batch = await missing;
    await back;
    expect([...batch].sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: "IPPool/pool-1", kind: "IPPool", value: null },
      { key: "IPPool/pool-2", kind: "IPPool", value: pool("10.2.0.0/16", { ipipMode: "Always" }) },
      { key: "Tier/default", kind: "Tier", value: { spec: { order: 100 } } },
    ]);
    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 1, reconnects: 1 });
    expect(client.revision).toBe(server.status().revision);
    expect(client.size).toBe(52);
    expect(rec.updates).toHaveLength(3); // snapshot, live delta, the missing deltas
    expect(rec.errors.filter((e) => e.code !== "ERR_CLIENT_CONNECT")).toEqual([]);
  });

  it("after a server restart (new Hub, same state, new server id) resumes from its digests and emits zero updates", async () => {
    const first = await startFanout(STATE);
    const proxy = await TcpProxy.start(first.port);
    const client = makeClient({
      servers: [proxy.url],
      view: "felix",
      nodeName: "node-1",
      backoffInitialMs: 20,
    });
    const rec = record(client);
    client.start();
    await client.synced();
    const revisionBefore = client.revision;

    // "Restart": the old server goes away, a new process with a new id serves the same state at the same address.
    await first.server.destroy();
    const second = await startFanout(STATE, 9);
    proxy.target = second.port;
    const back = inSync(client);
    proxy.cut();
    await back;

    expect(client.serverId).toBe(second.server.serverId);
    expect(client.serverId).not.toBe(first.server.serverId);
    expect(client.revision).not.toBe(revisionBefore);
    // The new process holds the mirror's state: it resumes it (PROTOCOL.md §5.2.1), no second snapshot.
    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 1, replicaResumes: 1 });
    expect(rec.updates).toHaveLength(1); // only the very first snapshot
    expect(client.size).toBe(52);

    // The new server's deltas apply on top.
    const next = nextEvent(client, "updates");
    second.server.delete("NetworkPolicy/ns1/allow");
    expect(await next).toEqual([{ key: "NetworkPolicy/ns1/allow", kind: "NetworkPolicy", value: null }]);
  });

  it("when a server drains (4008) moves to another replica without churn", async () => {
    const a = await startFanout(STATE);
    const b = await startFanout(STATE, 4);
    const list = { servers: [`ws://127.0.0.1:${a.port}`] };
    const client = makeClient({
      servers: () => Promise.resolve(list.servers),
      view: "felix",
      nodeName: "node-1",
      backoffInitialMs: 20,
    });
    const rec = record(client);
    client.start();
    await client.synced();
    list.servers = [`ws://127.0.0.1:${b.port}`];
    const onB = inSync(client, list.servers[0]);
    await a.server.close();
    await onB;
    expect(rec.statuses.find((s) => s.state === "disconnected")?.closeCode).toBe(4008);
    expect(client.serverId).toBe(b.server.serverId);
    expect(rec.updates).toHaveLength(1);
  });

  it("lite mode: counts the (compressed) snapshot, emits deltas, resumes", async () => {
    const { server, port } = await startFanout(STATE);
    const proxy = await TcpProxy.start(port);
    const client = makeClient({
      servers: [proxy.url],
      view: "felix",
      nodeName: "node-1",
      mirror: false,
      backoffInitialMs: 20,
    });
    client.start();
    await client.synced();
    expect(client.stats.snapshots).toBe(1);
    expect(client.size).toBe(0);
    const down = nextEvent(client, "status", (s) => s.state === "disconnected");
    proxy.cut();
    await down;
    server.delete("IPPool/pool-3");
    server.flushNow();
    expect(await nextEvent(client, "updates")).toEqual([
      { key: "IPPool/pool-3", kind: "IPPool", value: null },
    ]);
    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 1 });
  });
});
