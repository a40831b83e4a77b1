import { describe, expect, it } from "vitest";
import { assembleDeltas, encodeEntry } from "../../proto/frame-builder.js";
import { hubWith } from "./client-test-server.js";
import { inSync, makeClient, makeServer, nextEvent, pool, record, until } from "./client-test-utils.js";

const STATE = Object.fromEntries(
  Array.from({ length: 20 }, (_, i) => [`IPPool/p${i}`, pool(`10.${i}.0.0/16`)]),
);

describe("client: lite mode (mirror: false)", () => {
  it("keeps no mirror, counts the snapshot, emits every delta change, and still resumes", async () => {
    const server = await makeServer({ hub: hubWith(STATE), compress: true });
    const client = makeClient({ servers: [server.url], view: "felix", mirror: false, backoffInitialMs: 10 });
    const rec = record(client);
    client.start();
    await client.synced();
    expect(client.stats.snapshots).toBe(1);
    expect(client.stats.frames).toBeGreaterThan(3);
    expect(client.stats.bytes).toBeGreaterThan(0);
    expect(rec.updates).toEqual([]); // a snapshot is not decoded, so it emits nothing
    expect(client.size).toBe(0);
    expect(client.get("IPPool/p1")).toBeUndefined();
    expect(client.list("IPPool")).toEqual([]);
    expect(client.revision).toBe(server.hub.revision);
    expect(client.serverId).toBe(server.id);

    // Deltas are decoded and emitted as they come, no-ops included (there is nothing to compare with).
    // Hand-made frame; it keeps `to` at r so that the server's log still matches the client's revision.
    const r = client.revision;
    const batch = nextEvent(client, "updates");
    server.broadcast(
      assembleDeltas(r, r, [
        encodeEntry({ k: "IPPool/p1", v: pool("10.1.0.0/16") }),
        encodeEntry({ k: "IPPool/absent", v: null }),
      ]),
    );
    expect(await batch).toEqual([
      { key: "IPPool/p1", kind: "IPPool", value: pool("10.1.0.0/16") },
      { key: "IPPool/absent", kind: "IPPool", value: null },
    ]);
    expect(client.revision).toBe(r); // (this frame did not move the revision: the server's log is unchanged)

    // The resume token is kept: after a drop, only the missing deltas.
    const revision = server.hub.revision;
    const down = nextEvent(client, "status", (s) => s.state === "disconnected");
    server.terminateAll();
    await down;
    server.apply({ "IPPool/p2": null });
    const missing = nextEvent(client, "updates");
    const back = inSync(client);
    expect(await missing).toEqual([{ key: "IPPool/p2", kind: "IPPool", value: null }]);
    await back;
    expect(server.hellos[1]?.resume).toEqual({ server: server.id, revision });
    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 1 });
  });

  it("does not inflate snapshot chunks (a mirror client would reject this one)", async () => {
    const server = await makeServer({
      onHello: (session) => {
        session.send({
          t: "welcome",
          version: 1,
          server: "s1",
          view: "felix",
          mode: "snapshot",
          revision: 5,
          features: ["deflate-snapshot"],
        });
        session.send({ t: "snap-begin", revision: 5, count: 10, chunks: 1 });
        session.send({ t: "snap-chunk", index: 0, z: Buffer.from("not deflate at all") });
        session.send({ t: "snap-end", revision: 5 });
        session.send({ t: "status", state: "in-sync", since: 1 });
      },
    });
    const lite = makeClient({ servers: [server.url], view: "felix", mirror: false });
    const liteRec = record(lite);
    lite.start();
    await lite.synced();
    expect(liteRec.errors).toEqual([]);
    expect(lite.revision).toBe(5);

    const full = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 60_000 });
    full.start();
    expect(await nextEvent(full, "error")).toMatchObject({ code: "ERR_CLIENT_PROTOCOL" });
    expect(full.stats.snapshots).toBe(0);
  });

  it("counts wire bytes: payloads plus frame headers, control frames and the upgrade response", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const client = makeClient({ servers: [server.url], view: "felix", mirror: false });
    client.start();
    await client.synced();
    const s0 = client.stats;
    // The upgrade response (101 and its headers) and 2+ header bytes per frame come on top of payloads.
    expect(s0.wireBytes).toBeGreaterThan(s0.bytes + 2 * s0.frames + 100);

    // A 200-byte binary frame (2 + 2 header bytes: payloads of 126..65535 bytes have a 16-bit length)
    // and a WebSocket ping with 10 bytes of payload (2 header bytes).
    const r = client.revision;
    let frame: Buffer = Buffer.alloc(0);
    for (let n = 0; frame.byteLength < 200; n++) {
      frame = assembleDeltas(r, r, [encodeEntry({ k: "IPPool/pad", v: { pad: "x".repeat(n) } })]);
    }
    expect(frame.byteLength).toBe(200);
    const batchDone = until(() => client.stats.frames === s0.frames + 1, 5000, "the padded frame");
    for (const session of server.sessions) session.ws.send(frame);
    await batchDone;
    for (const session of server.sessions) session.ws.ping(Buffer.from("0123456789"));
    await until(() => client.stats.wireBytes - s0.wireBytes === 204 + 12, 5000, "the ping's bytes");
    expect(client.stats.bytes - s0.bytes).toBe(200);
  });
});
