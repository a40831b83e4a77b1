/**
 * Resume on another replica (PROTOCOL.md §5.2), as a property: a mirror built on server A, resumed on
 * server B from its digests, equals B's view exactly whenever B accepts; B refuses exactly when it never
 * held the mirror's state of some kind within its log (it is behind, it relisted through it, its values
 * carry other resourceVersions, or its log was compacted). A and B see the same upstream events, batched
 * differently; B may start later (a list), miss events and relist, and keep a shorter log.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeClientMessage, encodeMessage } from "../../proto/codec.js";
import { ProtoErrorCode } from "../../proto/errors.js";
import type { ResourceValue, ResumeState, ViewName } from "../../proto/messages.js";
import { Mirror } from "../../src/client/mirror.js";
import { mirrorState } from "../../src/client/resume-token.js";
import { sameResource } from "../../src/snapshot/deep-equal.js";
import { Hub } from "../../src/snapshot/hub.js";
import { kindOfKey } from "../../src/snapshot/keys.js";
import { nodeOf, VIEWS } from "../../src/snapshot/kinds.js";
import { entryHash, fnv1a64, fnv1a64Parts, resourceVersionOfValue } from "../../src/snapshot/state-digest.js";
import { applyChanges, decodeDeltasFrame } from "../support/deltas.js";
import { DeltaEncoding } from "../../src/snapshot/delta-frames.js";

const NODES = ["node-a", "node-b"] as const;
const KINDS = ["WorkloadEndpoint", "Node", "IPPool", "Profile", "BlockAffinity", "BGPPeer"] as const;
const NAMESPACED = new Set<string>(["WorkloadEndpoint"]);
const CASES: readonly { view: ViewName; node: string | undefined }[] = [
  { view: "felix", node: "node-a" },
  { view: "felix", node: undefined },
  { view: "bgp", node: "node-a" },
  { view: "bgp", node: "node-b" },
  { view: "tunnel-ip-allocation", node: undefined },
];

/** One upstream watch event (rv is its position: the event's index + 1). */
type Event =
  | { op: "put"; key: string; x: number; owner: number }
  /** A status-only update: a new resourceVersion, the same trimmed value (the store skips it). */
  | { op: "touch"; key: string }
  | { op: "delete"; key: string };

const keyArb = fc
  .tuple(fc.constantFrom(...KINDS), fc.constantFrom("a", "b", "c"))
  .map(([kind, name]) => (NAMESPACED.has(kind) ? `${kind}/ns/${name}` : `${kind}/${name}`));

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      key: keyArb,
      x: fc.integer({ min: 0, max: 2 }),
      owner: fc.integer({ min: 0, max: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("touch" as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key: keyArb }) },
);

function value(key: string, x: number, owner: number, rv: number): ResourceValue {
  const kind = kindOfKey(key);
  const node = NODES[owner];
  return {
    kind,
    metadata: { name: key, uid: `uid-${key}`, resourceVersion: String(rv) },
    spec: { x, ...(kind === "BlockAffinity" && node !== undefined && { node }) },
  };
}

/** The upstream state after each event: what a list at that position returns. */
function upstreamStates(events: readonly Event[]): Map<string, ResourceValue>[] {
  const states: Map<string, ResourceValue>[] = [new Map()];
  let state = new Map<string, ResourceValue>();
  events.forEach((e, i) => {
    state = new Map(state);
    const rv = i + 1;
    if (e.op === "put") state.set(e.key, value(e.key, e.x, e.owner, rv));
    else if (e.op === "touch") {
      const held = state.get(e.key);
      if (held !== undefined) {
        state.set(e.key, {
          ...held,
          metadata: { ...(held.metadata as object), resourceVersion: String(rv) },
        });
      }
    } else state.delete(e.key);
    states.push(state);
  });
  return states;
}

/** How one server follows the upstream events. */
interface Plan {
  /** Lists at the state after this many events, then watches from there. */
  readonly start: number;
  /** Misses the events in [from, to) (a broken watch), then relists at `to` and diffs. */
  readonly gap: { readonly from: number; readonly to: number } | undefined;
  /** Has processed this many events (≥ start). */
  readonly end: number;
  /** Flushes after event i when flushes[i % length]. */
  readonly flushes: readonly boolean[];
  readonly maxLogEntries: number;
}

/** A view's state (key → resourceVersion) after each change the server made, with that revision. */
interface Point {
  readonly revision: number;
  readonly state: ReadonlyMap<string, string>;
}

interface Replica {
  readonly hub: Hub;
  readonly points: Point[];
}

function inView(view: ViewName, node: string | undefined, key: string, v: ResourceValue): boolean {
  const def = VIEWS[view];
  const kind = kindOfKey(key) as never;
  if (!def.kinds.has(kind)) return false;
  return !def.nodeScopedKinds.has(kind) || (node !== undefined && nodeOf(kind, v) === node);
}

/** Runs one server through the events; `onFlush(i)` after each flush (i events applied). */
function runReplica(
  events: readonly Event[],
  states: readonly Map<string, ResourceValue>[],
  plan: Plan,
  view: ViewName,
  node: string | undefined,
  onFlush: (hub: Hub, applied: number) => void = () => undefined,
): Replica {
  const hub = new Hub({ maxLogEntries: plan.maxLogEntries, maxChangesPerFrame: 2 });
  const points: Point[] = [];
  const record = (): void => {
    const state = new Map<string, string>();
    for (const kind of VIEWS[view].kinds) {
      for (const e of hub.store.entriesOfKind(kind)) {
        const v = hub.store.valueOf(e.key)!;
        if (inView(view, node, e.key, v)) state.set(e.key, resourceVersionOfValue(v));
      }
    }
    points.push({ revision: hub.store.revision, state });
  };
  const put = (key: string, v: ResourceValue): void => {
    if (hub.upsert(key, v)) record();
  };
  const del = (key: string): void => {
    if (hub.delete(key)) record();
  };
  const list = (at: number): void => {
    const listed = states[at]!;
    for (const [key, v] of listed) put(key, v);
    for (const kind of KINDS)
      for (const key of [...hub.store.keysOfKind(kind)]) if (!listed.has(key)) del(key);
  };
  record();
  list(plan.start);
  hub.flush();
  onFlush(hub, plan.start);
  for (let i = plan.start; i < plan.end; i++) {
    if (plan.gap !== undefined && i >= plan.gap.from && i < plan.gap.to) {
      if (i === plan.gap.to - 1) list(plan.gap.to);
    } else {
      const e = events[i]!;
      const after = states[i + 1]!;
      if (e.op === "delete") del(e.key);
      else {
        const v = after.get(e.key);
        if (v !== undefined) put(e.key, v);
      }
    }
    if (plan.flushes[i % plan.flushes.length] === true || i === plan.end - 1) {
      hub.flush();
      onFlush(hub, i + 1);
    }
  }
  hub.flush();
  return { hub, points };
}

function viewOf(hub: Hub, view: ViewName, node: string | undefined): Map<string, ResourceValue> {
  const out = new Map<string, ResourceValue>();
  for (const kind of VIEWS[view].kinds) {
    for (const e of hub.store.entriesOfKind(kind)) {
      const v = hub.store.valueOf(e.key)!;
      if (inView(view, node, e.key, v)) out.set(e.key, v);
    }
  }
  return out;
}

function mirrorOf(values: ReadonlyMap<string, ResourceValue>): Mirror {
  const mirror = new Mirror();
  mirror.replace(values);
  return mirror;
}

function project(state: ReadonlyMap<string, string>, kind: string): string {
  return JSON.stringify([...state].filter(([k]) => kindOfKey(k) === kind).sort());
}

/** When B held a state: from the change that entered it to the change that left it. */
interface Span {
  readonly enter: number;
  readonly leave: number;
}

/**
 * The model's answer: per kind, the latest span of revisions during which B held the mirror's state of
 * that kind ("current" when B holds it now), or undefined when B never held it.
 */
function modelSpans(
  b: Replica,
  mirror: ReadonlyMap<string, ResourceValue>,
  view: ViewName,
): Map<string, Span | "current" | undefined> {
  const held = new Map<string, string>();
  for (const [k, v] of mirror) held.set(k, resourceVersionOfValue(v));
  const out = new Map<string, Span | "current" | undefined>();
  const last = b.points[b.points.length - 1]!;
  for (const kind of VIEWS[view].kinds) {
    const want = project(held, kind);
    if (project(last.state, kind) === want) {
      out.set(kind, "current");
      continue;
    }
    let enter: number | undefined;
    let leave = 0;
    let prev: string | undefined;
    for (const p of b.points) {
      const s = project(p.state, kind);
      if (s !== prev && s === want) enter = p.revision;
      if (s !== prev && prev === want) leave = p.revision;
      prev = s;
    }
    out.set(kind, enter === undefined ? undefined : { enter, leave });
  }
  return out;
}

const planArb = (events: number): fc.Arbitrary<Plan> =>
  fc
    .record({
      start: fc.integer({ min: 0, max: events }),
      end: fc.integer({ min: 0, max: events }),
      gap: fc.option(fc.tuple(fc.integer({ min: 0, max: events }), fc.integer({ min: 1, max: 4 })), {
        nil: undefined,
      }),
      flushes: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
      maxLogEntries: fc.constantFrom(3, 8, 1000),
    })
    .map((p) => {
      const start = Math.min(p.start, p.end);
      const gap =
        p.gap === undefined || p.gap[0] < start || p.gap[0] + p.gap[1] > p.end
          ? undefined
          : { from: p.gap[0], to: p.gap[0] + p.gap[1] };
      return { start, end: p.end, gap, flushes: p.flushes, maxLogEntries: p.maxLogEntries };
    });

describe("resume on another replica", () => {
  it("is exact whenever B accepts, and B refuses only when it never held the mirror's state in its log", () => {
    const scenario = fc.array(eventArb, { minLength: 1, maxLength: 40 }).chain((events) =>
      fc.record({
        events: fc.constant(events),
        a: planArb(events.length),
        b: planArb(events.length),
        cut: fc.nat(),
        which: fc.constantFrom(...CASES),
      }),
    );
    let accepted = 0;
    let refused = 0;
    /** Scenarios where a state entered below B's floor was still held at it (the case that must resume). */
    let enteredBelowFloor = 0;
    fc.assert(
      fc.property(scenario, ({ events, a, b, cut, which }) => {
        const { view, node } = which;
        const states = upstreamStates(events);
        // The mirror: A's view at one of its flushes (what a client in step holds there).
        const taken: Map<string, ResourceValue>[] = [];
        runReplica(events, states, a, view, node, (hub) => taken.push(viewOf(hub, view, node)));
        const mirrorValues = taken[cut % taken.length]!;
        const mirror = mirrorOf(mirrorValues);
        const state: ResumeState = mirrorState(mirror, view, node, "tabby-1");
        const replica = runReplica(events, states, b, view, node);
        const decision = replica.hub.resumeFromState(view, node, state);
        const spans = modelSpans(replica, mirrorValues, view);
        const floor = replica.hub.log(view).floor;
        // Exact when B's log can start from a revision at which B held the state: it was left after the
        // floor (it may have been entered long before, as a listed kind that rarely changes is).
        const canBeExact = [...spans.values()].every(
          (c) => c === "current" || (c !== undefined && Math.max(c.enter, floor) < c.leave),
        );
        if (
          [...spans.values()].some(
            (c) => c !== "current" && c !== undefined && c.enter < floor && c.leave > floor,
          )
        )
          enteredBelowFloor++;
        if (decision.ok) {
          accepted++;
          const resumed = new Map(mirrorValues);
          for (const f of decision.frames) {
            const m = decodeDeltasFrame(f.frame(DeltaEncoding.plain));
            expect(m.from).toBe(0);
            applyChanges(resumed, m.changes);
          }
          expect(decision.frames.at(-1)!.to).toBe(replica.hub.revision);
          expect(resumed).toEqual(viewOf(replica.hub, view, node));
          expect(canBeExact).toBe(true);
        } else {
          refused++;
          expect(canBeExact).toBe(false);
          // (The reason names the first kind that fails; a state below the floor may be forgotten already.)
          expect(["unknown-state", "compacted"]).toContain(decision.reason);
        }
      }),
      { numRuns: 1000 },
    );
    // Both outcomes must actually be exercised.
    expect(accepted).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(20);
    // About 2% of the scenarios: ~23 expected, so none at all would mean the generator lost the case.
    expect(enteredBelowFloor).toBeGreaterThan(0);
  });

  it("accepts a mirror built in lockstep on A whenever B is at or past it with its log intact", () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.constantFrom(...CASES),
        (events, aFlushes, bFlushes, cut, { view, node }) => {
          const states = upstreamStates(events);
          const n = events.length;
          const taken: Map<string, ResourceValue>[] = [];
          const plan = (flushes: boolean[]): Plan => ({
            start: 0,
            end: n,
            gap: undefined,
            flushes,
            maxLogEntries: 1000,
          });
          runReplica(events, states, plan(aFlushes), view, node, (hub) =>
            taken.push(viewOf(hub, view, node)),
          );
          const mirrorValues = taken[cut % taken.length]!;
          const replica = runReplica(events, states, plan(bFlushes), view, node);
          const decision = replica.hub.resumeFromState(
            view,
            node,
            mirrorState(mirrorOf(mirrorValues), view, node, "tabby-1"),
          );
          expect(decision.ok).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses another conversion, another view or node, and a token whose kinds are not the view's", () => {
    const hub = new Hub();
    hub.upsert("IPPool/p", value("IPPool/p", 1, 0, 1));
    hub.flush();
    const mirror = mirrorOf(viewOf(hub, "bgp", "node-a"));
    const good = mirrorState(mirror, "bgp", "node-a", "tabby-1");
    expect(hub.resumeFromState("bgp", "node-a", good).ok).toBe(true);
    // The frames count from `base` (the client's revision, for a token of this server's own).
    const own = hub.resumeFromState("bgp", "node-a", good, 1);
    expect(own.ok && own.frames.map((f) => [f.from, f.to])).toEqual([[1, 1]]);
    const reason = (s: ResumeState, node = "node-a"): string | undefined => {
      const d = hub.resumeFromState("bgp", node, s);
      return d.ok ? undefined : d.reason;
    };
    expect(reason({ ...good, conversion: "tabby-convert-2" })).toBe("conversion");
    expect(reason(good, "node-b")).toBe("view");
    expect(reason({ ...good, view: "felix" })).toBe("view");
    const { IPPool: _dropped, ...fewer } = good.kinds;
    expect(reason({ ...good, kinds: fewer })).toBe("kinds");
    expect(reason({ ...good, kinds: { ...good.kinds, IPAMHandle: [0, "0000000000000000"] } })).toBe("kinds");
    expect(reason({ ...good, kinds: { ...good.kinds, IPPool: [1, "not-hex"] } })).toBe("kinds");
  });

  it("treats a value that only moved its resourceVersion as another state (the mirror would differ)", () => {
    const a = new Hub();
    const b = new Hub();
    a.upsert("IPPool/p", value("IPPool/p", 1, 0, 1));
    a.flush();
    // B listed later: same content, a later resourceVersion (the store would have skipped it on A).
    b.upsert("IPPool/p", value("IPPool/p", 1, 0, 2));
    b.flush();
    expect(sameResource(a.store.valueOf("IPPool/p")!, b.store.valueOf("IPPool/p")!)).toBe(true);
    const state = mirrorState(
      mirrorOf(viewOf(a, "tunnel-ip-allocation", undefined)),
      "tunnel-ip-allocation",
      undefined,
      "tabby-1",
    );
    const d = b.resumeFromState("tunnel-ip-allocation", undefined, state);
    expect(d.ok ? undefined : d.reason).toBe("unknown-state");
    // The detail names every kind B never held in that state (Node is empty on both: held).
    expect(d.ok ? undefined : d.detail).toBe("states this server never held: IPPool (of 2 kinds)");
  });
});

describe("resume of a state entered long ago", () => {
  /** A bgp mirror of `hub` as it is now. */
  const stateOf = (hub: Hub): ResumeState =>
    mirrorState(mirrorOf(viewOf(hub, "bgp", "node-a")), "bgp", "node-a", "tabby-1");
  /** Churn in another kind, one change per flush: it moves the bgp log's floor (4 entries) past rv 2. */
  const churnAffinity = (hub: Hub): void => {
    for (let rv = 3; rv < 13; rv++) {
      hub.upsert("BlockAffinity/a", value("BlockAffinity/a", rv, 0, rv));
      hub.flush();
    }
  };

  it("resumes a kind listed below the log's floor and changed once since (a rarely changing kind)", () => {
    // B lists a pool and a peer, then churn in another kind moves its log's floor past the list.
    const b = new Hub({ maxLogEntries: 4 });
    b.upsert("IPPool/p", value("IPPool/p", 1, 0, 1));
    b.upsert("BGPPeer/q", value("BGPPeer/q", 1, 0, 2));
    b.flush();
    churnAffinity(b);
    expect(b.log("bgp").floor).toBeGreaterThan(2);
    // A client of another replica holds this state; B then sees the pool change.
    const before = stateOf(b);
    b.upsert("IPPool/p", value("IPPool/p", 2, 0, 13));
    b.flush();
    const d = b.resumeFromState("bgp", "node-a", before);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    // The catch-up is the pool's change alone: the peer and the affinity were current.
    const expected = viewOf(b, "bgp", "node-a");
    const mirror = new Map(expected);
    mirror.set("IPPool/p", value("IPPool/p", 1, 0, 1));
    for (const f of d.frames) applyChanges(mirror, decodeDeltasFrame(f.frame(DeltaEncoding.plain)).changes);
    expect(mirror).toEqual(expected);
    expect(d.changes).toBe(1);
  });

  it("refuses it as compacted once the change that left it is below the floor", () => {
    const b = new Hub({ maxLogEntries: 4 });
    b.upsert("IPPool/p", value("IPPool/p", 1, 0, 1));
    b.flush();
    const before = stateOf(b);
    b.upsert("IPPool/p", value("IPPool/p", 2, 0, 2));
    b.flush();
    churnAffinity(b);
    const d = b.resumeFromState("bgp", "node-a", before);
    expect(d.ok ? undefined : d.reason).toBe("compacted");
  });
});

describe("state digests", () => {
  it("hash with 64-bit FNV-1a over UTF-8 (the published test vectors), so any client can compute them", () => {
    expect(fnv1a64("")).toBe(0xcbf29ce484222325n);
    expect(fnv1a64("a")).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64("foobar")).toBe(0x85944171f73967e8n);
    expect(fnv1a64("é")).toBe(fnv1a64Bytes(Buffer.from("é", "utf8")));
    expect(entryHash("IPPool/p", "42")).toEqual(fnv1a64Parts("IPPool/p\n42"));
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 80 }), (text) => {
        expect(fnv1a64(text)).toBe(fnv1a64Bytes(Buffer.from(text, "utf8")));
      }),
    );
  });
});

/** A plain bigint FNV-1a-64, the reference the limb arithmetic must match. */
function fnv1a64Bytes(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

describe("resume.state on the wire", () => {
  const state: ResumeState = {
    conversion: "tabby-convert-1",
    view: "bgp",
    node: "node-a",
    kinds: { IPPool: [2, "00000000000000ff"], BlockAffinity: [0, "0000000000000000"] },
  };
  const helloWith = (s: unknown): Uint8Array =>
    encodeMessage({
      t: "hello",
      versions: [1, 1],
      view: "bgp",
      node: "node-a",
      client: { name: "t", version: "0" },
      resume: { server: "x", revision: 3, state: s },
    } as never);

  it("round-trips through the codec", () => {
    const m = decodeClientMessage(helloWith(state));
    expect(m.t === "hello" && m.resume).toEqual({ server: "x", revision: 3, state });
  });

  it.each<[string, unknown]>([
    ["not a map", 7],
    ["no conversion", { view: "bgp", kinds: {} }],
    ["kinds not a map", { ...state, kinds: [] }],
    ["a digest that is not 16 hex digits", { ...state, kinds: { IPPool: [1, "FF"] } }],
    ["a negative count", { ...state, kinds: { IPPool: [-1, "0000000000000000"] } }],
    [
      "a __proto__ kind",
      { ...state, kinds: JSON.parse('{"__proto__": [1, "0000000000000000"]}') as unknown },
    ],
    ["a kind name with a dot", { ...state, kinds: { "IP.Pool": [1, "0000000000000000"] } }],
    ["a kind name of 65 letters", { ...state, kinds: { ["K".repeat(65)]: [1, "0000000000000000"] } }],
    [
      "too many kinds",
      {
        ...state,
        kinds: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`K${i}`, [0, "0000000000000000"]])),
      },
    ],
  ])("refuses %s", (_what, bad) => {
    expect(() => decodeClientMessage(helloWith(bad))).toThrow(
      expect.objectContaining({ code: ProtoErrorCode.badMessage }),
    );
  });
});
