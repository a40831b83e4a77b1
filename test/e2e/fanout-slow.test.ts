import { performance } from "node:perf_hooks";
import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import {
  expectedView,
  hello,
  RawClient,
  resource,
  socketOf,
  startFanout,
  waitFor,
} from "./fanout-harness.js";
import type { Harness } from "./fanout-harness.js";

const BIG = 256 * 1024;

/** One batch: a broadcast tick for everyone, and a big node-scoped object for the "slow" node. */
function pushBatch(h: Harness, seq: number): void {
  h.server.upsert("IPPool/tick", resource("IPPool", "tick", { seq }));
  h.server.upsert(
    "BlockAffinity/slow-big",
    resource("BlockAffinity", "slow-big", { node: "slow", blob: String(seq % 10).repeat(BIG) }),
  );
  h.server.flushNow();
}

function tickOf(client: RawClient): unknown {
  return (client.mirror.get("IPPool/tick")?.spec as { seq?: number } | undefined)?.seq;
}

/** Pushes a batch and returns the slowest delivery time (ms) among `clients`. */
async function timedBatch(h: Harness, clients: readonly RawClient[], seq: number): Promise<number> {
  const start = performance.now();
  pushBatch(h, seq);
  await Promise.all(clients.map((c) => c.until(() => tickOf(c) === seq)));
  return Math.max(...clients.map((c) => (c.received.at(-1)?.atMs ?? start) - start));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

describe("fan-out slow sessions", () => {
  it("closes a session that stops reading with tooSlow while 50 others keep their latency", async () => {
    const h = await startFanout({
      options: { softBufferedBytes: 256 * 1024, maxLagMs: 1500, closeGraceMs: 30_000 },
    });
    const fast = await Promise.all(
      Array.from({ length: 50 }, (_, i) => RawClient.live(h.url, hello({ view: "bgp", node: `f${i}` }))),
    );
    const slow = await RawClient.live(h.url, hello({ view: "bgp", node: "slow" }));
    let seq = 0;
    const baseline: number[] = [];
    for (let i = 0; i < 20; i++) baseline.push(await timedBatch(h, fast, ++seq));
    await slow.until(() => tickOf(slow) === seq);

    socketOf(slow).pause();
    const stalled: number[] = [];
    while (h.server.status().counters.dropped.tooSlow === undefined) {
      if (seq > 2000) throw new Error("the stalled session was never closed");
      stalled.push(await timedBatch(h, fast, ++seq));
    }
    const report = h.server.status();
    expect(report.counters.laggingStarted).toBe(1);
    expect(report.counters.dropped).toEqual({ tooSlow: 1 });
    expect(report.views.bgp.lagging).toBe(0);
    expect(fast.every((c) => c.closeCode === undefined && c.violations.length === 0)).toBe(true);
    // The others' delivery time did not degrade while one session was stuck.
    console.info(
      `delivery to 50 sessions: baseline median ${median(baseline).toFixed(2)} ms, ` +
        `while stalled median ${median(stalled).toFixed(2)} ms, max ${Math.max(...stalled).toFixed(2)} ms ` +
        `over ${stalled.length} batches`,
    );
    expect(median(stalled)).toBeLessThan(Math.max(3 * median(baseline), 25));
    expect(Math.max(...stalled)).toBeLessThan(1000);

    // Once it reads again, it finds the close code at the end of its buffered data.
    socketOf(slow).resume();
    expect(await slow.closed).toBe(CloseCode.tooSlow);
    expect(slow.messages("error").at(-1)).toMatchObject({ code: CloseCode.tooSlow });
  });

  it("catches a lagging session up with coalesced changes once its socket drains", async () => {
    const h = await startFanout({ options: { softBufferedBytes: 64 * 1024, maxLagMs: 60_000 } });
    const slow = await RawClient.live(h.url, hello({ view: "bgp", node: "slow" }));
    h.server.upsert("IPPool/x", resource("IPPool", "x", { v: "first" }));
    h.server.flushNow();
    await slow.until(() => slow.mirror.has("IPPool/x"));

    socketOf(slow).pause();
    let seq = 0;
    while (h.server.status().views.bgp.lagging === 0) {
      if (seq > 500) throw new Error("the stalled session never lagged");
      pushBatch(h, ++seq);
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const v of ["second", "third", "last"]) {
      h.server.upsert("IPPool/x", resource("IPPool", "x", { v }));
      h.server.flushNow();
    }
    socketOf(slow).resume();
    await slow.until(() => isDeepStrictEqual(slow.mirror, expectedView(h.hub, "bgp", "slow")));
    expect(slow.closeCode).toBeUndefined();
    expect(slow.violations).toEqual([]);
    expect(h.server.status().counters.catchUps).toBe(1);
    const values = slow
      .messages("deltas")
      .flatMap((m) => (m.t === "deltas" ? m.changes : []))
      .filter((c) => c.k === "IPPool/x")
      .map((c) => (c.v?.spec as { v: string }).v);
    expect(values).toEqual(["first", "last"]);
    // And it is live again.
    h.server.upsert("IPPool/after", resource("IPPool", "after"));
    h.server.flushNow();
    await slow.until(() => slow.mirror.has("IPPool/after"));
  });

  it("closes a lagging session with tooSlow when its missed changes have left the log", async () => {
    const h = await startFanout({
      hub: { maxLogEntries: 50 },
      options: { softBufferedBytes: 64 * 1024, maxLagMs: 60_000, closeGraceMs: 30_000 },
    });
    const slow = await RawClient.live(h.url, hello({ view: "bgp", node: "slow" }));
    const other = await RawClient.live(h.url, hello({ view: "bgp", node: "other" }));
    socketOf(slow).pause();
    let seq = 0;
    while (h.server.status().views.bgp.lagging === 0) {
      if (seq > 500) throw new Error("the stalled session never lagged");
      pushBatch(h, ++seq);
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let i = 0; i < 60; i++) h.server.upsert(`Node/n${i}`, resource("Node", `n${i}`));
    h.server.flushNow();
    socketOf(slow).resume();
    expect(await slow.closed).toBe(CloseCode.tooSlow);
    await waitFor(() => h.server.status().counters.dropped.tooSlow === 1);
    await other.until(() => other.mirror.has("Node/n59"));
    expect(other.closeCode).toBeUndefined();
  });
});

describe("fan-out snapshot backpressure", () => {
  it("streams a large snapshot without queueing it all in one socket's buffer", async () => {
    const highWater = 256 * 1024;
    const chunk = 64 * 1024;
    const h = await startFanout({
      hub: { snapshotChunkBytes: chunk },
      options: { snapshotHighWaterBytes: highWater },
    });
    for (let i = 0; i < 240; i++) {
      h.server.upsert(
        `WorkloadEndpoint/ns/pod-${i}`,
        resource("WorkloadEndpoint", `pod-${i}`, { blob: String(i % 10).repeat(50 * 1024) }, "ns"),
      );
    }
    h.server.flushNow();
    const client = await RawClient.connect(h.url, null);
    socketOf(client).pause();
    client.send(hello({ view: "felix" }));
    await waitFor(() => h.server.status().lag.bufferedBytes.max > highWater);
    // The sender now waits for the socket to drain instead of queueing the other ~8 MB.
    expect(h.server.status().lag.bufferedBytes.max).toBeLessThan(highWater + 2 * chunk);
    expect(client.count("snap-end")).toBe(0);
    socketOf(client).resume();
    await client.until(() => client.count("status") === 1);
    expect(client.mirror).toEqual(expectedView(h.hub, "felix"));
    expect(client.violations).toEqual([]);
  });

  it("reuses a snapshot still being sent (a storm) past snapshotReuseMs, up to snapshotReuseMaxMs", async () => {
    let now = 1_000_000;
    const h = await startFanout({
      clock: () => now,
      hub: { snapshotChunkBytes: 64 * 1024 },
      options: { snapshotHighWaterBytes: 256 * 1024, snapshotReuseMs: 1000, snapshotReuseMaxMs: 20_000 },
    });
    const blob = (i: number, gen: number) =>
      resource("WorkloadEndpoint", `pod-${i}`, { gen, blob: String(i % 10).repeat(50 * 1024) }, "ns");
    for (let i = 0; i < 120; i++) h.server.upsert(`WorkloadEndpoint/ns/pod-${i}`, blob(i, 0));
    h.server.flushNow();
    const first = await RawClient.connect(h.url, null);
    socketOf(first).pause(); // its snapshot stays in flight
    first.send(hello({ view: "felix" }));
    await waitFor(() => h.server.status().views.felix.snapshotsGenerated === 1);

    // 5 s later (past snapshotReuseMs), with changes since: the in-flight snapshot is reused and caught up.
    now += 5000;
    for (let i = 0; i < 3; i++) h.server.upsert(`WorkloadEndpoint/ns/pod-${i}`, blob(i, 1));
    h.server.flushNow();
    const second = await RawClient.live(h.url, hello({ view: "felix" }));
    expect(h.server.status().views.felix.snapshotsReused).toBe(1);
    expect(h.server.status().views.felix.snapshotsGenerated).toBe(1);
    expect(second.mirror).toEqual(expectedView(h.hub, "felix"));

    socketOf(first).resume();
    await first.until(() => first.count("status") === 1);
    expect(first.mirror).toEqual(expectedView(h.hub, "felix"));
    // Nothing in flight any more: past snapshotReuseMs, with a change since, a new one is built.
    now += 5000;
    h.server.upsert("WorkloadEndpoint/ns/pod-9", blob(9, 2));
    h.server.flushNow();
    const third = await RawClient.live(h.url, hello({ view: "felix" }));
    expect(h.server.status().views.felix.snapshotsGenerated).toBe(2);
    expect(third.mirror).toEqual(expectedView(h.hub, "felix"));
    for (const c of [first, second, third]) expect(c.violations).toEqual([]);
  });
});
