import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeServerMessage } from "../../proto/codec.js";
import { VIEW_NAMES } from "../../proto/messages.js";
import type { ResourceValue, ViewName } from "../../proto/messages.js";
import { sameResource } from "../../src/snapshot/deep-equal.js";
import { Hub } from "../../src/snapshot/hub.js";
import { kindOfKey } from "../../src/snapshot/keys.js";
import { nodeOf, VIEWS } from "../../src/snapshot/kinds.js";

const NODES = ["node-a", "node-b", "node-c"] as const;
/** Owners an upsert may give an object: a node, or none (empty or absent `spec.node`: nobody's). */
const OWNERS = [...NODES, "", undefined] as const;
const KINDS = [
  "WorkloadEndpoint",
  "Node",
  "IPPool",
  "Profile",
  "BlockAffinity",
  "CalicoNodeStatus",
  "IPAMHandle",
  "KubernetesService",
] as const;
const NAMESPACED = new Set<string>(["WorkloadEndpoint", "KubernetesService"]);

type Op =
  | { op: "upsert"; key: string; node: string | undefined; x: number }
  | { op: "delete"; key: string }
  | { op: "flush" }
  | { op: "observe" };

const keyArb = fc
  .tuple(fc.constantFrom(...KINDS), fc.constantFrom("a", "b", "c", "d"))
  .map(([kind, name]) => (NAMESPACED.has(kind) ? `${kind}/ns1/${name}` : `${kind}/${name}`));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("upsert" as const),
      key: keyArb,
      node: fc.constantFrom(...OWNERS),
      x: fc.integer({ min: 0, max: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.constant({ op: "flush" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "observe" as const }) },
);

function value(key: string, node: string | undefined, x: number, rv: number): ResourceValue {
  return {
    metadata: { name: key, resourceVersion: String(rv) },
    spec: node === undefined ? { x } : { node, x },
  };
}

/** The view at head as a node sees it, from the model. */
function expectedView(
  model: ReadonlyMap<string, ResourceValue>,
  view: ViewName,
  node: string,
): Map<string, ResourceValue> {
  const def = VIEWS[view];
  const out = new Map<string, ResourceValue>();
  for (const [key, v] of model) {
    const kind = kindOfKey(key);
    if (!def.kinds.has(kind as never)) continue;
    if (def.nodeScopedKinds.has(kind as never) && nodeOf(kind, v) !== node) continue;
    out.set(key, v);
  }
  return out;
}

function applyFrames(state: Map<string, ResourceValue>, frames: readonly Buffer[]): void {
  for (const frame of frames) {
    const msg = decodeServerMessage(frame);
    if (msg.t === "deltas") {
      for (const c of msg.changes) {
        if (c.v === null) state.delete(c.k);
        else state.set(c.k, c.v);
      }
    } else if (msg.t === "snap-chunk") {
      for (const e of msg.entries ?? []) if (e.v !== null) state.set(e.k, e.v);
    }
  }
}

interface Observation {
  view: ViewName;
  node: string;
  revision: number;
  state: Map<string, ResourceValue>;
  /** Frames a session in step since this observation received, from the live batches. */
  live: Buffer[];
}

function runHistory(ops: readonly Op[], limits: { maxLogEntries: number }): void {
  const hub = new Hub({
    maxLogEntries: limits.maxLogEntries,
    snapshotChunkBytes: 200,
    maxChangesPerFrame: 3,
  });
  const model = new Map<string, ResourceValue>();
  const observations: Observation[] = [];
  let now = 0;
  let rv = 0;

  const flush = (): void => {
    for (const batch of hub.flush()) {
      for (const o of observations) {
        if (o.view !== batch.view) continue;
        const frame = batch.byNode.get(o.node) ?? batch.shared;
        if (frame !== null) o.live.push(frame);
      }
    }
  };

  for (const op of ops) {
    now += 10;
    if (op.op === "upsert") {
      const v = value(op.key, op.node, op.x, ++rv);
      const prev = model.get(op.key);
      const isChange = hub.upsert(op.key, v);
      // The store skips an upsert that only moves resourceVersion; the model follows the same rule.
      expect(isChange).toBe(prev === undefined || !sameResource(prev, v));
      if (isChange) model.set(op.key, v);
    } else if (op.op === "delete") {
      hub.delete(op.key);
      model.delete(op.key);
    } else if (op.op === "flush") {
      flush();
    } else {
      flush();
      for (const view of VIEW_NAMES) {
        // maxAge 0 forces a build unless the cached one is still current, exercising both paths.
        const snap = hub.snapshot(view, now, 0);
        for (const node of NODES) {
          const state = new Map<string, ResourceValue>();
          const frames = hub.sessionFrames(snap, node);
          applyFrames(state, [...snap.chunks, ...(frames.nodeChunk === null ? [] : [frames.nodeChunk])]);
          const count = decodeServerMessage(frames.begin);
          expect(count.t === "snap-begin" && count.count).toBe(state.size);
          // A reused snapshot may be older than the head: the catch-up brings it forward.
          const catchUp = hub.catchUp(view, node, snap.revision);
          expect(catchUp).toBeDefined();
          applyFrames(state, catchUp ?? []);
          expect(state).toEqual(expectedView(model, view, node));
          observations.push({ view, node, revision: hub.revision, state, live: [] });
        }
      }
    }
  }
  flush();

  for (const o of observations) {
    const head = expectedView(model, o.view, o.node);
    // Path 1: the live frames a session in step received since the observation.
    const live = new Map(o.state);
    applyFrames(live, o.live);
    expect(live).toEqual(head);
    // Path 2: resume from the observed revision, when the log still covers it.
    const frames = hub.catchUp(o.view, o.node, o.revision);
    expect(frames === undefined).toBe(!hub.canResume(o.view, o.revision));
    if (frames !== undefined) {
      const resumed = new Map(o.state);
      applyFrames(resumed, frames);
      expect(resumed).toEqual(head);
      for (const f of frames) {
        const m = decodeServerMessage(f);
        expect(m.t === "deltas" && m.changes.length <= 3).toBe(true);
      }
    }
  }
}

describe("snapshot at R + deltas after R = view at head", () => {
  it("holds for random histories with a log that keeps everything", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => runHistory(ops, { maxLogEntries: 100_000 })),
      { numRuns: 300 },
    );
  });

  it("holds for random histories with a tiny log (eviction: old revisions must refuse to resume)", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), fc.integer({ min: 1, max: 8 }), (ops, maxLogEntries) =>
        runHistory(ops, { maxLogEntries }),
      ),
      { numRuns: 300 },
    );
  });
});
