/**
 * A session whose snapshot streams for longer than the catch-up limit's worth of changes (a slow agent, or
 * any session of a storm under churn) is caught up when its snapshot ends, with patches against the
 * snapshot's values, and not closed as too slow to be sent another snapshot that would take as long.
 */
import { describe, expect, it } from "vitest";
import { isPatchEntry } from "../../proto/messages.js";
import { FEATURES } from "../../proto/version.js";
import {
  expectedView,
  hello,
  metricValue,
  RawClient,
  resource,
  socketOf,
  startFanout,
} from "./fanout-harness.js";

describe("the catch-up after a snapshot that took long to stream", () => {
  it("brings the session to the head past the catch-up limit, with patches, instead of closing it", async () => {
    const h = await startFanout({ hub: { snapshotChunkBytes: 64 * 1024 } });
    // 1200 small pools and 80 large ones: a 20 MB snapshot that a paused reader cannot take at once, and a
    // catch-up limit of 1000 changes (a quarter of the view is less).
    const small = (i: number, x: number) => resource("IPPool", `s${i}`, { cidr: `10.${i % 250}.0.0/16`, x });
    for (let i = 0; i < 1200; i++) h.server.upsert(`IPPool/s${i}`, small(i, 0));
    for (let i = 0; i < 80; i++) {
      h.server.upsert(
        `IPPool/big${i}`,
        resource("IPPool", `big${i}`, { blob: String(i % 10).repeat(256 * 1024) }),
      );
    }
    h.server.flushNow();
    const client = await RawClient.connect(h.url, hello({ view: "felix", features: [FEATURES.patchDeltas] }));
    await client.until(() => client.count("snap-begin") > 0);
    socketOf(client).pause();
    const streaming = () => metricValue(h.registry, "tabby_snapshot_sends", { state: "streaming" });
    for (let tries = 0; (await streaming()) !== 1; tries++) {
      if (tries > 200) throw new Error("the snapshot never started streaming");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // 1100 changes while the snapshot is still being sent: past the limit.
    for (let i = 0; i < 1100; i++) {
      h.server.upsert(`IPPool/s${i}`, small(i, 1));
      if (i % 100 === 99) h.server.flushNow();
    }
    h.server.flushNow();
    // Still streaming: the reader has not taken it yet.
    expect(await streaming()).toBe(1);
    socketOf(client).resume();
    await client.until(() => client.count("status") > 0, 20_000);
    expect(client.closeCode).toBeUndefined();
    expect(client.violations).toEqual([]);
    expect(client.revision).toBe(h.hub.revision);
    expect(client.mirror).toEqual(expectedView(h.hub, "felix"));
    // The catch-up came as patches on the snapshot's values.
    const changes = client.messages("deltas").flatMap((m) => (m.t === "deltas" ? m.changes : []));
    expect(changes.filter(isPatchEntry).length).toBe(1100);
    expect(h.server.status().counters.dropped.tooSlow ?? 0).toBe(0);
  });
});
