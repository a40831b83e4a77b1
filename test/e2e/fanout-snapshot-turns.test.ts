import type { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import {
  expectedView,
  hello,
  metricValue,
  RawClient,
  resource,
  startFanout,
  waitFor,
} from "./fanout-harness.js";

describe("snapshot send turns (fan-out server)", () => {
  it("a session waiting for its turn behind a stalled one gets a snapshot built when its turn comes, under churn", async () => {
    const h = await startFanout({
      hub: { snapshotChunkBytes: 16 * 1024 },
      options: {
        snapshotSendConcurrency: 1,
        snapshotReuseMs: 0,
        snapshotReuseMaxMs: 0,
        snapshotHighWaterBytes: 64 * 1024,
        flushWindowMs: 20,
      },
    });
    // About 8 MB of snapshot: more than the kernel buffers a reader that does not read.
    const pad = "x".repeat(2000);
    for (let i = 0; i < 4000; i++) h.server.upsert(`IPPool/p${i}`, resource("IPPool", `p${i}`, { i, pad }));
    h.server.flushNow();

    const stalled = await RawClient.connect(h.url, hello({ view: "felix" }));
    (stalled.ws as unknown as { _socket: Socket })._socket.pause();
    await waitFor(() => h.server.status().connections.active >= 1);
    const waiting = await RawClient.connect(h.url, hello({ view: "felix" }));
    await waiting.until(() => waiting.welcome !== undefined);
    expect(waiting.count("snap-begin")).toBe(0);

    // Churn while it waits: changes are pending (not yet flushed) most of the time when its turn comes,
    // and a build needs them applied first.
    let n = 0;
    const churn = setInterval(() => {
      h.server.upsert(`IPPool/p${n % 50}`, resource("IPPool", `p${n % 50}`, { n, pad }));
      n++;
    }, 1);
    try {
      // The stalled session gives its turn up after a second; the waiting one streams and goes live.
      await waiting.until(() => waiting.count("status") > 0, 20_000);
    } finally {
      clearInterval(churn);
    }
    h.server.flushNow();
    const head = h.hub.revision;
    await waiting.until(() => waiting.revision === head);
    expect(waiting.closeCode).toBeUndefined();
    expect(waiting.violations).toEqual([]);
    expect(Object.fromEntries(waiting.mirror)).toEqual(Object.fromEntries(expectedView(h.hub, "felix")));
    // Its snapshot was built at its turn, after the stalled one's: newer than the first build.
    const begins = waiting.messages("snap-begin");
    expect(begins).toHaveLength(1);
    expect(await metricValue(h.registry, "tabby_snapshot_send_stalls_total", { view: "felix" })).toBe(1);
    expect(await metricValue(h.registry, "tabby_snapshots_generated_total", { view: "felix" })).toBe(2);

    // The stalled one reads again: it gets its whole (older) snapshot, then catches up to the same state.
    (stalled.ws as unknown as { _socket: Socket })._socket.resume();
    await stalled.until(() => stalled.revision === head, 20_000);
    expect(stalled.closeCode).toBeUndefined();
    expect(stalled.violations).toEqual([]);
    expect(Object.fromEntries(stalled.mirror)).toEqual(Object.fromEntries(expectedView(h.hub, "felix")));
  });
});
