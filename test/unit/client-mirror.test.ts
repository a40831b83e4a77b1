import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ResourceValue } from "../../proto/messages.js";
import { freezeValue, Mirror, MirrorPatchError } from "../../src/client/mirror.js";

const key = fc
  .tuple(fc.constantFrom("IPPool", "Node", "NetworkPolicy"), fc.constantFrom("a", "b", "c", "d", "e", "f"))
  .map(([kind, name]) => (kind === "NetworkPolicy" ? `${kind}/ns/${name}` : `${kind}/${name}`));
const value: fc.Arbitrary<ResourceValue> = fc.record({
  spec: fc.record({
    n: fc.integer({ min: 0, max: 2 }),
    tags: fc.array(fc.constantFrom("x", "y"), { maxLength: 2 }),
  }),
});
const state = fc.dictionary(key, value, { maxKeys: 12 });

function load(entries: Record<string, ResourceValue>): Mirror {
  const m = new Mirror();
  m.replace(new Map(Object.entries(entries)));
  return m;
}

describe("Mirror", () => {
  it("replace() yields exactly the diff: applied to the old state it gives the new one, with no no-ops", () => {
    fc.assert(
      fc.property(state, state, (before, after) => {
        const mirror = load(before);
        const updates = mirror.replace(new Map(Object.entries(after)));
        // The mirror now holds `after`.
        expect(Object.fromEntries(mirror.keys().map((k) => [k, mirror.get(k)]))).toEqual(after);
        // Each update is real, and the keys that did not change produced none.
        const changed = new Set<string>();
        for (const u of updates) {
          expect(changed.has(u.key)).toBe(false);
          changed.add(u.key);
          expect(u.kind).toBe(u.key.split("/")[0]);
          if (u.value === null) expect(before[u.key] !== undefined && after[u.key] === undefined).toBe(true);
          else expect(u.value).toEqual(after[u.key]);
          expect(before[u.key]).not.toEqual(after[u.key]);
        }
        for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
          const isSame = JSON.stringify(before[k]) === JSON.stringify(after[k]);
          expect(changed.has(k)).toBe(!isSame);
        }
        // Replaying the same state is silent.
        expect(mirror.replace(new Map(Object.entries(after)))).toEqual([]);
      }),
    );
  });

  it("apply() skips deletes of absent keys and identical upserts, and keeps the kind index", () => {
    const mirror = load({ "IPPool/a": { spec: { cidr: "10.0.0.0/16", mode: "x" } } });
    expect(
      mirror.apply([
        { k: "IPPool/zzz", v: null },
        { k: "IPPool/a", v: { spec: { mode: "x", cidr: "10.0.0.0/16" } } },
        { k: "NetworkPolicy/ns/p", v: { spec: {} } },
      ]),
    ).toEqual([{ key: "NetworkPolicy/ns/p", kind: "NetworkPolicy", value: { spec: {} } }]);
    expect(mirror.list("NetworkPolicy")).toEqual([{ spec: {} }]);
    expect(mirror.apply([{ k: "NetworkPolicy/ns/p", v: null }])).toEqual([
      { key: "NetworkPolicy/ns/p", kind: "NetworkPolicy", value: null },
    ]);
    expect(mirror.list("NetworkPolicy")).toEqual([]);
    expect(mirror.kinds()).toEqual(["IPPool"]);
    expect(mirror.size).toBe(1);
  });

  it("apply() is all or nothing: a JSON Patch that does not apply throws MirrorPatchError, nothing changed", () => {
    const held = { metadata: { resourceVersion: "3" }, spec: { l: ["a", "b"] } };
    const mirror = load({ "IPPool/a": held, "IPPool/b": { spec: { n: 1 } } });
    expect(() =>
      mirror.apply([
        { k: "IPPool/b", v: null },
        {
          k: "IPPool/a",
          j: [
            { op: "remove", path: "/spec/l/0" },
            { op: "remove", path: "/spec/l/5" },
          ],
          b: "3",
        },
      ]),
    ).toThrow(MirrorPatchError);
    expect(mirror.get("IPPool/a")).toBe(held);
    expect(mirror.get("IPPool/b")).toEqual({ spec: { n: 1 } });
    expect(
      mirror.apply([{ k: "IPPool/a", j: [{ op: "add", path: "/spec/l/1", value: "z" }], b: "3" }]),
    ).toEqual([
      {
        key: "IPPool/a",
        kind: "IPPool",
        value: { metadata: { resourceVersion: "3" }, spec: { l: ["a", "z", "b"] } },
      },
    ]);
    expect(held.spec.l).toEqual(["a", "b"]);
  });

  it("hold() then settle() yields the net diff from before the hold to now, whatever happened between", () => {
    fc.assert(
      fc.property(state, fc.array(state, { minLength: 1, maxLength: 4 }), (before, steps) => {
        const mirror = load(before);
        mirror.hold();
        expect(mirror.isHolding).toBe(true);
        for (const step of steps) mirror.replace(new Map(Object.entries(step)));
        const after = steps[steps.length - 1] ?? {};
        const updates = mirror.settle();
        expect(mirror.isHolding).toBe(false);
        // Exactly the keys whose value differs between `before` and the final state, each once.
        const expected = Object.keys({ ...before, ...after })
          .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
          .sort();
        expect(updates.map((u) => u.key).sort()).toEqual(expected);
        for (const u of updates) expect(u.value).toEqual(after[u.key] ?? null);
        // Replaying the updates on `before` gives the final state.
        const replay = load(before);
        replay.apply(updates.map((u) => ({ k: u.key, v: u.value })));
        expect(Object.fromEntries(replay.keys().map((k) => [k, replay.get(k)]))).toEqual(after);
        // The hold is over: later changes are reported one by one again, and a second settle is empty.
        expect(mirror.settle()).toEqual([]);
      }),
    );
  });

  it("a value that goes back and forth during a hold is not reported", () => {
    const mirror = load({ "IPPool/a": { spec: { n: 1, tags: [] } } });
    mirror.hold();
    mirror.replace(new Map([["IPPool/a", { spec: { n: 0, tags: [] } }]]));
    mirror.apply([
      { k: "IPPool/a", v: { spec: { n: 1, tags: [] } } },
      { k: "Node/b", v: null },
    ]);
    expect(mirror.settle()).toEqual([]);
    expect(mirror.get("IPPool/a")).toEqual({ spec: { n: 1, tags: [] } });
  });

  it("holds every value deeply frozen, from a snapshot, an entry or a patch: the application cannot change one", () => {
    const mirror = load({ "IPPool/a": { metadata: { resourceVersion: "1" }, spec: { l: [{ n: 1 }] } } });
    const [added] = mirror.apply([{ k: "Node/n", v: { spec: { addrs: [{ ip: "10.0.0.1" }] } } }]);
    const [patched] = mirror.apply([
      { k: "IPPool/a", p: { metadata: { resourceVersion: "2" }, x: [{ y: 1 }] }, b: "1" },
    ]);
    for (const value of [mirror.get("IPPool/a"), mirror.get("Node/n"), added?.value, patched?.value]) {
      expect(isDeeplyFrozen(value)).toBe(true);
    }
    const pool = mirror.get("IPPool/a") as { spec: { l: { n: number }[] }; x: unknown[] };
    // ES modules are strict: a write to a frozen object throws.
    expect(() => {
      pool.spec.l[0]!.n = 5;
    }).toThrow(TypeError);
    expect(() => pool.x.push(1)).toThrow(TypeError);
    // So the held value is still the server's, and a later patch builds on it.
    mirror.apply([{ k: "IPPool/a", p: { metadata: { resourceVersion: "3" }, z: 1 }, b: "2" }]);
    expect(mirror.get("IPPool/a")).toEqual({
      metadata: { resourceVersion: "3" },
      spec: { l: [{ n: 1 }] },
      x: [{ y: 1 }],
      z: 1,
    });
  });

  it("freezeValue leaves binary data and primitives as they are and stops at frozen parts", () => {
    const bin = new Uint8Array([1, 2]);
    const shared = Object.freeze({ a: { b: 1 } });
    const value = freezeValue({ bin, shared, n: 1, s: "x", none: null, list: [1, [2]] });
    expect(Object.isFrozen(value)).toBe(true);
    expect(Object.isFrozen(value.list[1])).toBe(true);
    expect(Object.isFrozen(bin)).toBe(false);
    bin[0] = 9;
    expect(value.bin[0]).toBe(9);
    // A frozen object is taken to be frozen all the way down (the mirror freezes whole values).
    expect(Object.isFrozen(shared.a)).toBe(false);
    expect(freezeValue(7)).toBe(7);
    expect(freezeValue(null)).toBe(null);
  });
});

function isDeeplyFrozen(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeeplyFrozen);
}
