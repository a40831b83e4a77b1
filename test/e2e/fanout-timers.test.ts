import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { CloseCode } from "../../proto/close-codes.js";
import {
  expectStillReceiving,
  hello,
  metricValue,
  RawClient,
  resource,
  startFanout,
  waitFor,
} from "./fanout-harness.js";

// Timers are fake (the server's ping interval, handshake, flush and drain timers); sockets and the
// harness's own timeouts are real. The server's clock is injected.
let now = 1_000_000;
const clock = (): number => now;

async function advance(ms: number): Promise<void> {
  now += ms;
  await vi.advanceTimersByTimeAsync(ms);
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("fan-out timers", () => {
  it("pings every pingIntervalMs and closes a session silent for pongTimeoutMs with keepaliveTimeout", async () => {
    const h = await startFanout({ clock, options: { pingIntervalMs: 10_000, pongTimeoutMs: 60_000 } });
    const answering = await RawClient.live(h.url, hello({ view: "felix" }));
    const silent = await RawClient.live(h.url, hello({ view: "tunnel-ip-allocation" }));
    silent.isAnsweringPings = false;

    for (let tick = 1; tick <= 6; tick++) {
      await advance(10_000);
      await silent.until(() => silent.count("ping") === tick);
      await answering.until(() => answering.count("ping") === tick);
      await waitFor(() => h.server.status().counters.pongs === tick);
      expect(silent.messages("ping").at(-1)).toEqual({ t: "ping", ts: now });
      expect(h.server.status().counters.dropped.keepaliveTimeout).toBeUndefined();
    }
    await advance(10_000);
    expect(await silent.closed).toBe(CloseCode.keepaliveTimeout);
    expect(h.server.status().counters.dropped).toEqual({ keepaliveTimeout: 1 });
    await answering.until(() => answering.count("ping") === 7);
    expect(answering.closeCode).toBeUndefined();
    await waitFor(() => h.server.status().counters.pongs === 7);
    expect(
      await metricValue(h.registry, "tabby_ping_latency_seconds", {}, "tabby_ping_latency_seconds_count"),
    ).toBe(7);
  });

  it("closes a connection that sends no hello within handshakeTimeoutMs with handshakeTimeout", async () => {
    const h = await startFanout({ clock, options: { handshakeTimeoutMs: 10_000 } });
    const observer = await RawClient.live(h.url, hello({ view: "felix" }));
    const mute = await RawClient.connect(h.url, null);
    await waitFor(() => h.server.status().connections.active === 2);
    await advance(9_999);
    expect(h.server.status().counters.dropped.handshakeTimeout).toBeUndefined();
    await expectStillReceiving(h, observer);
    await advance(1);
    expect(h.server.status().counters.dropped.handshakeTimeout).toBe(1);
    expect(await mute.closed).toBe(CloseCode.handshakeTimeout);
    await expectStillReceiving(h, observer);
    expect(observer.closeCode).toBeUndefined();
  });

  it("drains by closing sessions one at a time over drainMs, after readiness goes false", async () => {
    const h = await startFanout({ clock });
    const clients = await Promise.all(
      Array.from({ length: 5 }, () => RawClient.live(h.url, hello({ view: "felix" }))),
    );
    expect(h.server.isReady()).toBe(true);
    let isDrained = false;
    const drained = h.server.close({ drainMs: 1000 }).then(() => (isDrained = true));
    expect(h.server.isReady()).toBe(false);
    expect(h.server.notReadyReason()).toBe("draining");
    expect(h.server.status().draining).toBe(true);

    const closedCount = (): number => clients.filter((c) => c.closeCode !== undefined).length;
    const shuttingDown = (): number => h.server.status().counters.dropped.shuttingDown ?? 0;
    for (let step = 1; step <= 5; step++) {
      await waitFor(() => closedCount() === step);
      expect(shuttingDown()).toBe(step);
      if (step === 5) break;
      await advance(199);
      expect(shuttingDown()).toBe(step);
      expect(isDrained).toBe(false);
      await advance(1);
    }
    await drained;
    expect(clients.map((c) => c.closeCode)).toEqual(Array(5).fill(CloseCode.shuttingDown));
    expect(h.server.status().connections.active).toBe(0);

    // The listener is closed: no new connections.
    const refused = new WebSocket(h.url);
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => refused.once("error", resolve));
    expect(error.code).toBe("ECONNREFUSED");
  });

  it("batches the changes of one flush window into one frame per view, coalesced per key", async () => {
    const h = await startFanout({ clock, options: { flushWindowMs: 10 } });
    const client = await RawClient.live(h.url, hello({ view: "felix" }));
    h.server.upsert("IPPool/a", resource("IPPool", "a", { v: 1 }));
    await advance(5);
    const b = resource("IPPool", "b");
    h.server.upsert("IPPool/b", b);
    h.server.upsert("IPPool/a", resource("IPPool", "a", { v: 2 }));
    h.server.upsert("IPPool/b", { ...b });
    h.server.delete("IPPool/absent");
    expect(h.hub.pendingCount).toBe(3);
    await advance(4);
    expect(h.hub.pendingCount).toBe(3);
    await advance(1);
    expect(h.hub.pendingCount).toBe(0);
    await client.until(() => client.count("deltas") === 1);
    const deltas = client.messages("deltas")[0];
    expect(deltas?.t === "deltas" && deltas.changes.map((c) => [c.k, c.v?.spec])).toEqual([
      ["IPPool/b", {}],
      ["IPPool/a", { v: 2 }],
    ]);
    expect(await metricValue(h.registry, "tabby_updates_total", { view: "felix" })).toBe(3);
    expect(await metricValue(h.registry, "tabby_updates_skipped_total")).toBe(2);
  });

  it("destroy() terminates every session now and is idempotent", async () => {
    const h = await startFanout({ clock });
    const a = await RawClient.live(h.url, hello({ view: "felix" }));
    const b = await RawClient.connect(h.url, null);
    const first = h.server.destroy();
    expect(h.server.destroy()).toBe(first);
    expect(h.server.close()).toBe(first);
    await first;
    expect(await a.closed).toBe(1006);
    expect(await b.closed).toBe(1006);
    expect(h.server.isReady()).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("close() is graceful with a deadline: a peer that never answers the close is cut after closeGraceMs", async () => {
    const h = await startFanout({ clock, options: { closeGraceMs: 5000 } });
    const polite = await RawClient.live(h.url, hello({ view: "felix" }));
    const deaf = await RawClient.live(h.url, hello({ view: "felix" }));
    deaf.ws.pause(); // reads nothing more: never sees the close frame, never answers it
    let isClosed = false;
    const closing = h.server.close().then(() => (isClosed = true));
    expect(h.server.close()).toBe(h.server.close());
    expect(await polite.closed).toBe(CloseCode.shuttingDown);
    await advance(4999);
    expect(isClosed).toBe(false);
    expect(h.server.status().connections.active).toBe(1);
    await advance(1);
    await closing;
    expect(h.server.status().connections.active).toBe(0);
    deaf.ws.resume();
    await deaf.closed; // the server cut it: the close frame it had queued may still be read first
    expect(vi.getTimerCount()).toBe(0);
  });

  it("destroy() during close() wins: both resolve at once, without waiting for the drain", async () => {
    const h = await startFanout({ clock });
    const clients = await Promise.all(
      Array.from({ length: 4 }, () => RawClient.live(h.url, hello({ view: "felix" }))),
    );
    const closing = h.server.close({ drainMs: 60_000 });
    await waitFor(() => clients[0]!.closeCode !== undefined);
    expect(clients.filter((c) => c.closeCode !== undefined)).toHaveLength(1);
    const destroying = h.server.destroy(new Error("second signal"));
    expect(h.server.close({ drainMs: 60_000 })).toBe(destroying);
    await Promise.all([closing, destroying]); // no timer advanced: neither waits for the 60 s drain
    expect(await Promise.all(clients.map((c) => c.closed))).toEqual([
      CloseCode.shuttingDown,
      1006,
      1006,
      1006,
    ]);
    expect(h.server.status().connections.active).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("close() refuses a bad drainMs with a coded error naming the field", async () => {
    const h = await startFanout({ clock });
    await expect(h.server.close({ drainMs: -1 })).rejects.toMatchObject({
      code: "ERR_FANOUT_INVALID_OPTION",
      message: expect.stringContaining("drainMs") as string,
    });
    expect(h.server.isReady()).toBe(true);
  });
});
