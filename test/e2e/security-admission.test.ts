/**
 * Admission limits against anonymous exhaustion, with real sockets: the time before the upgrade is
 * bounded by the handshake timeout, connections still in their handshake are capped apart from the
 * session slots (the oldest is cut when full) and per source address, and real agents get in and stay
 * while the server is flooded with upgrade-less and hello-less connections.
 */
import { connect } from "node:net";
import type { Socket } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { WebSocket } from "ws";
import { CloseCode } from "../../proto/close-codes.js";
import { PolicyAuthenticator } from "../../src/server/auth/index.js";
import { inSync, makeClient } from "./client-test-utils.js";
import {
  RawClient,
  expectStillReceiving,
  hello,
  metricValue,
  startFanout,
  waitFor,
} from "./fanout-harness.js";

/** A TCP connection that never sends a byte (no TLS, no HTTP request). */
function idleSocket(port: number, localAddress = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", localAddress }, () => resolve(socket));
    socket.once("error", reject);
    onTestFinished(() => void socket.destroy());
  });
}

function isClosed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    socket.once("close", () => resolve());
  });
}

describe("admission limits", () => {
  it("cuts a connection that sends no HTTP request within the handshake timeout", async () => {
    const h = await startFanout({ options: { handshakeTimeoutMs: 300 } });
    const idle = await idleSocket(h.port);
    const started = Date.now();
    await isClosed(idle);
    // headersTimeout, checked every connectionsCheckingInterval (a quarter of the timeout here)
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("keeps session slots for sessions: hello-less connections do not take them", async () => {
    const h = await startFanout({ options: { maxConnections: 2 } });
    const first = await RawClient.live(h.url, hello());
    const waiting = await Promise.all([1, 2, 3, 4, 5].map(() => RawClient.connect(h.url, null)));
    const second = await RawClient.live(h.url, hello());
    await expectStillReceiving(h, first);
    await expectStillReceiving(h, second);
    const third = await RawClient.connect(h.url, hello());
    expect(await third.closed).toBe(CloseCode.tooManyConnections);
    for (const w of waiting) expect(w.closeCode).toBeUndefined();
  });

  it("caps pending connections per source address", async () => {
    const h = await startFanout({ options: { maxHandshakingPerSource: 3 } });
    const held = await Promise.all([1, 2, 3].map(() => idleSocket(h.port)));
    const fourth = await idleSocket(h.port);
    await isClosed(fourth);
    expect(await metricValue(h.registry, "tabby_admission_refused_total", { reason: "per-source" })).toBe(1);
    // Another source address (all of 127/8 is loopback) is not held back by the first one.
    const other = await RawClient.live(h.url, hello(), { localAddress: "127.0.0.2" });
    await expectStillReceiving(h, other);
    for (const s of held) expect(s.destroyed).toBe(false);
  });

  it("lets real agents in, and keeps them, while flooded with upgrade-less and hello-less connections", async () => {
    const h = await startFanout({
      options: { maxHandshakingConnections: 20, maxConnections: 100, handshakeTimeoutMs: 10_000 },
      authenticator: new PolicyAuthenticator({ isAnonymousAllowed: true }),
    });
    let isFlooding = true;
    const flood: (Socket | WebSocket)[] = [];
    onTestFinished(() => {
      isFlooding = false;
      for (const f of flood)
        if (f instanceof WebSocket) f.terminate();
        else f.destroy();
    });
    // Keep 60 idle attempts open (three times the pending cap), re-opening each one the server cuts.
    const keepOne = (kind: "tcp" | "ws"): void => {
      if (!isFlooding) return;
      if (kind === "tcp") {
        const s = connect(h.port, "127.0.0.1");
        s.on("error", () => undefined);
        s.once("close", () => keepOne(kind));
        flood.push(s);
      } else {
        const ws = new WebSocket(h.url);
        ws.on("error", () => undefined);
        ws.once("close", () => keepOne(kind));
        flood.push(ws);
      }
    };
    for (let i = 0; i < 30; i++) {
      keepOne("tcp");
      keepOne("ws");
    }
    await waitFor(() => flood.length > 60); // the pool is full and cutting

    const agents = Array.from({ length: 10 }, (_, i) =>
      makeClient({ servers: [h.url], view: "felix", clientName: `agent-${i}`, backoffInitialMs: 20 }),
    );
    for (const a of agents) a.start();
    await Promise.all(agents.map((a) => inSync(a, undefined, 15_000)));
    const probe = await RawClient.live(h.url, hello());
    await new Promise((resolve) => setTimeout(resolve, 500)); // the flood goes on
    await expectStillReceiving(h, probe);
    for (const a of agents) expect(a.status.state).toBe("in-sync");
    expect(
      await metricValue(h.registry, "tabby_admission_refused_total", { reason: "evicted" }),
    ).toBeGreaterThan(0);
    expect(h.server.status().views.felix.live).toBeGreaterThanOrEqual(11);
  });
});
