/**
 * A full mirror's resync skips decoding the values it holds byte for byte: scanEntryArray reads an entry
 * array's keys and value ranges exactly (or gives up), and a mirror fed through the skipping assembler
 * ends every snapshot and delta exactly as one that decodes everything, with the same updates.
 */
import { deflateRawSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeEntryArray, decodeValue, encodeValue } from "../../proto/codec.js";
import { scanEntryArray } from "../../proto/entry-scan.js";
import { assembleEntryArray, encodeEntry } from "../../proto/frame-builder.js";
import type { Entry, ResourceValue, SnapshotChunkMessage } from "../../proto/messages.js";
import { Mirror } from "../../src/client/mirror.js";
import { SnapshotAssembler } from "../../src/client/snapshot-assembler.js";

/** Values with every msgpack form the encoder writes: small and large ints, floats, long strings, nesting. */
const leaf = fc.oneof(
  fc.integer({ min: -40, max: 300 }),
  fc.integer(),
  fc.constantFrom(2 ** 40, -(2 ** 40), 0.5, -1.25e300, 65_536, -129),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 8 }),
  fc.constantFrom("x".repeat(40), "y".repeat(300), "z".repeat(70_000), "ä€😀"),
);
const valueArb: fc.Arbitrary<ResourceValue> = fc.dictionary(
  fc.string({ maxLength: 6 }),
  fc.oneof(
    leaf,
    fc.array(leaf, { maxLength: 20 }),
    fc.dictionary(fc.string({ maxLength: 4 }), leaf, { maxKeys: 20 }),
  ),
  { maxKeys: 5 },
);
const KEYS = ["IPPool/a", "IPPool/b", "WorkloadEndpoint/ns/c", "Node/d", "Profile/kns.e"];
const entryArb: fc.Arbitrary<Entry> = fc.record({
  k: fc.constantFrom(...KEYS),
  v: fc.oneof({ weight: 5, arbitrary: valueArb }, { weight: 1, arbitrary: fc.constant(null) }),
});

const payloadOf = (entries: readonly Entry[]): Buffer =>
  assembleEntryArray(entries.map((e) => encodeEntry(e)));

describe("scanEntryArray", () => {
  it("finds every entry's key and value bytes, as the decoder reads them", () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 20 }), (entries) => {
        const payload = payloadOf(entries);
        const scanned = scanEntryArray(payload);
        expect(scanned).toBeDefined();
        const decoded = decodeEntryArray(payload);
        expect(scanned?.map((s) => s.k)).toEqual(decoded.map((e) => e.k));
        for (const [i, s] of (scanned ?? []).entries()) {
          expect(s.isNil).toBe(decoded[i]?.v === null);
          expect(decodeValue(payload.subarray(s.valueStart, s.end))).toEqual(decoded[i]?.v);
          expect(decodeEntryArray(assembleEntryArray([payload.subarray(s.entryStart, s.end)]))).toEqual([
            decoded[i],
          ]);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("gives up, without throwing, on anything but the server's exact layout", () => {
    const good = payloadOf([{ k: "IPPool/a", v: { spec: { cidr: "10.0.0.0/16" } } }]);
    for (const payload of [
      Buffer.alloc(0),
      encodeValue({ k: "IPPool/a", v: {} }), // not an array
      encodeValue([{ v: {}, k: "IPPool/a" }]), // v first
      encodeValue([{ k: "IPPool/a", v: {}, x: 1 }]), // a third field
      encodeValue([{ k: "IPPool/a", v: "text" }]), // v not a map
      encodeValue([{ k: 7, v: {} }]), // k not a string
      Buffer.concat([good, Buffer.from([0xc0])]), // trailing bytes
      Buffer.from([0x91, 0x82, 0xa1, 0x6b, 0xa1, 0xff, 0xa1, 0x76, 0x80]), // a key that is not UTF-8
      Buffer.from([0x91, 0x82, 0xa1, 0x6b, 0xa1, 0x61, 0xa1, 0x76, 0x81, 0xa1, 0x78, 0xc1]), // 0xc1
    ]) {
      expect(scanEntryArray(payload), payload.toString("hex")).toBeUndefined();
    }
    // Every cut of a valid payload, and every one-byte corruption: undefined or a scan that the decoder
    // agrees with (never a throw, never a range past the end).
    fc.assert(
      fc.property(
        fc.array(entryArb, { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.nat(255),
        (entries, at, byte) => {
          const payload = payloadOf(entries);
          const cut = payload.subarray(0, at % payload.length);
          expect(scanEntryArray(cut)).toBeUndefined();
          const corrupt = Buffer.from(payload);
          corrupt[at % corrupt.length] = byte;
          const scanned = scanEntryArray(corrupt);
          for (const s of scanned ?? []) expect(s.end).toBeLessThanOrEqual(corrupt.length);
        },
      ),
      { numRuns: 500 },
    );
  });
});

/**
 * One snapshot of `entries` (last one of a key wins), as the server sends it: chunks of 3, compressed
 * except those whose bit is set in `plainMask` (a chunk may carry its entries as they are: no hashes).
 */
async function snapshot(mirror: Mirror, entries: readonly Entry[], isSkipping: boolean, plainMask = 0) {
  const chunks: SnapshotChunkMessage[] = [];
  for (let i = 0; i < entries.length; i += 3) {
    const index = chunks.length;
    const part = entries.slice(i, i + 3);
    chunks.push(
      (plainMask >> index) & 1
        ? { t: "snap-chunk", index, entries: [...part] }
        : { t: "snap-chunk", index, z: deflateRawSync(payloadOf(part)) },
    );
  }
  const assembler = new SnapshotAssembler(
    { t: "snap-begin", revision: 1, count: entries.length, chunks: chunks.length },
    { isDecoding: true, maxInflatedBytes: 1 << 24, ...(isSkipping && { held: mirror }) },
  );
  for (const chunk of chunks) await assembler.add(chunk);
  const result = assembler.finish(1);
  return mirror.replace(result.entries ?? new Map(), result.hashes);
}

const state = (m: Mirror): Record<string, unknown> =>
  Object.fromEntries(
    m
      .keys()
      .sort()
      .map((k) => [k, m.get(k)]),
  );

describe("a mirror that skips the values it holds", () => {
  it("ends every snapshot and delta as one that decodes everything, with the same updates", async () => {
    // Values drawn from a small pool, so that a key goes back to bytes it had before (the case a stale
    // hash would get wrong), with keys few enough to collide across snapshots and deltas.
    const run = fc.array(valueArb, { minLength: 1, maxLength: 3 }).chain((pool) => {
      const pooled = fc.record({
        k: fc.constantFrom(...KEYS.slice(0, 3)),
        v: fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...pool) },
          { weight: 1, arbitrary: fc.constant(null) },
        ),
      });
      const step = fc.oneof(
        {
          weight: 3,
          arbitrary: fc.record({ snapshot: fc.array(pooled, { maxLength: 6 }), plainMask: fc.nat(3) }),
        },
        { weight: 2, arbitrary: fc.record({ deltas: fc.array(pooled, { maxLength: 3 }) }) },
        // The same snapshot again: what a resync after a server restart sends when nothing changed.
        { weight: 2, arbitrary: fc.constant({ again: true as const }) },
      );
      return fc.array(step, { maxLength: 12 });
    });
    await fc.assert(
      fc.asyncProperty(run, async (steps) => {
        const skipping = new Mirror();
        const decoding = new Mirror();
        let last: readonly Entry[] = [];
        for (const s of steps) {
          if ("deltas" in s) {
            // A frame holds at most one entry per key.
            const byKey = new Map(s.deltas.map((e) => [e.k, e]));
            expect(skipping.apply([...byKey.values()])).toEqual(decoding.apply([...byKey.values()]));
          } else {
            const entries = "snapshot" in s ? s.snapshot.filter((e) => e.v !== null) : last;
            const mask = "snapshot" in s ? s.plainMask : 0;
            last = entries;
            expect(await snapshot(skipping, entries, true, mask)).toEqual(
              await snapshot(decoding, entries, false, mask),
            );
          }
          expect(state(skipping)).toEqual(state(decoding));
        }
      }),
      { numRuns: 500 },
    );
  });

  it("decodes only the values it does not hold (a held one keeps its object)", async () => {
    const mirror = new Mirror();
    const a = { spec: { cidr: "10.0.0.0/16" } };
    const b = { spec: { cidr: "10.1.0.0/16" } };
    await snapshot(
      mirror,
      [
        { k: "IPPool/a", v: a },
        { k: "IPPool/b", v: b },
      ],
      true,
    );
    const heldA = mirror.get("IPPool/a");
    const updates = await snapshot(
      mirror,
      [
        { k: "IPPool/a", v: a },
        { k: "IPPool/b", v: { spec: { cidr: "10.2.0.0/16" } } },
      ],
      true,
    );
    expect(updates.map((u) => u.key)).toEqual(["IPPool/b"]);
    expect(mirror.get("IPPool/a")).toBe(heldA);
    // After a delta the held bytes are not the value's any more: the next snapshot decodes it again.
    mirror.apply([{ k: "IPPool/a", v: { spec: { cidr: "10.9.0.0/16" } } }]);
    expect(mirror.heldIfSame("IPPool/a", "anything")).toBeUndefined();
    const back = await snapshot(
      mirror,
      [
        { k: "IPPool/a", v: a },
        { k: "IPPool/b", v: b },
      ],
      true,
    );
    expect(back.map((u) => [u.key, u.value])).toEqual([
      ["IPPool/a", a],
      ["IPPool/b", b],
    ]);
  });
});
