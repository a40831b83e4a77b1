import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SimErrorCode } from "../../src/sim/errors.js";
import { jsonPatch, mergePatch } from "../../src/sim/objects.js";
import { builtinResources, ResourceRegistry } from "../../src/sim/resources.js";
import { ObjectStore } from "../../src/sim/store.js";

function makeStore(historyLimit = 10_000): {
  store: ObjectStore;
  registry: ResourceRegistry;
  pods: ReturnType<ResourceRegistry["get"]>;
  events: string[];
} {
  const registry = new ResourceRegistry(builtinResources("v1"), []);
  const events: string[] = [];
  const store = new ObjectStore({
    registry,
    historyLimit,
    clock: () => 0,
    onEvent: (def, ev) => events.push(`${def.id} ${ev.type} ${ev.key} ${ev.rv}`),
  });
  return { store, registry, pods: registry.get("pods"), events };
}

type Op = { kind: "put"; ns: string; name: string; v: number } | { kind: "del"; ns: string; name: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("put" as const),
    ns: fc.constantFrom("a", "b"),
    name: fc.constantFrom("p0", "p1", "p2", "p3", "p4", "p5"),
    v: fc.nat(3),
  }),
  fc.record({
    kind: fc.constant("del" as const),
    ns: fc.constantFrom("a", "b"),
    name: fc.constantFrom("p0", "p1", "p2", "p3", "p4", "p5"),
  }),
);

describe("simulator store", () => {
  it("gives every change the next global resourceVersion, across resources", () => {
    const { store, registry, pods, events } = makeStore();
    const nodes = registry.get("nodes");
    store.create(pods, { metadata: { name: "x", namespace: "a" } });
    store.create(nodes, { metadata: { name: "n" } });
    store.update(pods, { metadata: { name: "x", namespace: "a", labels: { l: "1" } } });
    store.remove(pods, "a", "x");
    expect(events).toEqual([
      "pods ADDED a/x 2",
      "nodes ADDED n 3",
      "pods MODIFIED a/x 4",
      "pods DELETED a/x 5",
    ]);
    expect(store.rv).toBe(5);
  });

  it("a paged list at an older resourceVersion equals the state at that resourceVersion (property)", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 60 }),
        fc.nat(),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(undefined, "a/", "b/"),
        (ops, pick, limit, prefix) => {
          const { store, pods } = makeStore();
          const c = store.collection(pods);
          const snapshots = new Map<number, string[]>();
          const state = new Map<string, number>();
          const snap = (): string[] =>
            [...state]
              .filter(([k]) => prefix === undefined || k.startsWith(prefix))
              .sort(([x], [y]) => (x < y ? -1 : 1))
              .map(([k, v]) => `${k}=${v}`);
          snapshots.set(store.rv, snap());
          for (const op of ops) {
            const key = `${op.ns}/${op.name}`;
            if (op.kind === "put") {
              const body = { metadata: { name: op.name, namespace: op.ns, labels: { v: String(op.v) } } };
              if (state.has(key)) store.update(pods, body);
              else store.create(pods, body);
              state.set(key, op.v);
            } else if (state.has(key)) {
              store.remove(pods, op.ns, op.name);
              state.delete(key);
            }
            snapshots.set(store.rv, snap());
          }
          const rvs = [...snapshots.keys()];
          const listRv = rvs[pick % rvs.length]!;
          const seen: string[] = [];
          let after: string | undefined;
          for (let guard = 0; guard < 100; guard++) {
            const page = c.page(listRv === store.rv ? undefined : listRv, after, limit, prefix);
            expect(page.items.length).toBeLessThanOrEqual(limit);
            for (const s of page.items)
              seen.push(`${s.obj.metadata.namespace}/${s.obj.metadata.name}=${s.obj.metadata.labels?.v}`);
            if (page.nextAfterKey === undefined) break;
            after = page.nextAfterKey;
          }
          expect(seen).toEqual(snapshots.get(listRv));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("keeps a bounded history: watches from before it get ERR_SIM_EXPIRED", () => {
    const { store, pods } = makeStore(3);
    const c = store.collection(pods);
    for (let i = 0; i < 6; i++) store.create(pods, { metadata: { name: `p${i}`, namespace: "a" } });
    expect(c.historyLength).toBe(3);
    expect(() => c.checkRetained(store.rv - 4)).toThrow(
      expect.objectContaining({ code: SimErrorCode.expired }),
    );
    c.checkRetained(store.rv - 3);
    expect(c.eventsAfter(store.rv - 3).map((e) => e.key)).toEqual(["a/p3", "a/p4", "a/p5"]);
    store.setHistoryLimit(1);
    expect(() => c.checkRetained(store.rv - 2)).toThrow(
      expect.objectContaining({ code: SimErrorCode.expired }),
    );
    expect(() => c.page(store.rv - 2, undefined, 1)).toThrow(
      expect.objectContaining({ code: SimErrorCode.expired }),
    );
  });

  it("skips a no-op update, bumps generation only for spec changes, and freezes what it stores", () => {
    const { store, pods, events } = makeStore();
    const made = store.create(pods, {
      metadata: { name: "x", namespace: "a", labels: { l: "1" } },
      spec: { n: 1 },
    });
    expect(
      store.update(pods, { metadata: { name: "x", namespace: "a", labels: { l: "1" } }, spec: { n: 1 } }),
    ).toBe(made);
    const labelled = store.update(pods, {
      metadata: { name: "x", namespace: "a", labels: { l: "2" } },
      spec: { n: 1 },
    });
    expect(labelled.obj.metadata.generation).toBe(1);
    const specced = store.update(pods, {
      metadata: { name: "x", namespace: "a", labels: { l: "2" } },
      spec: { n: 2 },
    });
    expect(specced.obj.metadata.generation).toBe(2);
    expect(events).toHaveLength(3);
    expect(Object.isFrozen(specced.obj.spec)).toBe(true);
    expect(() => {
      (specced.obj.metadata as { name: string }).name = "y";
    }).toThrow(TypeError);
  });

  it("checks delete preconditions", () => {
    const { store, pods } = makeStore();
    const made = store.create(pods, { metadata: { name: "x", namespace: "a" } });
    expect(() => store.remove(pods, "a", "x", { resourceVersion: "1" })).toThrow(
      expect.objectContaining({ code: SimErrorCode.conflict }),
    );
    expect(() => store.remove(pods, "a", "x", { uid: "other" })).toThrow(
      expect.objectContaining({ code: SimErrorCode.conflict }),
    );
    store.remove(pods, "a", "x", {
      resourceVersion: made.obj.metadata.resourceVersion,
      uid: made.obj.metadata.uid,
    });
    expect(() => store.get(pods, "a", "x")).toThrow(expect.objectContaining({ code: SimErrorCode.notFound }));
  });
});

describe("simulator patches", () => {
  it("merge patch follows RFC 7386", () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: null, e: 3 }, d: [2] })).toEqual({
      a: { c: 2, e: 3 },
      d: [2],
    });
    expect(mergePatch({ a: 1 }, "x")).toBe("x");
  });

  it("JSON patch applies add/remove/replace/test/move/copy and rejects what fails", () => {
    const doc = { a: { b: [1, 2] }, c: "x" };
    const out = jsonPatch(doc, [
      { op: "add", path: "/a/b/-", value: 3 },
      { op: "replace", path: "/c", value: "y" },
      { op: "test", path: "/c", value: "y" },
      { op: "copy", from: "/c", path: "/d" },
      { op: "move", from: "/d", path: "/e" },
      { op: "remove", path: "/a/b/0" },
    ]);
    expect(out).toEqual({ a: { b: [2, 3] }, c: "y", e: "y" });
    expect(doc).toEqual({ a: { b: [1, 2] }, c: "x" });
    expect(() => jsonPatch(doc, [{ op: "test", path: "/c", value: "nope" }])).toThrow(
      expect.objectContaining({ code: SimErrorCode.invalid }),
    );
    expect(() => jsonPatch(doc, [{ op: "remove", path: "/zz" }])).toThrow(
      expect.objectContaining({ code: SimErrorCode.invalid }),
    );
    expect(() => jsonPatch(doc, { op: "add" })).toThrow(
      expect.objectContaining({ code: SimErrorCode.invalid }),
    );
  });
});
