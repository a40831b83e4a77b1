import { describe, expect, it } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import type { HelloMessage, ResourceValue } from "../../proto/messages.js";
import type { Update } from "../../src/client/index.js";
import { hubWith } from "./client-test-server.js";
import type { TestServer, TestSession } from "./client-test-server.js";
import { inSync, makeClient, makeServer, nextEvent, pool, record } from "./client-test-utils.js";

const STATE: Record<string, ResourceValue> = Object.fromEntries(
  Array.from({ length: 30 }, (_, i) => [`IPPool/pool-${i}`, pool(`10.${i}.0.0/16`)]),
);
STATE["NetworkPolicy/ns1/allow"] = { spec: { tier: "default", selector: "all()", order: 10 } };

const byKey = (a: Update, b: Update): number => a.key.localeCompare(b.key);

/** A client on a discovery function whose answer the test changes. */
function clientOn(list: { servers: string[] }, extra: { random?: () => number } = {}) {
  return makeClient({
    servers: () => Promise.resolve(list.servers),
    view: "felix",
    backoffInitialMs: 20,
    backoffMaxMs: 100,
    ...extra,
  });
}

describe("client: reconnect and resume", () => {
  it("resumes after a dropped connection with its token and gets only the missing deltas", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const client = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 20 });
    const rec = record(client);
    client.start();
    await client.synced();
    const revision = client.revision;

    const down = nextEvent(client, "status", (s) => s.state === "disconnected");
    server.terminateAll();
    expect(await down).toMatchObject({ closeCode: 1006, server: server.url });
    // Changes while the client is away stay in the server's log.
    server.apply({ "IPPool/pool-3": null, "IPPool/new": pool("10.200.0.0/16") });
    const missing = nextEvent(client, "updates");
    const back = inSync(client);
    expect([...(await missing)].sort(byKey)).toEqual([
      { key: "IPPool/new", kind: "IPPool", value: pool("10.200.0.0/16") },
      { key: "IPPool/pool-3", kind: "IPPool", value: null },
    ]);
    await back;

    expect(server.hellos[1]?.resume).toEqual({ server: server.id, revision });
    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 1, reconnects: 1 });
    expect(rec.updates).toHaveLength(2);
    expect(client.revision).toBe(server.hub.revision);
    expect(client.size).toBe(31);
  });

  it("reconnecting to a restarted server or another replica with the same state yields zero updates", async () => {
    const a: TestServer = await makeServer({ hub: hubWith(STATE) });
    // Same content, different history: another server id and another revision.
    const b = await makeServer({ hub: hubWith(STATE, { churn: 7 }), compress: true });
    const list = { servers: [a.url] };
    const client = clientOn(list);
    const rec = record(client);
    client.start();
    await client.synced();
    expect(rec.updates).toHaveLength(1);
    const revisionOnA = client.revision;

    list.servers = [b.url];
    const onB = inSync(client, b.url);
    a.closeAll(CloseCode.shuttingDown, "draining");
    await onB;

    expect(b.hellos[0]?.resume).toEqual({ server: a.id, revision: revisionOnA });
    expect(rec.updates).toHaveLength(1); // nothing new: the snapshot from b equals the mirror
    expect(client.stats).toMatchObject({ snapshots: 2, resumes: 0 });
    expect(client.serverId).toBe(b.id);
    expect(client.revision).toBe(b.hub.revision);
    expect(client.revision).not.toBe(revisionOnA);
    expect(client.size).toBe(31);
    expect(rec.statuses.find((s) => s.state === "disconnected")).toMatchObject({
      closeCode: CloseCode.shuttingDown,
      reason: "draining",
    });

    // And deltas from b apply on top.
    const next = nextEvent(client, "updates");
    b.apply({ "IPPool/pool-0": null });
    expect(await next).toEqual([{ key: "IPPool/pool-0", kind: "IPPool", value: null }]);
  });

  it("reconnecting to a server with a different state yields exactly the diff, in one batch", async () => {
    const a: TestServer = await makeServer({ hub: hubWith(STATE) });
    const changed: Record<string, ResourceValue> = { ...STATE };
    changed["IPPool/pool-1"] = pool("10.1.0.0/16", { natOutgoing: true });
    delete changed["IPPool/pool-2"];
    changed["IPPool/pool-99"] = pool("10.99.0.0/16");
    const b = await makeServer({ hub: hubWith(changed) });
    const list = { servers: [a.url] };
    const client = clientOn(list);
    const rec = record(client);
    client.start();
    await client.synced();

    list.servers = [b.url];
    const diff = nextEvent(client, "updates");
    const onB = inSync(client, b.url);
    a.terminateAll();
    expect([...(await diff)].sort(byKey)).toEqual([
      { key: "IPPool/pool-1", kind: "IPPool", value: pool("10.1.0.0/16", { natOutgoing: true }) },
      { key: "IPPool/pool-2", kind: "IPPool", value: null },
      { key: "IPPool/pool-99", kind: "IPPool", value: pool("10.99.0.0/16") },
    ]);
    await onB;
    expect(rec.updates).toHaveLength(2);
    expect(client.get("IPPool/pool-2")).toBeUndefined();
    expect(client.get("IPPool/pool-1")).toEqual(changed["IPPool/pool-1"]);
    expect(client.size).toBe(31);
  });

  it("after 4005 tooSlow reconnects to the same server and resumes", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const other = await makeServer({ hub: hubWith(STATE) });
    // random() = 0 picks the first untried server: `server`.
    const client = makeClient({ servers: [server.url, other.url], view: "felix", random: () => 0 });
    client.start();
    await client.synced();
    const back = inSync(client);
    server.closeAll(CloseCode.tooSlow, "behind");
    expect(await back).toMatchObject({ server: server.url });
    expect(client.stats).toMatchObject({ resumes: 1, snapshots: 1 });
    expect(other.connections).toBe(0);
  });

  it("a move hint plus 4007 sends the client to another server after the delay, without churn", async () => {
    const a: TestServer = await makeServer({
      hub: hubWith(STATE),
      onHello: (session, hello) => {
        a.startSession(session, hello);
        session.send({ t: "move", reason: "rebalance", delayMs: 40 });
        session.close(CloseCode.rebalance, "rebalance");
      },
    });
    const b = await makeServer({ hub: hubWith(STATE, { churn: 3 }) });
    const client = makeClient({ servers: [a.url, b.url], view: "felix", random: () => 0 });
    const rec = record(client);
    client.start();
    await inSync(client, b.url);
    const down = rec.statuses.find((s) => s.state === "disconnected");
    expect(down).toMatchObject({ server: a.url, closeCode: CloseCode.rebalance });
    expect(down?.retryInMs).toBeLessThanOrEqual(40);
    expect(rec.updates).toHaveLength(1); // the snapshot from a; b's equal snapshot shows nothing
    expect((b.hellos[0] as HelloMessage).resume?.server).toBe(a.id);
    expect(a.connections).toBe(1);
  });

  it("leaves by itself after a move hint's delay when the server does not close", async () => {
    const sessions: TestSession[] = [];
    const a: TestServer = await makeServer({
      hub: hubWith(STATE),
      onHello: (session, hello) => {
        sessions.push(session);
        a.startSession(session, hello);
        session.send({ t: "move", reason: "rebalance", delayMs: 30 });
      },
    });
    const b = await makeServer({ hub: hubWith(STATE) });
    const client = makeClient({ servers: [a.url, b.url], view: "felix", random: () => 0 });
    client.start();
    await inSync(client, b.url);
    expect(sessions).toHaveLength(1);
    expect(await sessions[0]!.closed).toBe(CloseCode.normal);
  });
});
