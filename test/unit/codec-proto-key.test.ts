import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeValue, encodeValue } from "../../proto/codec.js";
import { onlyPlainObjects } from "../support/plain-objects.js";

/** JSON values whose objects may hold `__proto__` (and `__proto_`) as an own key, as JSON.parse makes them. */
const json = fc
  .jsonValue({ maxDepth: 4 })
  .chain((v) =>
    fc
      .dictionary(fc.constantFrom("__proto__", "__proto_", "a"), fc.constant(v), { minKeys: 1, maxKeys: 3 })
      .map((o) => ({ top: o, list: [o, { annotations: o }] })),
  )
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown);

describe("the codec and the key __proto__", () => {
  it("decodes what it encoded exactly, a key __proto__ as an own key, never as a prototype", () => {
    fc.assert(
      fc.property(json, (value) => {
        const decoded = decodeValue(encodeValue(value));
        expect(decoded).toStrictEqual(value);
        expect(JSON.stringify(decoded)).toBe(JSON.stringify(value));
        expect(onlyPlainObjects(decoded)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("keeps a Calico rule's annotation keyed __proto__ apart from one keyed __proto_", () => {
    const rule = JSON.parse(
      '{"action":"Allow","metadata":{"annotations":{"__proto__":"a","__proto_":"b"}}}',
    ) as { metadata: { annotations: Record<string, string> } };
    const decoded = decodeValue(encodeValue(rule)) as typeof rule;
    expect(Object.hasOwn(decoded.metadata.annotations, "__proto__")).toBe(true);
    expect(Object.keys(decoded.metadata.annotations)).toEqual(["__proto__", "__proto_"]);
    expect(decoded.metadata.annotations.__proto_).toBe("b");
    expect(Object.getOwnPropertyDescriptor(decoded.metadata.annotations, "__proto__")?.value).toBe("a");
    expect(({} as Record<string, unknown>).a).toBeUndefined();
    // At the top level too, and beside compressed bytes that happen to hold the name.
    const top = decodeValue(encodeValue(JSON.parse('{"__proto__":1,"z":"x"}'))) as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(top, "__proto__")?.value).toBe(1);
    expect(Object.keys(top)).toEqual(["__proto__", "z"]);
    const envelope = { t: "snap-chunk", index: 0, z: Buffer.from("..__proto__..") };
    expect(decodeValue(encodeValue(envelope))).toStrictEqual(envelope);
  });

  it("reads a value that only mentions __proto__ in a string as the usual path does", () => {
    const value = { note: "__proto__", n: [1, { x: "__proto__" }], bin: new Uint8Array([1, 2]) };
    expect(decodeValue(encodeValue(value))).toStrictEqual({ ...value, bin: Buffer.from([1, 2]) });
  });
});
