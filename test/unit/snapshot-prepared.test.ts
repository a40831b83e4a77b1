/**
 * Upserts of prepared values (the ingest worker's: encoded, hashed and fingerprinted off the main thread)
 * make the same changes, the same store and the same frames, byte for byte, as plain upserts of the values.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { encodeValue } from "../../proto/codec.js";
import type { ResourceValue } from "../../proto/messages.js";
import { sameResource } from "../../src/snapshot/deep-equal.js";
import { DeltaEncoding } from "../../src/snapshot/delta-frames.js";
import type { DeltaFrames } from "../../src/snapshot/delta-frames.js";
import { Hub } from "../../src/snapshot/hub.js";
import type { ViewBatch } from "../../src/snapshot/hub.js";
import { prepareValue, sameAsFingerprint } from "../../src/snapshot/prepared.js";

const KEYS = [
  "WorkloadEndpoint/ns1/a",
  "WorkloadEndpoint/ns1/b",
  "Node/a",
  "IPPool/a",
  "BlockAffinity/a",
  "CalicoNodeStatus/b",
] as const;

type Op =
  | {
      op: "upsert";
      key: string;
      node: string;
      x: number;
      tag: string | null;
      bumpRv: boolean;
      isPlainOnBoth: boolean;
    }
  | { op: "delete"; key: string }
  | { op: "flush" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("upsert" as const),
      key: fc.constantFrom(...KEYS),
      node: fc.constantFrom("node-a", "node-b"),
      x: fc.integer({ min: 0, max: 2 }),
      tag: fc.constantFrom("red", null),
      // false: the same resourceVersion again (an identical encoding).
      bumpRv: fc.boolean(),
      // A value set by a plain upsert on both hubs (the datastore's static entries): no fingerprint held.
      isPlainOnBoth: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), key: fc.constantFrom(...KEYS) }) },
  { weight: 2, arbitrary: fc.constant({ op: "flush" as const }) },
);

function value(key: string, node: string, x: number, tag: string | null, rv: number): ResourceValue {
  return {
    metadata: { name: key, resourceVersion: String(rv), labels: { app: "web" } },
    spec: { node, x, ...(tag !== null ? { tag } : { tag: null }), ports: [80, 443] },
  };
}

const ENCODINGS = [
  0,
  DeltaEncoding.patch,
  DeltaEncoding.deflate,
  DeltaEncoding.patch | DeltaEncoding.deflate,
];

function frameBytes(frames: DeltaFrames | null): string[] {
  return frames === null ? [] : ENCODINGS.map((e) => frames.frame(e).toString("hex"));
}

function batchBytes(batches: readonly ViewBatch[]): unknown {
  return batches.map((b) => ({
    view: b.view,
    from: b.from,
    to: b.to,
    shared: frameBytes(b.shared),
    byNode: [...b.byNode].map(([node, f]) => [node, frameBytes(f)]),
  }));
}

describe("Hub.upsertPrepared", () => {
  it("matches plain upserts: same changes, store entries and frames in every encoding", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const plain = new Hub();
        const prepared = new Hub();
        let rv = 1;
        for (const op of ops) {
          if (op.op === "upsert") {
            if (op.bumpRv) rv++;
            const v = value(op.key, op.node, op.x, op.tag, rv);
            const isChange = plain.upsert(op.key, v);
            const isPreparedChange = op.isPlainOnBoth
              ? prepared.upsert(op.key, v)
              : prepared.upsertPrepared(op.key, prepareValue(op.key, v));
            expect(isPreparedChange).toBe(isChange);
          } else if (op.op === "delete") {
            expect(prepared.delete(op.key)).toBe(plain.delete(op.key));
          } else {
            expect(batchBytes(prepared.flush())).toEqual(batchBytes(plain.flush()));
          }
          expect(prepared.store.revision).toBe(plain.store.revision);
          expect(prepared.store.skipped).toBe(plain.store.skipped);
          for (const key of KEYS) {
            const a = plain.store.get(key);
            const b = prepared.store.get(key);
            expect(b === undefined).toBe(a === undefined);
            if (a === undefined || b === undefined) continue;
            expect(b.encoded.equals(a.encoded)).toBe(true);
            expect([b.revision, b.node, b.hash]).toEqual([a.revision, a.node, a.hash]);
          }
        }
        expect(batchBytes(prepared.flush())).toEqual(batchBytes(plain.flush()));
      }),
      { numRuns: 300 },
    );
  });

  it("fingerprints ignore the resourceVersion and nothing else", () => {
    const fp = (v: ResourceValue): string => sameAsFingerprint("Node/a", v);
    const a = value("Node/a", "node-a", 1, "red", 1);
    expect(fp(value("Node/a", "node-a", 1, "red", 2))).toBe(fp(a));
    expect(fp(value("Node/a", "node-a", 2, "red", 1))).not.toBe(fp(a));
    expect(sameAsFingerprint("Node/b", a)).not.toBe(fp(a));
    // A value that loses its resourceVersion counts as changed (API objects always have one).
    expect(fp({ ...a, metadata: { name: "Node/a", labels: { app: "web" } } })).not.toBe(fp(a));
    // The resourceVersion's bytes also in a label (the entry is encoded again): still only it is ignored.
    const labelled = (rv: string, label: string): ResourceValue => ({
      metadata: { name: "a", resourceVersion: rv, labels: { resourceVersion: label } },
    });
    expect(fp(labelled("7", "7"))).toBe(fp(labelled("8", "7")));
    expect(fp(labelled("7", "7"))).not.toBe(fp(labelled("7", "8")));
  });

  it("fingerprints are SHA-1 of the entry encoded with the resourceVersion blanked, and equal only when sameResource", () => {
    const str = fc.constantFrom("", "1", "7", "resourceVersion", "web", "ä");
    const valueArb: fc.Arbitrary<ResourceValue> = fc.record({
      metadata: fc.record(
        {
          name: str,
          resourceVersion: fc.oneof(str, fc.integer({ min: 0, max: 9 })),
          labels: fc.dictionary(str, str, { maxKeys: 3 }),
        },
        { requiredKeys: ["name"] },
      ),
      spec: fc.dictionary(str, fc.oneof(str, fc.integer({ min: 0, max: 9 }), fc.constant(null)), {
        maxKeys: 3,
      }),
    });
    const reference = (key: string, v: ResourceValue): string => {
      const meta = v.metadata as Record<string, unknown>;
      const blanked = "resourceVersion" in meta ? { ...v, metadata: { ...meta, resourceVersion: "" } } : v;
      return createHash("sha1")
        .update(encodeValue({ k: key, v: blanked }))
        .digest("base64");
    };
    fc.assert(
      fc.property(valueArb, valueArb, (a, b) => {
        const key = "WorkloadEndpoint/ns1/a";
        expect(sameAsFingerprint(key, a)).toBe(reference(key, a));
        expect(prepareValue(key, a).sameAs).toBe(reference(key, a));
        // Equal fingerprints are never wrong (the other way, fields in another order differ: harmless).
        if (sameAsFingerprint(key, a) === sameAsFingerprint(key, b)) expect(sameResource(a, b)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
