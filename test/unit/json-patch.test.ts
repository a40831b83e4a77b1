import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeValue, encodeValue } from "../../proto/codec.js";
import { applyJsonPatch, applyPatchEntry, createJsonPatch, JsonPatchError } from "../../proto/json-patch.js";
import type { JsonPatchOp } from "../../proto/json-patch.js";

type Obj = Record<string, unknown>;

const slice = (ready: boolean[]): Obj => ({
  metadata: {
    name: "api-x",
    namespace: "app",
    resourceVersion: "7",
    labels: { "kubernetes.io/service-name": "api" },
  },
  spec: {
    addressType: "IPv4",
    endpoints: ready.map((r, i) => ({
      addresses: [`10.0.0.${i}`],
      conditions: { ready: r, serving: r, terminating: false },
      targetRef: { kind: "Pod", name: `api-${i}`, uid: `uid-${i}` },
    })),
  },
});

/** JSON-like values as they come off the wire: keys that need escaping, nulls, nested arrays. */
const keyArb = fc.constantFrom("a", "b", "c", "a/b", "~x", "~1", "", "__proto__", "0", "-");
const leafArb = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom("x", "y", true, false, null));
const valueArb = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leafArb,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(keyArb, tie("value"), { maxKeys: 4 }),
  ),
})).value;
const objArb = fc.dictionary(keyArb, valueArb, { maxKeys: 5 });

/** An object through msgpack, as a client holds it (keys such as `__proto__` stay own data properties). */
const wire = (o: Obj): Obj => decodeValue(encodeValue(o)) as Obj;

describe("JSON Patch (RFC 6902)", () => {
  it("turns any base into any next, through the wire, without touching the base", () => {
    fc.assert(
      fc.property(objArb, objArb, (a, b) => {
        const base = wire(a);
        const next = wire(b);
        const before = encodeValue(base);
        const ops = createJsonPatch(base, next);
        expect(ops).toBeDefined();
        const patched = applyJsonPatch(base, wire({ ops }).ops as JsonPatchOp[]);
        // Member order is not part of a JSON value: a patched object keeps its members' old order.
        expect(patched).toStrictEqual(next);
        expect(encodeValue(base)).toEqual(before);
      }),
      { numRuns: 2000 },
    );
  });

  it("says one endpoint's change in a few small operations, not the whole array", () => {
    const base = slice([true, true, true, true, true, true]);
    const next = slice([true, true, true, false, true, true]);
    expect(createJsonPatch(base, next)).toEqual([
      { op: "replace", path: "/spec/endpoints/3/conditions/ready", value: false },
      { op: "replace", path: "/spec/endpoints/3/conditions/serving", value: false },
    ]);
    expect(applyJsonPatch(base, createJsonPatch(base, next) ?? [])).toEqual(next);
  });

  it("inserts or removes one element in the middle with one operation", () => {
    const base = { list: [1, 2, 3, 4, 5] };
    expect(createJsonPatch(base, { list: [1, 2, 9, 3, 4, 5] })).toEqual([
      { op: "add", path: "/list/2", value: 9 },
    ]);
    expect(createJsonPatch(base, { list: [1, 2, 4, 5] })).toEqual([{ op: "remove", path: "/list/2" }]);
    const shrunk = createJsonPatch(base, { list: [1, 5] }) ?? [];
    expect(shrunk).toEqual([
      { op: "remove", path: "/list/1" },
      { op: "remove", path: "/list/1" },
      { op: "remove", path: "/list/1" },
    ]);
    expect(applyJsonPatch(base, shrunk)).toEqual({ list: [1, 5] });
  });

  it("escapes / and ~ in member names", () => {
    const ops = createJsonPatch({ m: { "a/b": 1, "c~d": 1 } }, { m: { "a/b": 2, "c~d": 2 } });
    expect(ops).toEqual([
      { op: "replace", path: "/m/a~1b", value: 2 },
      { op: "replace", path: "/m/c~0d", value: 2 },
    ]);
  });

  it("has no patch when next holds undefined where they differ, and an empty one when equal", () => {
    expect(createJsonPatch({ a: 1 }, { a: undefined })).toBeUndefined();
    expect(createJsonPatch({ a: [1] }, { a: [1, undefined] })).toBeUndefined();
    expect(createJsonPatch({ a: { b: [1, { c: 2 }] } }, { a: { b: [1, { c: 2 }] } })).toEqual([]);
  });

  it("sets __proto__ as a member, never as the prototype", () => {
    const out = applyJsonPatch({}, [{ op: "add", path: "/__proto__", value: { polluted: true } }]);
    expect(Object.hasOwn(out, "__proto__")).toBe(true);
    expect(({} as Obj).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
  });

  it.each<[string, JsonPatchOp]>([
    ["the root", { op: "replace", path: "", value: {} }],
    ["a path without a leading slash", { op: "replace", path: "a", value: 1 }],
    ["a member that is not there (replace)", { op: "replace", path: "/nope", value: 1 }],
    ["a member that is not there (remove)", { op: "remove", path: "/nope" }],
    ["a parent that is not there", { op: "add", path: "/nope/x", value: 1 }],
    ["a path through a number", { op: "add", path: "/n/x", value: 1 }],
    ["an index past the end", { op: "replace", path: "/list/3", value: 1 }],
    ["an add past the end", { op: "add", path: "/list/4", value: 1 }],
    ["an index with a leading zero", { op: "replace", path: "/list/01", value: 1 }],
    ["a name where an index belongs", { op: "remove", path: "/list/x" }],
    ["a bad escape", { op: "replace", path: "/m/a~2", value: 1 }],
  ])("refuses %s with JsonPatchError and leaves the value alone", (_what, op) => {
    const target = { n: 1, list: [1, 2, 3], m: { "a~2": 0 } };
    const copy = structuredClone(target);
    expect(() => applyJsonPatch(target, [{ op: "replace", path: "/n", value: 5 }, op])).toThrow(
      JsonPatchError,
    );
    expect(target).toEqual(copy);
  });

  it("applies add at - (the end) and replaces an existing member on add", () => {
    expect(
      applyJsonPatch({ l: [1], a: 1 }, [
        { op: "add", path: "/l/-", value: 2 },
        { op: "add", path: "/a", value: 3 },
      ]),
    ).toEqual({ l: [1, 2], a: 3 });
  });

  it("never modifies an operation's value when a later operation patches inside it", () => {
    const value = { x: 1, l: [1, 2] };
    const out = applyJsonPatch({ a: 0 }, [
      { op: "add", path: "/b", value },
      { op: "replace", path: "/b/x", value: 2 },
      { op: "remove", path: "/b/l/0" },
      { op: "add", path: "/b/l/-", value: 3 },
    ]);
    expect(out).toEqual({ a: 0, b: { x: 2, l: [2, 3] } });
    expect(value).toEqual({ x: 1, l: [1, 2] });
  });

  it("applyPatchEntry applies either form", () => {
    const held = { metadata: { resourceVersion: "1" }, spec: { l: [1, 2] } };
    expect(applyPatchEntry(held, { k: "K/a", b: "1", j: [{ op: "remove", path: "/spec/l/0" }] })).toEqual({
      metadata: { resourceVersion: "1" },
      spec: { l: [2] },
    });
    expect(applyPatchEntry(held, { k: "K/a", b: "1", p: { spec: { l: [3] } } })).toEqual({
      metadata: { resourceVersion: "1" },
      spec: { l: [3] },
    });
  });
});
