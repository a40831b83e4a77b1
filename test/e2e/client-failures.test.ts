import { createServer } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { WebSocketServer } from "ws";
import { CloseCode, FATAL_CLOSE_CODES } from "../../proto/close-codes.js";
import { encodeMessage, encodeValue } from "../../proto/codec.js";
import { assembleDeltas, encodeEntry } from "../../proto/frame-builder.js";
import { ClientRejectedError, ClientTimeoutError } from "../../src/client/index.js";
import { hubWith } from "./client-test-server.js";
import {
  inSync,
  makeClient,
  makeServer,
  nextEvent,
  pool,
  record,
  refusingAddress,
  until,
} from "./client-test-utils.js";

function portOf(address: AddressInfo | string | null): number {
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Blocks this thread for `ms` (the whole process: server and client alike). */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const STATE = { "IPPool/a": pool("10.0.0.0/16"), "IPPool/b": pool("10.1.0.0/16") };

describe("client: fatal close codes", () => {
  it.each([...FATAL_CLOSE_CODES])(
    "close code %i stops the client when it is the only server",
    async (code) => {
      const server = await makeServer({ reject: { code } });
      const client = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 10 });
      const rec = record(client);
      const synced = client.synced();
      client.start();
      const reason = await client.closed();
      expect(reason).toBeInstanceOf(ClientRejectedError);
      expect(reason).toMatchObject({ code: "ERR_CLIENT_REJECTED", closeCode: code, server: server.url });
      await expect(synced).rejects.toMatchObject({ code: "ERR_CLIENT_CLOSED" });
      expect(rec.errors.map((e) => e.code)).toEqual(["ERR_CLIENT_REJECTED"]);
      expect(rec.statuses.map((s) => s.state)).toEqual(["connecting", "disconnected", "closed"]);
      expect(client.status).toMatchObject({ state: "closed", error: reason });
      expect(server.connections).toBe(1);
      expect(() => client.start()).toThrow(expect.objectContaining({ code: "ERR_CLIENT_CLOSED" }));
    },
  );

  it("stops using a server that rejected it, and keeps using the others", async () => {
    const rejecting = await makeServer({ reject: { code: CloseCode.unauthorized } });
    const good = await makeServer({ hub: hubWith(STATE) });
    // random() = 0 picks the first untried server: the rejecting one goes first.
    const client = makeClient({
      servers: [rejecting.url, good.url],
      view: "felix",
      backoffInitialMs: 10,
      random: () => 0,
    });
    const rec = record(client);
    client.start();
    await client.synced();
    expect(rec.errors.map((e) => [e.code, e.server])).toEqual([["ERR_CLIENT_REJECTED", rejecting.url]]);

    const back = inSync(client);
    good.closeAll(CloseCode.shuttingDown); // "go elsewhere": but the only other server rejected us
    await back;
    expect(rejecting.connections).toBe(1);
    expect(good.connections).toBe(2);
  });
});

describe("client: backoff across servers", () => {
  it("alternates between a refusing and a busy server with growing delays, and resets after a healthy session", async () => {
    const refusing = await refusingAddress();
    const busy = await makeServer({
      hub: hubWith(STATE),
      reject: { code: CloseCode.tooManyConnections, count: 2 },
    });
    // random() = 0.5: no jitter (factor 1.0), and the middle of the untried servers.
    const client = makeClient({
      servers: [refusing, busy.url],
      view: "felix",
      backoffInitialMs: 20,
      backoffMaxMs: 80,
      random: () => 0.5,
    });
    const rec = record(client);
    client.start();
    await client.synced();
    const attempts = rec.statuses.filter((s) => s.state === "connecting").map((s) => s.server);
    expect(attempts).toEqual([busy.url, refusing, busy.url, refusing, busy.url]);
    const delays = rec.statuses.filter((s) => s.state === "disconnected").map((s) => s.retryInMs);
    expect(delays).toEqual([20, 40, 80, 80]);
    expect(rec.errors.map((e) => e.code)).toEqual(["ERR_CLIENT_CONNECT", "ERR_CLIENT_CONNECT"]);
    expect(client.stats.reconnects).toBe(4);

    // A healthy session resets the backoff, and the client goes back to the same server to resume.
    const down = nextEvent(client, "status", (s) => s.state === "disconnected");
    const back = inSync(client);
    busy.terminateAll();
    expect((await down).retryInMs).toBe(20);
    expect(await back).toMatchObject({ server: busy.url });
    expect(client.stats.resumes).toBe(1);
  });
});

describe("client: watchdog and timeouts", () => {
  it("drops a silent connection after readTimeoutMs and resumes", async () => {
    const server = await makeServer({ hub: hubWith(STATE) }); // sends no pings
    const client = makeClient({
      servers: [server.url],
      view: "felix",
      readTimeoutMs: 300,
      backoffInitialMs: 10,
    });
    client.start();
    await client.synced();
    const timeout = nextEvent(client, "error");
    const down = nextEvent(client, "status", (s) => s.state === "disconnected");
    const back = inSync(client);
    const error = await timeout;
    expect(error).toBeInstanceOf(ClientTimeoutError);
    expect(error).toMatchObject({ code: "ERR_CLIENT_TIMEOUT", timeout: "read" });
    expect(await down).toMatchObject({ closeCode: CloseCode.keepaliveTimeout });
    await back;
    expect(server.hellos[1]?.resume?.server).toBe(server.id);
    expect(client.stats.resumes).toBe(1);
  });

  it("keeps a connection that receives pings (and answers each)", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const client = makeClient({ servers: [server.url], view: "felix", readTimeoutMs: 600 });
    const rec = record(client);
    client.start();
    await client.synced();
    let ts = 0;
    const pinger = setInterval(() => server.broadcast({ t: "ping", ts: ++ts }), 60);
    onTestFinished(() => clearInterval(pinger));
    const [session] = [...server.sessions];
    // 25 pings take ~1.5 s: more than two read timeouts.
    await until(() => session!.pongs.length >= 25, 10_000, "25 pongs");
    expect(session!.pongs.slice(0, 25)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(rec.errors).toEqual([]);
    expect(server.connections).toBe(1);
  });

  it("waits past connectTimeoutMs for the welcome of a server that accepted it, up to readTimeoutMs", async () => {
    let hellos = 0;
    const server = await makeServer({
      hub: hubWith(STATE),
      onHello: (session, hello) => {
        // The first attempt is never answered; the second is answered late (a busy server).
        if (++hellos === 1) return;
        setTimeout(() => server.startSession(session, hello), 400);
      },
    });
    const client = makeClient({
      servers: [server.url],
      view: "felix",
      connectTimeoutMs: 150,
      readTimeoutMs: 800,
      backoffInitialMs: 10,
    });
    client.start();
    const error = await nextEvent(client, "error");
    expect(error).toMatchObject({ code: "ERR_CLIENT_TIMEOUT", timeout: "read" });
    // The second welcome came 400 ms after the hello, well past connectTimeoutMs: the client took it.
    await client.synced();
    expect(hellos).toBe(2);
    expect(client.stats.reconnects).toBe(1);
  });

  it("waits for a welcome held past readTimeoutMs by a server that pings (one still listing)", async () => {
    const server = await makeServer({
      hub: hubWith(STATE),
      onHello: (session, hello) => {
        // A just-started server holds the session until its view is listed, pinging it meanwhile.
        let ts = 0;
        const pinger = setInterval(() => session.send({ t: "ping", ts: ++ts }), 50);
        setTimeout(() => {
          clearInterval(pinger);
          server.startSession(session, hello);
        }, 700);
      },
    });
    const client = makeClient({ servers: [server.url], view: "felix", readTimeoutMs: 250 });
    const rec = record(client);
    client.start();
    await client.synced();
    expect(rec.errors).toEqual([]);
    expect(client.stats.reconnects).toBe(0);
    expect([...server.sessions][0]?.pongs.length).toBeGreaterThanOrEqual(5);
  });

  it("takes an upgrade that arrived while its own event loop stalled past connectTimeoutMs", async () => {
    // A plain WebSocket server in this process: right after it has written the upgrade's answer, the
    // process stalls (a busy node, a long GC) past the client's connect timeout.
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => wss.once("listening", resolve));
    onTestFinished(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    const messages: number[] = [];
    wss.on("connection", (ws) => {
      ws.on("message", (data: Buffer) => messages.push(data.byteLength));
      stall(1500);
    });
    const client = makeClient({
      servers: [`ws://127.0.0.1:${portOf(wss.address())}`],
      view: "felix",
      connectTimeoutMs: 1000,
      readTimeoutMs: 10_000,
    });
    const rec = record(client);
    client.start();
    // The client opened and said hello, on its first connection: no connect timeout.
    await until(() => messages.length > 0);
    expect(rec.errors).toEqual([]);
    expect(client.stats.reconnects).toBe(0);
  });

  it("counts a frame that arrived while its own event loop stalled past readTimeoutMs", async () => {
    let pinged = false;
    const server = await makeServer({
      hub: hubWith(STATE),
      onHello: (session, hello) => {
        server.startSession(session, hello);
        // After this turn's I/O and timers (a stall inside a timer callback hides from the timers due in
        // the same turn, the loop's clock being read once per turn): the ping waits unread in the
        // client's socket while the process stalls past readTimeoutMs.
        setTimeout(
          () =>
            setImmediate(() => {
              session.send({ t: "ping", ts: 1 });
              pinged = true;
              stall(1500);
            }),
          100,
        );
      },
    });
    const client = makeClient({ servers: [server.url], view: "felix", readTimeoutMs: 1000 });
    const rec = record(client);
    client.start();
    await client.synced();
    await until(() => pinged);
    // Past the stall and the watchdog's next turn: the ping counted, the session stands.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(rec.errors).toEqual([]);
    expect(client.stats.reconnects).toBe(0);
    expect([...server.sessions][0]?.pongs.length).toBe(1);
  });

  it("gives up a TCP connection whose WebSocket upgrade never completes", async () => {
    const sockets = new Set<Socket>();
    const tcp = createServer((s) => sockets.add(s)); // never answers the HTTP upgrade
    await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
    onTestFinished(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => tcp.close(resolve));
    });
    const client = makeClient({
      servers: [`ws://127.0.0.1:${portOf(tcp.address())}`],
      view: "felix",
      connectTimeoutMs: 150,
    });
    client.start();
    expect(await nextEvent(client, "error")).toMatchObject({
      code: "ERR_CLIENT_TIMEOUT",
      timeout: "connect",
    });
  });
});

describe("client: bad frames", () => {
  const at = (r: number) => ({
    "invalid msgpack": Buffer.from([0xc1]),
    "a message with a missing field": encodeValue({ t: "deltas", from: r }),
    "deltas going back (from < revision)": assembleDeltas(r - 1, r + 1, [
      encodeEntry({ k: "IPPool/x", v: {} }),
    ]),
    "a chunk outside a snapshot": encodeMessage({ t: "snap-chunk", index: 0, entries: [] }),
    "a left the client did not ask for (no leave sent)": encodeMessage({ t: "left", revision: r }),
    "a second welcome": encodeMessage({
      t: "welcome",
      version: 1,
      server: "x",
      view: "felix",
      mode: "snapshot",
      revision: r,
      features: [],
    }),
  });

  it.each(Object.keys(at(1)))(
    "%s: closes with 4006, reports it, and resyncs with a snapshot",
    async (name) => {
      const server = await makeServer({ hub: hubWith(STATE) });
      const client = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 10 });
      const rec = record(client);
      client.start();
      await client.synced();
      const [session] = [...server.sessions];
      const error = nextEvent(client, "error");
      const back = inSync(client);
      server.broadcast(at(client.revision)[name as keyof ReturnType<typeof at>]);
      expect(await error).toMatchObject({ code: "ERR_CLIENT_PROTOCOL", server: server.url });
      expect(await session!.closed).toBe(CloseCode.badFrame);
      await back;
      // No resume after a protocol error: a fresh snapshot, diffed against the mirror (same state: no updates).
      expect(server.hellos[1]?.resume).toBeUndefined();
      expect(client.stats.snapshots).toBe(2);
      expect(rec.updates).toHaveLength(1);
      expect(client.size).toBe(2);
    },
  );

  it("a text frame is a bad frame", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const client = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 10 });
    client.start();
    await client.synced();
    const [session] = [...server.sessions];
    const error = nextEvent(client, "error");
    session!.ws.send("hello?");
    expect(await error).toMatchObject({ code: "ERR_CLIENT_PROTOCOL" });
    expect(await session!.closed).toBe(CloseCode.badFrame);
  });

  it("a snapshot whose chunk count or entry count is wrong is a bad frame", async () => {
    let isFirst = true;
    const server = await makeServer({
      hub: hubWith(STATE),
      onHello: (session, hello) => {
        if (!isFirst) return server.startSession(session, hello);
        isFirst = false;
        session.send({
          t: "welcome",
          version: 1,
          server: server.id,
          view: "felix",
          mode: "snapshot",
          revision: 2,
          features: [],
        });
        session.send({ t: "snap-begin", revision: 2, count: 3, chunks: 1 });
        session.send({ t: "snap-chunk", index: 0, entries: [{ k: "IPPool/a", v: {} }] });
        session.send({ t: "snap-end", revision: 2 });
      },
    });
    const client = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 10 });
    const rec = record(client);
    client.start();
    await client.synced();
    expect(rec.errors.map((e) => e.code)).toEqual(["ERR_CLIENT_PROTOCOL"]);
    // The bad snapshot was not applied: the only batch is the good snapshot.
    expect(rec.updates).toHaveLength(1);
    expect(rec.updates[0]).toHaveLength(2);
  });
});
