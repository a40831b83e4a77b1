/**
 * A snapshot older than its server's head (snap-end `head`, PROTOCOL.md §6.2: a reused snapshot, or one
 * sent while the server moved on): a client that already holds a mirror shows its agent only the net
 * change once the catch-up reaches the head, never the snapshot's older values first, and reports
 * `syncing` until then.
 */
import { describe, expect, it } from "vitest";
import type { ResourceValue } from "../../proto/messages.js";
import type { ClientStatus } from "../../src/client/index.js";
import { hubWith } from "./client-test-server.js";
import type { TestSession } from "./client-test-server.js";
import { makeClient, makeServer, pool, record, until } from "./client-test-utils.js";

const OLD = pool("10.0.0.0/16");
const NEW = pool("10.9.0.0/16");

function welcome(session: TestSession, server: string, revision: number): void {
  session.send({ t: "welcome", version: 1, server, view: "felix", mode: "snapshot", revision, features: [] });
}

describe("client: a snapshot older than the server's head", () => {
  it("holds the diff until the catch-up reaches the head: no value goes back, syncing until then", async () => {
    let sessions = 0;
    let held: TestSession | undefined;
    const server = await makeServer({
      hub: hubWith({ "IPPool/a": NEW, "IPPool/b": OLD }),
      onHello: (session, hello) => {
        sessions++;
        if (sessions === 1) return server.startSession(session, hello);
        // The second session: a snapshot at revision 5 in which a is still OLD and c exists, the head 9.
        held = session;
        welcome(session, "other", 9);
        session.send({ t: "snap-begin", revision: 5, count: 3, chunks: 1 });
        const entries: { k: string; v: ResourceValue }[] = [
          { k: "IPPool/a", v: OLD },
          { k: "IPPool/b", v: OLD },
          { k: "IPPool/c", v: OLD },
        ];
        session.send({ t: "snap-chunk", index: 0, entries });
        session.send({ t: "snap-end", revision: 5, head: 9 });
      },
    });
    const client = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 10 });
    const rec = record(client);
    client.start();
    await client.synced();
    expect(client.get("IPPool/a")).toEqual(NEW);
    rec.updates.length = 0;
    const statuses: ClientStatus[] = [];
    client.on("status", (s) => statuses.push(s));

    server.terminateAll();
    await until(() => held !== undefined && client.stats.snapshots === 2);
    // The snapshot is applied but held: nothing for the agent yet, and not in sync.
    expect(client.stats.heldSnapshots).toBe(1);
    expect(rec.updates).toEqual([]);
    expect(client.status.state).toBe("syncing");

    // The catch-up: a back to NEW, c deleted, then a real change of b; it ends at the head.
    held!.send({ t: "deltas", from: 5, to: 7, changes: [{ k: "IPPool/a", v: NEW }] });
    held!.send({
      t: "deltas",
      from: 7,
      to: 9,
      changes: [
        { k: "IPPool/c", v: null },
        { k: "IPPool/b", v: NEW },
      ],
    });
    held!.send({ t: "status", state: "in-sync", since: Date.now() });
    await until(() => client.status.state === "in-sync");
    // One batch: only b's real change. a never went back to OLD, c never appeared.
    expect(rec.updates).toEqual([[{ key: "IPPool/b", kind: "IPPool", value: NEW }]]);
    expect(statuses.filter((s) => s.state === "in-sync")).toHaveLength(1);
    expect(client.get("IPPool/a")).toEqual(NEW);
    expect(client.get("IPPool/c")).toBeUndefined();

    // After the hold, changes reach the agent one frame at a time again.
    held!.send({ t: "deltas", from: 9, to: 10, changes: [{ k: "IPPool/a", v: OLD }] });
    await until(() => rec.updates.length === 2);
    expect(rec.updates[1]).toEqual([{ key: "IPPool/a", kind: "IPPool", value: OLD }]);
  });

  it("a snapshot at the head (no `head` field) is diffed at once, as before", async () => {
    let sessions = 0;
    const server = await makeServer({
      hub: hubWith({ "IPPool/a": NEW }),
      onHello: (session, hello) => {
        sessions++;
        if (sessions === 1) return server.startSession(session, hello);
        welcome(session, "other", 5);
        session.send({ t: "snap-begin", revision: 5, count: 1, chunks: 1 });
        session.send({ t: "snap-chunk", index: 0, entries: [{ k: "IPPool/a", v: OLD }] });
        session.send({ t: "snap-end", revision: 5 });
        session.send({ t: "status", state: "in-sync", since: Date.now() });
      },
    });
    const client = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 10 });
    const rec = record(client);
    client.start();
    await client.synced();
    rec.updates.length = 0;
    server.terminateAll();
    await until(() => rec.updates.length === 1);
    expect(rec.updates[0]).toEqual([{ key: "IPPool/a", kind: "IPPool", value: OLD }]);
    expect(client.stats.heldSnapshots).toBe(0);
  });

  it("a session that ends during the hold keeps it: the next baseline reports the net change once", async () => {
    let sessions = 0;
    const hub = hubWith({ "IPPool/a": NEW, "IPPool/b": OLD });
    const server = await makeServer({
      hub,
      onHello: (session, hello) => {
        sessions++;
        if (sessions !== 2) return server.startSession(session, hello);
        // The second session: an older snapshot (a back at OLD), then the server dies before the catch-up.
        welcome(session, "other", 9);
        session.send({ t: "snap-begin", revision: 5, count: 2, chunks: 1 });
        const entries: { k: string; v: ResourceValue }[] = [
          { k: "IPPool/a", v: OLD },
          { k: "IPPool/b", v: OLD },
        ];
        session.send({ t: "snap-chunk", index: 0, entries });
        session.send({ t: "snap-end", revision: 5, head: 9 });
        setTimeout(() => session.ws.terminate(), 20);
      },
    });
    const client = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 10 });
    const rec = record(client);
    client.start();
    await client.synced();
    rec.updates.length = 0;
    // Meanwhile b really changes; the third session is a snapshot at the head.
    server.hub.upsert("IPPool/b", NEW);
    server.hub.flush();
    server.terminateAll();
    await until(() => sessions === 3 && client.status.state === "in-sync");
    expect(client.stats.heldSnapshots).toBe(1);
    // a never went back to OLD; b's real change arrives once.
    expect(rec.updates).toEqual([[{ key: "IPPool/b", kind: "IPPool", value: NEW }]]);
  });
});
