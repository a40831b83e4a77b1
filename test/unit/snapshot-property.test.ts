import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeServerMessage } from "../../proto/codec.js";
import type { DeltaEncodingBits, DeltaFrames } from "../../src/snapshot/delta-frames.js";
import { applyChanges, decodeDeltasFrame } from "../support/deltas.js";
import { isJsonPatchEntry, isPatchEntry, VIEW_NAMES } from "../../proto/messages.js";
import type { ResourceValue, ViewName } from "../../proto/messages.js";
import { sameResource } from "../../src/snapshot/deep-equal.js";
import { framesFor, Hub } from "../../src/snapshot/hub.js";
import type { EncodedSnapshot } from "../../src/snapshot/hub.js";
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
const endpoint = (ip: string, ready: boolean) => ({ addresses: [ip], conditions: { ready, serving: ready } });
const ITEMS = [
  [endpoint("10.0.0.1", true), endpoint("10.0.0.2", true), endpoint("10.0.0.3", true)],
  [endpoint("10.0.0.1", true), endpoint("10.0.0.2", false), endpoint("10.0.0.3", true)],
  [endpoint("10.0.0.1", true), endpoint("10.0.0.3", true)],
  [
    endpoint("10.0.0.1", true),
    endpoint("10.0.0.2", true),
    endpoint("10.0.0.9", true),
    endpoint("10.0.0.3", true),
  ],
  [],
] as const;

type Op =
  | { op: "upsert"; key: string; node: string | undefined; x: number; tag: string | null; items: number }
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
      // null exercises values a merge patch cannot express (null where base and next differ).
      tag: fc.constantFrom("red", "blue", null),
      // Arrays that differ by one element, an insert or a removal: what JSON Patches reach into.
      items: fc.integer({ min: 0, max: ITEMS.length - 1 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.constant({ op: "flush" as const }) },
  { weight: 2, arbitrary: fc.constant({ op: "observe" as const }) },
);

/** Every combination of the delta encoding bits (JSON Patches without patches read as plain). */

const ENCODINGS: readonly DeltaEncodingBits[] = Array.from({ length: 8 }, (_, bits) => bits);

function value(
  key: string,
  node: string | undefined,
  x: number,
  tag: string | null,
  rv: number,
  items = 0,
): ResourceValue {
  return {
    metadata: { name: key, resourceVersion: String(rv), labels: { app: "web", tier: "front", team: "net" } },
    spec: {
      ...(node !== undefined && { node }),
      x,
      ...(tag !== null ? { tag } : x % 2 === 0 ? { tag: null } : {}),
      ports: [80, 443],
      endpoints: ITEMS[items],
    },
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

/** Patch entries applied over a whole property run (the encodings must really be exercised). */
let patchesApplied = 0;
let jsonPatchesApplied = 0;

/** Applies snapshot chunks (Buffers) and deltas (in `encoding`) as a client of that encoding would. */
function applyFrames(
  state: Map<string, ResourceValue>,
  frames: readonly (Buffer | DeltaFrames)[],
  encoding: DeltaEncodingBits,
): void {
  for (const frame of frames) {
    if (!Buffer.isBuffer(frame)) {
      const changes = decodeDeltasFrame(frame.frame(encoding)).changes;
      patchesApplied += changes.filter(isPatchEntry).length;
      jsonPatchesApplied += changes.filter(isJsonPatchEntry).length;
      applyChanges(state, changes);
      continue;
    }
    const msg = decodeServerMessage(frame);
    if (msg.t === "snap-chunk") {
      for (const e of msg.entries ?? []) if (e.v !== null) state.set(e.k, e.v);
    } else {
      throw new Error(`unexpected ${msg.t} frame`);
    }
  }
}

interface Observation {
  view: ViewName;
  node: string;
  revision: number;
  state: Map<string, ResourceValue>;
  /** The delta encoding this observer's session negotiated. */
  encoding: DeltaEncodingBits;
  /** Frames a session in step since this observation received, from the live batches. */
  live: DeltaFrames[];
  /** The snapshot observed, and the state its chunks alone give. */
  snapshot: EncodedSnapshot;
  atSnapshot: Map<string, ResourceValue>;
}

function runHistory(
  ops: readonly Op[],
  limits: { maxLogEntries: number },
  encodingSeed: readonly number[] = [0],
): void {
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
        const frames = framesFor(batch, o.node);
        if (frames !== null) o.live.push(frames);
      }
    }
  };

  for (const op of ops) {
    now += 10;
    if (op.op === "upsert") {
      const v = value(op.key, op.node, op.x, op.tag, ++rv, op.items);
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
          const encoding =
            ENCODINGS[(encodingSeed[observations.length % encodingSeed.length] ?? 0) % ENCODINGS.length]!;
          applyFrames(
            state,
            [...snap.chunks, ...(frames.nodeChunk === null ? [] : [frames.nodeChunk])],
            encoding,
          );
          const count = decodeServerMessage(frames.begin);
          expect(count.t === "snap-begin" && count.count).toBe(state.size);
          // A reused snapshot may be older than the head: the catch-up brings it forward.
          const atSnapshot = new Map(state);
          const catchUp = hub.catchUp(view, node, snap.revision);
          expect(catchUp).toBeDefined();
          applyFrames(state, catchUp ?? [], encoding);
          expect(state).toEqual(expectedView(model, view, node));
          // So does the one made for a session just sent the snapshot, with patches against its values.
          const fromSnapshot = hub.catchUpFromSnapshot(snap);
          expect(fromSnapshot === undefined).toBe(VIEWS[view].nodeScopedKinds.size > 0);
          if (fromSnapshot !== undefined) {
            applyFrames(atSnapshot, fromSnapshot, encoding);
            expect(atSnapshot).toEqual(expectedView(model, view, node));
            expect(fromSnapshot.at(-1)?.to ?? snap.revision).toBe(hub.revision);
          }
          observations.push({
            view,
            node,
            revision: hub.revision,
            state,
            encoding,
            live: [],
            snapshot: snap,
            atSnapshot: new Map(atSnapshot),
          });
        }
      }
    }
  }
  flush();

  for (const o of observations) {
    const head = expectedView(model, o.view, o.node);
    // Path 1: the live frames a session in step received since the observation.
    const live = new Map(o.state);
    applyFrames(live, o.live, o.encoding);
    expect(live).toEqual(head);
    // Path 3: the catch-up of a session that was sent the snapshot and finishes it only now (patches against
    // the snapshot's values), when the log still covers the snapshot.
    const late = hub.catchUpFromSnapshot(o.snapshot);
    if (VIEWS[o.view].nodeScopedKinds.size > 0) expect(late).toBeUndefined();
    else {
      expect(late === undefined).toBe(!hub.log(o.view).canResume(o.snapshot.revision));
      if (late !== undefined) {
        const finished = new Map(o.atSnapshot);
        applyFrames(finished, late, o.encoding);
        expect(finished).toEqual(head);
        // It reaches the head, also when nothing of the view changed since the snapshot.
        expect(late.at(-1)?.to ?? o.snapshot.revision).toBe(hub.revision);
      }
    }
    // Path 2: resume from the observed revision, when the log still covers it.
    const frames = hub.catchUp(o.view, o.node, o.revision);
    expect(frames === undefined).toBe(!hub.canResume(o.view, o.revision));
    if (frames !== undefined) {
      const resumed = new Map(o.state);
      applyFrames(resumed, frames, o.encoding);
      expect(resumed).toEqual(head);
      for (const f of frames)
        expect(decodeDeltasFrame(f.frame(o.encoding)).changes.length).toBeLessThanOrEqual(3);
    }
  }
}

describe("snapshot at R + deltas after R = view at head", () => {
  it("holds for random histories with a log that keeps everything", () => {
    patchesApplied = 0;
    jsonPatchesApplied = 0;
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 20, maxLength: 120 }),
        fc.array(fc.nat(7), { minLength: 1, maxLength: 8 }),
        (ops, encodings) => runHistory(ops, { maxLogEntries: 100_000 }, encodings),
      ),
      { numRuns: 150 },
    );
    expect(patchesApplied).toBeGreaterThan(200);
    expect(jsonPatchesApplied).toBeGreaterThan(50);
    // ~13 s of CPU on a quiet 2-core machine: allow for a loaded one.
  }, 120_000);

  it("holds for random histories with a tiny log (eviction: old revisions must refuse to resume)", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 120 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.nat(7), { minLength: 1, maxLength: 8 }),
        (ops, maxLogEntries, encodings) => runHistory(ops, { maxLogEntries }, encodings),
      ),
      { numRuns: 300 },
    );
  }, 120_000);
});
