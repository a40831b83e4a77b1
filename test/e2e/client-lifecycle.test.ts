import { createServer } from "node:net";
import type { Socket } from "node:net";
import { pino } from "pino";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { TabbyClient } from "../../src/client/index.js";
import type { ClientLogger } from "../../src/client/index.js";
import { hubWith } from "./client-test-server.js";
import {
  makeClient,
  makeServer,
  nextEvent,
  pool,
  record,
  refusingAddress,
  until,
} from "./client-test-utils.js";

const STATE = { "IPPool/a": pool("10.0.0.0/16") };

/**
 * Fakes the timer functions for this test, so that `vi.getTimerCount()` counts exactly the timers the
 * client (and ws) started. Sockets stay real; waiting is on events, never on time.
 */
async function fakeTimers(): Promise<void> {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
  onTestFinished(() => {
    vi.useRealTimers();
  });
  await Promise.resolve();
}

describe("client: close", () => {
  it("is idempotent, closes the socket normally and leaves no timer behind", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    await fakeTimers();
    const client = new TabbyClient({
      servers: [server.url],
      view: "felix",
      logger: pino({ level: "silent" }),
    });
    const rec = record(client);
    client.start();
    client.start(); // idempotent
    await vi.advanceTimersByTimeAsync(0); // the first attempt starts on the next tick
    await client.synced();
    const [session] = [...server.sessions];
    expect(vi.getTimerCount()).toBe(1); // the read watchdog
    const first = client.close();
    const second = client.close();
    expect(second).toBe(first);
    await first;
    await client.close();
    expect(await session!.closed).toBe(CloseCode.normal);
    expect(vi.getTimerCount()).toBe(0);
    expect(rec.statuses.filter((s) => s.state === "closed")).toHaveLength(1);
    expect(await client.closed()).toBeUndefined();
    await expect(client.synced()).resolves.toBeUndefined(); // it was in sync before
    expect(() => client.start()).toThrow(expect.objectContaining({ code: "ERR_CLIENT_CLOSED" }));
    expect(client.size).toBe(1); // the mirror stays readable
  });

  it("destroy() drops the socket now, resolves closed() with the reason, leaves no timer", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    await fakeTimers();
    const client = new TabbyClient({
      servers: [server.url],
      view: "felix",
      logger: pino({ level: "silent" }),
    });
    const rec = record(client);
    client.start();
    await vi.advanceTimersByTimeAsync(0);
    await client.synced();
    const [session] = [...server.sessions];
    const cause = new Error("agent stopping");
    const first = client.destroy(cause);
    expect(client.destroy()).toBe(first);
    expect(client.close()).toBe(first);
    await first;
    expect(await session!.closed).toBe(1006); // no close handshake
    expect(vi.getTimerCount()).toBe(0);
    const reason = await client.closed();
    expect(reason).toMatchObject({ code: "ERR_CLIENT_CLOSED", cause });
    expect(rec.statuses.filter((s) => s.state === "closed")).toEqual([
      expect.objectContaining({ state: "closed", error: reason }),
    ]);
  });

  it("destroy() during a close() whose handshake hangs wins: both resolve at once", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    await fakeTimers();
    const client = new TabbyClient({
      servers: [server.url],
      view: "felix",
      closeTimeoutMs: 30_000,
      logger: pino({ level: "silent" }),
    });
    client.start();
    await vi.advanceTimersByTimeAsync(0);
    await client.synced();
    const [session] = [...server.sessions];
    session!.ws.pause(); // the server never reads the client's close frame, so never answers it
    let isClosed = false;
    const closing = client.close().then(() => (isClosed = true));
    await vi.advanceTimersByTimeAsync(1000);
    expect(isClosed).toBe(false);
    const destroying = client.destroy();
    expect(destroying).toBe(client.close());
    await Promise.all([closing, destroying]); // long before the 30 s close timeout
    expect(isClosed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(await client.closed()).toBeUndefined(); // close() came first: a plain stop
    session!.ws.resume();
  });

  it("await using: the client is closed at the end of the scope", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    let seen: TabbyClient | undefined;
    {
      await using client = new TabbyClient({
        servers: [server.url],
        view: "felix",
        logger: pino({ level: "silent" }),
      });
      seen = client;
      client.start();
      await client.synced();
    }
    expect(await seen.closed()).toBeUndefined();
    expect(seen.status.state).toBe("closed");
  });

  it("while waiting to retry: cancels the retry timer", async () => {
    const address = await refusingAddress();
    await fakeTimers();
    const client = new TabbyClient({ servers: [address], view: "felix", backoffInitialMs: 60_000 });
    const synced = client.synced();
    const down = new Promise((resolve) =>
      client.on("status", (s) => s.state === "disconnected" && resolve(s)),
    );
    client.start();
    await vi.advanceTimersByTimeAsync(0);
    await down;
    expect(vi.getTimerCount()).toBe(1); // the retry
    await client.close();
    expect(vi.getTimerCount()).toBe(0);
    await expect(synced).rejects.toMatchObject({ code: "ERR_CLIENT_CLOSED" });
  });

  it("while the WebSocket upgrade hangs: drops the attempt at once", async () => {
    const sockets = new Set<Socket>();
    let onConnection: () => void = () => undefined;
    const connected = new Promise<void>((resolve) => (onConnection = resolve));
    const tcp = createServer((s) => {
      sockets.add(s);
      onConnection();
    });
    await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
    onTestFinished(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => tcp.close(resolve));
    });
    const address = tcp.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    await fakeTimers();
    const client = new TabbyClient({ servers: [`ws://127.0.0.1:${address.port}`], view: "felix" });
    client.start();
    await vi.advanceTimersByTimeAsync(0);
    await connected;
    expect(vi.getTimerCount()).toBe(1); // the connect timeout
    await client.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(client.status.state).toBe("closed");
  });

  it("while discovery hangs: aborts its signal", async () => {
    let onDiscovery: (signal: AbortSignal) => void = () => undefined;
    const called = new Promise<AbortSignal>((resolve) => (onDiscovery = resolve));
    await fakeTimers();
    const client = new TabbyClient({
      servers: (signal) => {
        onDiscovery(signal);
        return new Promise(() => undefined); // never settles
      },
      view: "felix",
    });
    client.start();
    await vi.advanceTimersByTimeAsync(0);
    const signal = await called;
    expect(vi.getTimerCount()).toBe(1); // the discovery timeout
    await client.close();
    expect(signal.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("an AbortSignal closes the client", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const controller = new AbortController();
    const client = makeClient({ servers: [server.url], view: "felix", signal: controller.signal });
    client.start();
    await client.synced();
    const [session] = [...server.sessions];
    const closed = nextEvent(client, "status", (s) => s.state === "closed");
    controller.abort();
    await closed;
    expect(await client.closed()).toBeUndefined();
    expect(await session!.closed).toBe(CloseCode.normal);
  });

  it("an already aborted signal: the client is closed from the start", async () => {
    const client = makeClient({ servers: ["ws://127.0.0.1:1"], view: "felix", signal: AbortSignal.abort() });
    expect(await client.closed()).toBeUndefined();
    expect(() => client.start()).toThrow(expect.objectContaining({ code: "ERR_CLIENT_CLOSED" }));
  });
});

describe("client: events and logging", () => {
  it("a throwing listener is reported as ERR_CLIENT_LISTENER and does not break the session", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const client = makeClient({ servers: [server.url], view: "felix" });
    const rec = record(client);
    client.on("updates", () => {
      throw new Error("application bug");
    });
    client.start();
    await client.synced();
    const next = nextEvent(client, "updates");
    server.apply({ "IPPool/b": pool("10.1.0.0/16") });
    await next;
    expect(rec.errors.map((e) => e.code)).toEqual(["ERR_CLIENT_LISTENER", "ERR_CLIENT_LISTENER"]);
    expect(client.size).toBe(2);
    expect(server.connections).toBe(1);
  });

  it("without an error listener, errors go to the logger (never thrown)", async () => {
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    const logger: ClientLogger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }),
      error: () => undefined,
    };
    const client = makeClient({
      servers: [await refusingAddress()],
      view: "felix",
      logger,
      backoffInitialMs: 10,
    });
    client.start();
    await until(() => warnings.length >= 2, 5000, "two warnings");
    expect(warnings[0]?.obj.code).toBe("ERR_CLIENT_CONNECT");
    expect(client.stats.errors).toBeGreaterThanOrEqual(2);
  });
});

describe("client: discovery", () => {
  it("runs discovery before each attempt and retries after it fails", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    let calls = 0;
    const client = makeClient({
      servers: () => {
        calls++;
        if (calls === 1) return Promise.reject(new Error("dns down"));
        if (calls === 2) return Promise.resolve(["http://not-a-ws-url", "nonsense"]);
        return Promise.resolve([server.url]);
      },
      view: "felix",
      backoffInitialMs: 10,
    });
    const rec = record(client);
    client.start();
    await client.synced();
    expect(rec.errors.map((e) => e.code)).toEqual(["ERR_CLIENT_DISCOVERY", "ERR_CLIENT_DISCOVERY"]);
    expect(calls).toBe(3);
    server.terminateAll();
    await nextEvent(client, "status", (s) => s.state === "in-sync");
    expect(calls).toBe(4);
  });

  it("times out a slow discovery and aborts its signal", async () => {
    const signals: AbortSignal[] = [];
    const client = makeClient({
      servers: (signal) => {
        signals.push(signal);
        return new Promise(() => undefined);
      },
      view: "felix",
      connectTimeoutMs: 100,
      backoffInitialMs: 60_000,
    });
    client.start();
    expect(await nextEvent(client, "error")).toMatchObject({
      code: "ERR_CLIENT_TIMEOUT",
      timeout: "discovery",
    });
    expect(signals[0]?.aborted).toBe(true);
  });
});
