import type * as Zlib from "node:zlib";
import { describe, expect, it, vi } from "vitest";

// Compression that fails as often as asked (as it would when zlib cannot allocate), then works again.
const failures = vi.hoisted(() => ({ remaining: 0 }));
vi.mock("node:zlib", async (importOriginal) => {
  const real = await importOriginal<typeof Zlib>();
  return {
    ...real,
    deflateRaw: (buffer: Buffer, callback: (err: Error | null, result?: Buffer) => void) => {
      if (failures.remaining > 0) {
        failures.remaining--;
        process.nextTick(callback, new Error("zlib: out of memory"));
        return;
      }
      real.deflateRaw(buffer, callback);
    },
  };
});

const pino = (await import("pino")).default;
const { decodeServerMessage } = await import("../../proto/codec.js");
const { FanoutMetrics } = await import("../../src/server/fanout/metrics.js");
const { SnapshotSender } = await import("../../src/server/fanout/snapshot-sender.js");
const { Hub } = await import("../../src/snapshot/hub.js");

describe("snapshot chunks whose compression fails", () => {
  it("go out uncompressed, and the next build compresses them again instead of reusing the failure", async () => {
    const hub = new Hub({ snapshotChunkBytes: 1024 });
    for (let i = 0; i < 200; i++) {
      hub.upsert(`IPPool/pool-${i}`, { metadata: { name: `pool-${i}` }, spec: { cidr: `10.0.${i}.0/24` } });
    }
    hub.flush();
    const metrics = FanoutMetrics.standalone();
    const warnings: unknown[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => warnings.push(JSON.parse(line)) });
    const sender = new SnapshotSender({ logger, metrics, highWaterBytes: 1 << 20, head: () => 0 });

    const first = hub.snapshot("felix", 0, 0);
    expect(first.chunkCount).toBeGreaterThan(3);
    failures.remaining = 1; // the first chunk's compression fails
    const frames = (await Promise.all(sender.compressedChunks(first))).map((f) => decodeServerMessage(f));
    expect(frames[0]).toMatchObject({ t: "snap-chunk", index: 0 });
    expect(frames[0]).not.toHaveProperty("z");
    const plain = frames[0];
    expect(plain?.t === "snap-chunk" ? plain.entries : undefined).toHaveLength(
      first.chunkEntries[0]?.length ?? -1,
    );
    expect(frames.slice(1).every((m) => m.t === "snap-chunk" && m.z !== undefined)).toBe(true);
    expect(warnings).toEqual([expect.objectContaining({ view: "felix", index: 0 })]);

    // A change in the last chunk only: every other chunk is reused, the failed one is compressed anew.
    hub.upsert("IPPool/pool-199", { metadata: { name: "pool-199" }, spec: { cidr: "10.9.9.0/24" } });
    hub.flush();
    const second = hub.snapshot("felix", 10_000, 0);
    const before = { ...metrics.counts.snapshotChunks.felix };
    const again = (await Promise.all(sender.compressedChunks(second))).map((f) => decodeServerMessage(f));
    expect(again.every((m) => m.t === "snap-chunk" && m.z !== undefined)).toBe(true);
    const after = metrics.counts.snapshotChunks.felix;
    expect(after.compressed - before.compressed).toBeGreaterThanOrEqual(2); // the failed chunk and the changed one
    expect(after.reused - before.reused).toBe(second.chunkCount - (after.compressed - before.compressed));
  });
});
