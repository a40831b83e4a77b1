import { inflateRawSync } from "node:zlib";
import fc from "fast-check";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { decodeEntryArray, decodeServerMessage } from "../../proto/codec.js";
import { assembleEntryArray } from "../../proto/frame-builder.js";
import type { ResourceValue } from "../../proto/messages.js";
import { FanoutMetrics } from "../../src/server/fanout/metrics.js";
import { SnapshotSender } from "../../src/server/fanout/snapshot-sender.js";
import { Hub, isChunkEnd } from "../../src/snapshot/hub.js";
import type { EncodedSnapshot } from "../../src/snapshot/hub.js";

const TARGET = 4096;

function sender(): { sender: SnapshotSender; metrics: FanoutMetrics } {
  const metrics = FanoutMetrics.standalone();
  const s = new SnapshotSender({
    logger: pino({ level: "silent" }),
    metrics,
    highWaterBytes: 1 << 20,
    head: () => 0,
  });
  return { sender: s, metrics };
}

const pool = (i: number, v: number): ResourceValue => ({
  metadata: { name: `pool-${i}`, resourceVersion: `${i}-${v}` },
  spec: { cidr: `10.${i >> 8}.${i & 255}.0/24`, blockSize: 26, v, pad: "x".repeat((i * 7) % 80) },
});

/** Every chunk's frame, inflated: [index, decoded entries]. */
async function inflated(s: SnapshotSender, snapshot: EncodedSnapshot): Promise<[number, unknown[]][]> {
  const frames = await Promise.all(s.compressedChunks(snapshot));
  return frames.map((f) => {
    const m = decodeServerMessage(f);
    if (m.t !== "snap-chunk" || m.z === undefined) throw new Error(`not a compressed chunk: ${m.t}`);
    return [m.index, decodeEntryArray(inflateRawSync(m.z))];
  });
}

describe("snapshot chunks", () => {
  it("end by content: between half and twice the target, each entry with a chance its size gives", () => {
    expect(isChunkEnd("k", 10, TARGET / 2 - 1, TARGET)).toBe(false);
    expect(isChunkEnd("k", 10, 2 * TARGET, TARGET)).toBe(true);
    expect(isChunkEnd("k", TARGET / 2, TARGET / 2, TARGET)).toBe(true);
    // The same key and size decide the same way wherever the chunk started.
    const keys = Array.from({ length: 2000 }, (_, i) => `IPPool/p${i}`);
    const ends = keys.filter((k) => isChunkEnd(k, 100, TARGET, TARGET));
    expect(ends).toEqual(keys.filter((k) => isChunkEnd(k, 100, TARGET + 1000, TARGET)));
    // About one entry in (target/2 ÷ 100) = 20.48 ends a chunk.
    expect(ends.length).toBeGreaterThan(2000 / 20.48 / 2);
    expect(ends.length).toBeLessThan((2000 / 20.48) * 2);
  });

  it("keep their boundaries when one entry changes, and the sender compresses only what changed", async () => {
    const hub = new Hub({ snapshotChunkBytes: TARGET });
    for (let i = 0; i < 2000; i++) hub.upsert(`IPPool/pool-${i}`, pool(i, 0));
    hub.flush();
    const first = hub.snapshot("felix", 0, 0);
    const sizes = first.chunkEntries.map((c) => c.reduce((n, e) => n + e.byteLength, 0));
    const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    expect(mean).toBeGreaterThan(TARGET / 2);
    expect(mean).toBeLessThan(2 * TARGET);
    expect(Math.max(...sizes)).toBeLessThan(2 * TARGET + 400);
    const { sender: s, metrics } = sender();
    const before = await inflated(s, first);
    expect(metrics.counts.snapshotChunks.felix).toEqual({ compressed: first.chunkCount, reused: 0 });

    hub.upsert("IPPool/pool-1000", pool(1000, 1));
    hub.flush();
    const second = hub.snapshot("felix", 10_000, 0);
    expect(second).not.toBe(first);
    const after = await inflated(s, second);
    const { compressed, reused } = metrics.counts.snapshotChunks.felix;
    expect(compressed - first.chunkCount).toBeLessThanOrEqual(2);
    expect(reused).toBe(second.chunkCount - (compressed - first.chunkCount));
    expect(reused).toBeGreaterThan(second.chunkCount - 3);
    // Every frame carries its own index and exactly the entries the hub put in that chunk.
    expect(after.map(([index]) => index)).toEqual(second.chunkEntries.map((_, i) => i));
    for (const [index, entries] of after) {
      expect(entries).toEqual(decodeEntryArray(assembleEntryArray(second.chunkEntries[index] ?? [])));
    }
    const changed = after.flatMap(([, e]) => e).find((e) => (e as { k: string }).k === "IPPool/pool-1000");
    expect(changed).toMatchObject({ v: { spec: { v: 1 } } });
    expect(before.flatMap(([, e]) => e)).toHaveLength(2000);
  });

  it("inflate to exactly the view after any changes and rebuilds (reused chunks never go stale)", async () => {
    const op = fc.record({
      i: fc.integer({ min: 0, max: 299 }),
      kind: fc.constantFrom("upsert", "upsert", "upsert", "delete"),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(op, { maxLength: 40 }), { minLength: 1, maxLength: 6 }),
        async (rounds) => {
          const hub = new Hub({ snapshotChunkBytes: 1024 });
          const { sender: s } = sender();
          const live = new Map<string, ResourceValue>();
          for (let i = 0; i < 300; i++) {
            hub.upsert(`IPPool/pool-${i}`, pool(i, 0));
            live.set(`IPPool/pool-${i}`, pool(i, 0));
          }
          hub.flush();
          let version = 1;
          let now = 0;
          for (const round of rounds) {
            for (const { i, kind } of round) {
              const key = `IPPool/pool-${i}`;
              if (kind === "delete") {
                hub.delete(key);
                live.delete(key);
              } else {
                const v = pool(i, version++);
                hub.upsert(key, v);
                live.set(key, v);
              }
            }
            hub.flush();
            now += 10_000;
            const snapshot = hub.snapshot("felix", now, 0);
            const got = (await inflated(s, snapshot)).flatMap(([, e]) => e) as { k: string; v: unknown }[];
            expect(new Map(got.map((e) => [e.k, e.v]))).toEqual(live);
            expect(got).toHaveLength(live.size);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
