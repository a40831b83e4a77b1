import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeDeltaEntries, decodeServerMessage } from "../../proto/codec.js";
import { deflateDeltas, inflateDeltas } from "../../proto/delta-compression.js";
import { DELTA_DICTIONARY, DELTA_DICTIONARY_SHA256 } from "../../proto/delta-dictionary.js";
import { ProtoErrorCode } from "../../proto/errors.js";
import { assembleCompressedDeltas, assembleEntryArray, encodeEntry } from "../../proto/frame-builder.js";
import { applyMergePatch, createMergePatch } from "../../proto/merge-patch.js";
import { encodeValue } from "../../proto/codec.js";
import { onlyPlainObjects } from "../support/plain-objects.js";

// JSON-like values with nulls and undefined in places, as converters can produce; a key `__proto__` is an
// own key of a plain object, as JSON.parse makes it (fast-check's own objects have no prototype).
const leaf = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean(), fc.constant(null));
const json = fc
  .letrec((tie) => ({
    value: fc.oneof({ depthSize: "small" }, leaf, fc.array(tie("value"), { maxLength: 3 }), tie("object")),
    object: fc.dictionary(fc.constantFrom("a", "b", "c", "__proto__", "metadata", "spec"), tie("value"), {
      maxKeys: 4,
    }),
  }))
  .object.map((o) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>);

describe("merge patches (RFC 7386)", () => {
  it("apply(base, create(base, next)) equals next whenever a patch is made, and never mutates base", () => {
    fc.assert(
      fc.property(json, json, (base, next) => {
        const frozen = structuredClone(base);
        const patch = createMergePatch(base, next);
        if (patch === undefined) return;
        expect(onlyPlainObjects(patch)).toBe(true);
        const patched = applyMergePatch(base, patch);
        expect(patched).toStrictEqual(next);
        expect(onlyPlainObjects(patched)).toBe(true);
        expect(base).toStrictEqual(frozen);
      }),
      { numRuns: 2000 },
    );
  });

  it("makes a patch for every change that has no null or undefined where the values differ", () => {
    fc.assert(
      fc.property(json, json, (base, next) => {
        const clean = JSON.parse(JSON.stringify(next, (_k, v: unknown) => (v === null ? "x" : v))) as Record<
          string,
          unknown
        >;
        expect(createMergePatch(base, clean)).toBeDefined();
      }),
      { numRuns: 1000 },
    );
  });

  it("refuses a change to null (a merge patch would read it as a removal)", () => {
    expect(createMergePatch({ a: 1 }, { a: null })).toBeUndefined();
    expect(createMergePatch({ a: { b: 1 } }, { a: { b: null } })).toBeUndefined();
    expect(createMergePatch({ a: 1 }, { a: 1, b: undefined })).toBeUndefined();
    expect(createMergePatch({ a: null }, {})).toEqual({ a: null });
    expect(createMergePatch({ a: [1, 2] }, { a: [1, null] })).toEqual({ a: [1, null] });
  });
});

describe("deflate-deltas", () => {
  it("pins the preset dictionary: it is part of the protocol", () => {
    expect(createHash("sha256").update(DELTA_DICTIONARY).digest("hex")).toBe(DELTA_DICTIONARY_SHA256);
    expect(DELTA_DICTIONARY_SHA256).toBe("cf6bd290827a5a63118a61a2e468c49859ccedb34f6c2425eacc3f45d02b14c3");
  });

  it("round-trips a frame of full values, deletes and patches", () => {
    const entries = [
      encodeEntry({ k: "IPPool/a", v: { spec: { cidr: "10.0.0.0/16" } } }),
      encodeEntry({ k: "IPPool/b", v: null }),
      encodeEntry({ k: "WorkloadEndpoint/ns/p", p: { metadata: { resourceVersion: "9" } }, b: "8" }),
    ];
    const frame = assembleCompressedDeltas(4, 7, 3, deflateDeltas(assembleEntryArray(entries)));
    const message = decodeServerMessage(frame);
    expect(message).toMatchObject({ t: "deltas", from: 4, to: 7, n: 3, changes: [] });
    if (message.t !== "deltas" || message.z === undefined) throw new Error("not compressed");
    expect(decodeDeltaEntries(inflateDeltas(message.z, 1 << 20))).toEqual([
      { k: "IPPool/a", v: { spec: { cidr: "10.0.0.0/16" } } },
      { k: "IPPool/b", v: null },
      { k: "WorkloadEndpoint/ns/p", p: { metadata: { resourceVersion: "9" } }, b: "8" },
    ]);
  });

  it("refuses a z that inflates past the limit, or is not deflate, with coded errors", () => {
    const big = deflateDeltas(assembleEntryArray([encodeEntry({ k: "X/a", v: { s: "x".repeat(100_000) } })]));
    expect(big.byteLength).toBeLessThan(2000);
    expect(() => inflateDeltas(big, 10_000)).toThrow(
      expect.objectContaining({ code: ProtoErrorCode.tooLarge }),
    );
    expect(() => inflateDeltas(Buffer.from([1, 2, 3]), 10_000)).toThrow(
      expect.objectContaining({ code: ProtoErrorCode.badFrame }),
    );
  });

  it("refuses malformed patch entries", () => {
    const bad = (e: unknown) => () => decodeDeltaEntries(encodeValue([e]));
    expect(bad({ k: "X/a", p: { a: 1 } })).toThrow(
      expect.objectContaining({ code: ProtoErrorCode.badMessage }),
    );
    expect(bad({ k: "X/a", p: [1], b: "1" })).toThrow(
      expect.objectContaining({ code: ProtoErrorCode.badMessage }),
    );
    expect(bad({ k: "X/a", v: 3 })).toThrow(expect.objectContaining({ code: ProtoErrorCode.badMessage }));
  });

  it("reads JSON Patch entries and refuses malformed ones", () => {
    const ok = {
      k: "X/a",
      j: [
        { op: "remove", path: "/spec/l/0" },
        { op: "add", path: "/a~1b", value: null },
      ],
      b: "1",
    };
    expect(decodeDeltaEntries(encodeValue([ok]))).toEqual([ok]);
    const refused = [
      { k: "X/a", j: [{ op: "remove", path: "/a" }] }, // no b
      { k: "X/a", j: { op: "remove", path: "/a" }, b: "1" }, // not an array
      { k: "X/a", j: [{ op: "move", from: "/a", path: "/b" }], b: "1" }, // move is not accepted
      { k: "X/a", j: [{ op: "test", path: "/a", value: 1 }], b: "1" },
      { k: "X/a", j: [{ op: "add", path: "/a" }], b: "1" }, // add without value
      { k: "X/a", j: [{ op: "replace", path: "", value: {} }], b: "1" }, // the root
      { k: "X/a", j: [{ op: "remove", path: `/${"x".repeat(5000)}` }], b: "1" }, // path too long
      { k: "X/a", j: Array.from({ length: 10_001 }, () => ({ op: "remove", path: "/a" })), b: "1" },
      { k: "X/a", j: [], p: { a: 1 }, b: "1" }, // both forms
    ];
    for (const e of refused) {
      expect(() => decodeDeltaEntries(encodeValue([e])), JSON.stringify(e).slice(0, 80)).toThrow(
        expect.objectContaining({ code: ProtoErrorCode.badMessage }),
      );
    }
  });

  it("compresses a realistic single change well below its msgpack size", () => {
    const v = {
      kind: "WorkloadEndpoint",
      apiVersion: "projectcalico.org/v3",
      metadata: {
        name: "api-7d9f-x2x9q",
        namespace: "app-03",
        resourceVersion: "28311",
        labels: { app: "api" },
      },
      spec: { orchestrator: "k8s", node: "node-0042", endpoint: "eth0", profiles: ["kns.app-03"] },
    };
    const entry = encodeEntry({ k: "WorkloadEndpoint/app-03/api-7d9f-x2x9q", v });
    expect(deflateDeltas(assembleEntryArray([entry])).byteLength).toBeLessThan(entry.byteLength / 2);
  });
});
