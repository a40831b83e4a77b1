import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeMessage } from "../../proto/codec.js";
import { assembleDeltas, encodeEntry } from "../../proto/frame-builder.js";
import type { Entry } from "../../proto/messages.js";
import { ClientErrorCode, ClientOptionsError, TabbyClient } from "../../src/client/index.js";
import { skimDeltas } from "../../src/client/delta-skimmer.js";

const valueArb = fc.oneof(
  fc.constant(null),
  fc.dictionary(
    fc.string({ maxLength: 12 }),
    fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((j) => JSON.parse(JSON.stringify(j)) as unknown),
      fc.uint8Array({ maxLength: 300 }),
      fc.double(),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(Number),
      fc.string({ maxLength: 300 }),
    ),
    { maxKeys: 20 },
  ),
);
const entryArb: fc.Arbitrary<Entry> = fc.record({ k: fc.string({ maxLength: 60 }), v: valueArb });
const revisionArb = fc.oneof(fc.nat(200), fc.nat(), fc.maxSafeNat());

describe("skimDeltas", () => {
  it("reads from, to and the change count of any deltas frame, however it was encoded", () => {
    fc.assert(
      fc.property(revisionArb, revisionArb, fc.array(entryArb, { maxLength: 40 }), (from, to, changes) => {
        const want = { from, to, count: changes.length };
        expect(skimDeltas(encodeMessage({ t: "deltas", from, to, changes }))).toEqual(want);
        expect(skimDeltas(assembleDeltas(from, to, changes.map(encodeEntry)))).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it("answers undefined for other messages and for broken frames", () => {
    expect(skimDeltas(encodeMessage({ t: "status", state: "in-sync", since: 1 }))).toBeUndefined();
    expect(
      skimDeltas(encodeMessage({ t: "snap-chunk", index: 0, z: new Uint8Array([1, 2, 3]) })),
    ).toBeUndefined();
    expect(skimDeltas(encodeMessage({ t: "ping", ts: 5 }))).toBeUndefined();
    expect(skimDeltas(new Uint8Array([]))).toBeUndefined();
    expect(skimDeltas(new Uint8Array([0xc1]))).toBeUndefined();
    // `changes` before another field is walked: a frame cut anywhere is refused.
    const walked = encodeMessage({
      t: "deltas",
      changes: [{ k: "A/a", v: { x: "y".repeat(50) } }],
      from: 1,
      to: 2,
    });
    expect(skimDeltas(walked)).toEqual({ from: 1, to: 2, count: 1 });
    fc.assert(
      fc.property(fc.nat(walked.byteLength - 1), (cut) => {
        expect(skimDeltas(walked.subarray(0, cut))).toBeUndefined();
      }),
    );
    expect(skimDeltas(Buffer.concat([walked, Buffer.from([0])]))).toBeUndefined();
    // `changes` last (as the frame builder writes it): the array is not walked, its entries not checked.
    const built = assembleDeltas(1, 2, [encodeEntry({ k: "A/a", v: { x: "y".repeat(50) } })]);
    const header = built.indexOf(Buffer.from("changes")) + "changes".length + 1;
    expect(skimDeltas(built.subarray(0, header))).toEqual({ from: 1, to: 2, count: 1 });
    expect(skimDeltas(built.subarray(0, header - 1))).toBeUndefined();
  });

  it("is an option of lite clients only", () => {
    const err = (() => {
      try {
        return new TabbyClient({ servers: ["ws://127.0.0.1:1"], view: "felix", decodeDeltas: false });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ClientOptionsError);
    expect((err as ClientOptionsError).code).toBe(ClientErrorCode.options);
    expect((err as ClientOptionsError).field).toBe("decodeDeltas");
    const lite = new TabbyClient({
      servers: ["ws://127.0.0.1:1"],
      view: "felix",
      mirror: false,
      decodeDeltas: false,
    });
    expect(lite.size).toBe(0);
    return lite.close();
  });
});
