import { describe, expect, it } from "vitest";
import { encodeMessage } from "../../proto/codec.js";
import { assembleDeltas, encodeEntry } from "../../proto/frame-builder.js";
import type { HelloMessage } from "../../proto/messages.js";
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from "../../proto/version.js";
import { hubWith } from "./client-test-server.js";
import { inSync, makeClient, makeServer, nextEvent, pool, record, until } from "./client-test-utils.js";

const POOLS = Object.fromEntries(
  Array.from({ length: 40 }, (_, i) => [`IPPool/pool-${i}`, pool(`10.${i}.0.0/16`)]),
);

describe("client: snapshot then deltas", () => {
  it.each([
    ["entries", false],
    ["deflated (z)", true],
  ])("builds the mirror from a multi-chunk snapshot (%s) and applies deltas", async (_, compress) => {
    const server = await makeServer({
      compress,
      hub: hubWith({ ...POOLS, "Node/node-1": { spec: { bgp: { ipv4Address: "10.0.0.1/24" } } } }),
    });
    const client = makeClient({ servers: [server.url], view: "felix", nodeName: "node-1" });
    const rec = record(client);
    client.start();
    await client.synced();

    // The hello: version range, view, node, client, features; no resume token on a first connect.
    const hello = server.hellos[0] as HelloMessage;
    expect(hello.versions).toEqual([PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX]);
    expect(hello).toMatchObject({ view: "felix", node: "node-1", client: { name: "tabby-client" } });
    expect(hello.features).toEqual([
      "deflate-snapshot",
      "deflate-deltas",
      "move",
      "patch-deltas",
      "json-patch-deltas",
      "replica-resume",
    ]);
    expect(hello.resume).toBeUndefined();

    // The snapshot had several chunks (512-byte chunks) and arrived as one updates batch of adds.
    expect(server.hub.snapshot("felix", Date.now(), 60_000).chunks.length).toBeGreaterThan(2);
    expect(client.stats.snapshots).toBe(1);
    expect(rec.updates).toHaveLength(1);
    expect(rec.updates[0]).toHaveLength(41);
    expect(client.size).toBe(41);
    expect(client.get("IPPool/pool-7")).toEqual(POOLS["IPPool/pool-7"]);
    expect(client.list("IPPool")).toHaveLength(40);
    expect(client.list("Node")).toEqual([{ spec: { bgp: { ipv4Address: "10.0.0.1/24" } } }]);
    expect(client.revision).toBe(server.hub.revision);
    expect(client.serverId).toBe(server.id);
    expect(rec.statuses.map((s) => s.state)).toEqual(["connecting", "syncing", "in-sync"]);
    expect(client.isInSync).toBe(true);

    // Deltas: one batch per frame, with adds, updates and deletes.
    const batch = nextEvent(client, "updates");
    server.apply({
      "IPPool/pool-1": pool("10.1.0.0/16", { ipipMode: "Always" }),
      "IPPool/pool-2": null,
      "Tier/default": { spec: { order: 100 } },
    });
    expect(await batch).toEqual([
      { key: "IPPool/pool-1", kind: "IPPool", value: pool("10.1.0.0/16", { ipipMode: "Always" }) },
      { key: "IPPool/pool-2", kind: "IPPool", value: null },
      { key: "Tier/default", kind: "Tier", value: { spec: { order: 100 } } },
    ]);
    expect(client.get("IPPool/pool-2")).toBeUndefined();
    expect(client.get("IPPool/pool-1")).toEqual(pool("10.1.0.0/16", { ipipMode: "Always" }));
    expect(client.list("Tier")).toHaveLength(1);
    expect(client.size).toBe(41);
    expect(client.revision).toBe(server.hub.revision);
    expect(client.stats.deltas).toBe(1);
  });

  it("emits only real changes from deltas, and never an empty batch", async () => {
    const server = await makeServer({ hub: hubWith({ "IPPool/a": pool("10.0.0.0/16") }) });
    const client = makeClient({ servers: [server.url], view: "felix" });
    const rec = record(client);
    client.start();
    await client.synced();
    const r = client.revision;

    // Only no-op changes: a delete of an absent key and an upsert of an identical value (other key order).
    server.broadcast(
      assembleDeltas(r, r + 2, [
        encodeEntry({ k: "IPPool/absent", v: null }),
        encodeEntry({
          k: "IPPool/a",
          v: {
            spec: { ipipMode: "Never", cidr: "10.0.0.0/16" },
            metadata: pool("10.0.0.0/16").metadata as Record<string, unknown>,
          },
        }),
      ]),
    );
    // Then a real one: the next batch must be exactly it (no empty batch before it).
    const next = nextEvent(client, "updates");
    server.broadcast(
      assembleDeltas(r + 2, r + 3, [encodeEntry({ k: "IPPool/b", v: { spec: { cidr: "10.1.0.0/16" } } })]),
    );
    expect(await next).toEqual([
      { key: "IPPool/b", kind: "IPPool", value: { spec: { cidr: "10.1.0.0/16" } } },
    ]);
    expect(rec.updates).toHaveLength(2); // the snapshot, then the real change
    expect(client.revision).toBe(r + 3);
    expect(client.stats.deltas).toBe(2);
  });

  it("reports stale and in-sync from the server's status, with reason and kinds", async () => {
    const server = await makeServer({ hub: hubWith({ "IPPool/a": pool("10.0.0.0/16") }) });
    const client = makeClient({ servers: [server.url], view: "felix" });
    client.start();
    await client.synced();
    const stale = nextEvent(client, "status", (s) => s.state === "stale");
    server.broadcast({
      t: "status",
      state: "stale",
      since: 1,
      reason: "watch failing",
      kinds: ["Node", "IPPool"],
    });
    expect(await stale).toMatchObject({ state: "stale", reason: "watch failing", kinds: ["Node", "IPPool"] });
    expect(client.isInSync).toBe(false);
    const back = inSync(client);
    server.broadcast({ t: "status", state: "in-sync", since: 2 });
    await back;
    expect(client.isInSync).toBe(true);
  });

  it("answers pings with pongs and ignores messages of unknown types", async () => {
    const server = await makeServer({ hub: hubWith({ "IPPool/a": pool("10.0.0.0/16") }) });
    const client = makeClient({ servers: [server.url], view: "felix" });
    const rec = record(client);
    client.start();
    await client.synced();
    const [session] = [...server.sessions];
    server.broadcast({ t: "ping", ts: 12345 });
    server.broadcast(encodeMessage({ t: "hint-from-the-future", x: 1 } as never));
    const next = nextEvent(client, "updates");
    server.apply({ "IPPool/b": pool("10.1.0.0/16") });
    await next;
    await until(() => session!.pongs.length === 1, 5000, "the pong");
    expect(session!.pongs).toEqual([12345]);
    expect(rec.errors).toEqual([]);
    expect(server.connections).toBe(1);
  });

  it("stays in a stale-free syncing state until the server says in-sync", async () => {
    const server = await makeServer({ status: "syncing", hub: hubWith({ "IPPool/a": pool("10.0.0.0/16") }) });
    const client = makeClient({ servers: [server.url], view: "felix" });
    const rec = record(client);
    client.start();
    await nextEvent(client, "updates");
    expect(client.status.state).toBe("syncing");
    const synced = client.synced();
    server.broadcast({ t: "status", state: "in-sync", since: Date.now() });
    await synced;
    expect(rec.statuses.map((s) => s.state)).toEqual(["connecting", "syncing", "in-sync"]);
  });

  it("passes node name and token, and mirrors node-scoped entries of its own node only", async () => {
    const server = await makeServer({
      hub: hubWith({
        "BlockAffinity/mine": { spec: { node: "node-1", cidr: "10.0.1.0/26" } },
        "BlockAffinity/theirs": { spec: { node: "node-2", cidr: "10.0.2.0/26" } },
        "IPPool/a": pool("10.0.0.0/16"),
      }),
    });
    const client = makeClient({ servers: [server.url], view: "bgp", nodeName: "node-1", token: "s3cret" });
    client.start();
    await client.synced();
    expect(server.hellos[0]).toMatchObject({ view: "bgp", node: "node-1", token: "s3cret" });
    expect(client.keys().sort()).toEqual(["BlockAffinity/mine", "IPPool/a"]);
  });
});
