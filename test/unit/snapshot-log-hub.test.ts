import { describe, expect, it } from "vitest";
import { DeltaEncoding } from "../../src/snapshot/delta-frames.js";
import { applyChanges, decodeDeltasFrame } from "../support/deltas.js";
import { decodeServerMessage, decodeValue, encodeValue } from "../../proto/codec.js";
import { isPatchEntry } from "../../proto/messages.js";
import type { DeltasMessage, ResourceValue } from "../../proto/messages.js";
import { ChangeLog } from "../../src/snapshot/change-log.js";
import type { LogEntry } from "../../src/snapshot/change-log.js";
import { Hub } from "../../src/snapshot/hub.js";
import { viewStatus } from "../../src/snapshot/sync-state.js";
import type { KindState } from "../../src/snapshot/sync-state.js";
import { negotiateVersion, PROTOCOL_VERSION_MAX } from "../../proto/version.js";

const buf = (s: string) => Buffer.from(s);
function entry(revision: number, key: string, node?: string): LogEntry {
  return {
    revision,
    key,
    encoded: buf(`${key}@${revision}`),
    isNodeScoped: node !== undefined,
    node,
    prevNode: undefined,
    prevEncoded: undefined,
  };
}

describe("ChangeLog", () => {
  it("evicts by count and moves the floor", () => {
    const log = new ChangeLog({ maxEntries: 3, maxBytes: 1 << 20 });
    for (let r = 1; r <= 5; r++) log.append(entry(r, `K/${r}`));
    expect([log.size, log.floor, log.head, log.evicted]).toEqual([3, 2, 5, 2]);
    expect([log.canResume(1), log.canResume(2), log.canResume(5), log.canResume(6)]).toEqual([
      false,
      true,
      true,
      false,
    ]);
    expect(log.since(1, undefined)).toBeUndefined();
    expect(log.since(3, undefined)?.map(String)).toEqual(["K/4@4", "K/5@5"]);
  });

  it("evicts by bytes but keeps at least one entry", () => {
    const log = new ChangeLog({ maxEntries: 100, maxBytes: 100 });
    log.append(entry(1, "K/a"));
    log.append(entry(2, "K/b"));
    expect(log.size).toBe(1);
    expect(log.floor).toBe(1);
  });

  it("coalesces per key in the order of last change, and filters node-scoped entries by node", () => {
    const log = new ChangeLog({ maxEntries: 100, maxBytes: 1 << 20 });
    log.append(entry(1, "K/a"));
    log.append(entry(2, "N/x", "n1"));
    log.append(entry(3, "K/b"));
    log.append(entry(4, "K/a"));
    log.append(entry(5, "N/y", "n2"));
    expect(log.since(0, "n1")?.map(String)).toEqual(["N/x@2", "K/b@3", "K/a@4"]);
    expect(log.since(0, undefined)?.map(String)).toEqual(["K/b@3", "K/a@4"]);
    expect(() => log.append(entry(5, "K/c"))).toThrow(RangeError);
  });

  it("gives an ownerless node-scoped entry to nobody, and its old owner a delete", () => {
    const log = new ChangeLog({ maxEntries: 100, maxBytes: 1 << 20 });
    const scoped = (revision: number, key: string, node?: string, prevNode?: string): LogEntry => ({
      revision,
      key,
      encoded: buf(`${key}@${revision}`),
      isNodeScoped: true,
      node,
      prevNode,
      prevEncoded: prevNode === undefined ? undefined : buf(`${key}@${revision}:gone`),
    });
    log.append(scoped(1, "N/ownerless"));
    log.append(scoped(2, "N/x", "n1"));
    log.append(scoped(3, "N/x", undefined, "n1"));
    log.append(entry(4, "K/a"));
    expect(log.since(0, "n1")?.map(String)).toEqual(["N/x@3:gone", "K/a@4"]);
    expect(log.since(0, "n2")?.map(String)).toEqual(["K/a@4"]);
    expect(log.since(0, undefined)?.map(String)).toEqual(["K/a@4"]);
  });

  it("validates its limits", () => {
    expect(() => new ChangeLog({ maxEntries: 0, maxBytes: 1 })).toThrow(RangeError);
  });
});

const wep = (name: string, x: number) => ({ metadata: { name, namespace: "ns" }, spec: { node: "n1", x } });

describe("Hub", () => {
  it("makes one shared frame per view per flush, coalescing a key changed twice", () => {
    const hub = new Hub();
    hub.upsert("Node/n1", { metadata: { name: "n1" }, spec: { x: 1 } });
    hub.upsert("WorkloadEndpoint/ns/a", wep("a", 1));
    hub.upsert("WorkloadEndpoint/ns/a", wep("a", 2));
    expect(hub.pendingCount).toBe(3);
    const batches = hub.flush();
    expect(batches.map((b) => b.view).sort()).toEqual(["bgp", "felix", "tunnel-ip-allocation"]);
    const felix = batches.find((b) => b.view === "felix")!;
    const msg = decodeServerMessage(felix.shared!.frame(DeltaEncoding.plain)) as DeltasMessage;
    expect([msg.from, msg.to]).toEqual([0, 3]);
    expect(msg.changes).toEqual([
      { k: "Node/n1", v: { metadata: { name: "n1" }, spec: { x: 1 } } },
      { k: "WorkloadEndpoint/ns/a", v: wep("a", 2) },
    ]);
    // Each encoding is built once, on first use, and then shared.
    expect(felix.shared!.built).toBe(1);
    const z = felix.shared!.frame(DeltaEncoding.deflate);
    expect(felix.shared!.frame(DeltaEncoding.deflate)).toBe(z);
    expect(felix.shared!.built).toBe(2);
    expect(decodeDeltasFrame(z).changes).toEqual(msg.changes);
    expect(hub.flush()).toEqual([]);
    expect(hub.revision).toBe(3);
  });

  it("routes node-scoped changes to their node, with a delete for the previous owner", () => {
    const hub = new Hub();
    const aff = (node: string) => ({ metadata: { name: "b" }, spec: { node } });
    hub.upsert("BlockAffinity/b", aff("n1"));
    hub.upsert("IPPool/p", { metadata: { name: "p" }, spec: {} });
    const [bgp] = hub.flush().filter((b) => b.view === "bgp");
    expect(
      (decodeServerMessage(bgp!.shared!.frame(DeltaEncoding.plain)) as DeltasMessage).changes.map((c) => c.k),
    ).toEqual(["IPPool/p"]);
    expect(
      (decodeServerMessage(bgp!.byNode.get("n1")!.frame(DeltaEncoding.plain)) as DeltasMessage).changes.map(
        (c) => c.k,
      ),
    ).toEqual(["IPPool/p", "BlockAffinity/b"]);
    hub.upsert("BlockAffinity/b", aff("n2"));
    const [moved] = hub.flush();
    expect(moved!.shared).toBeNull();
    expect(
      (decodeServerMessage(moved!.byNode.get("n1")!.frame(DeltaEncoding.plain)) as DeltasMessage).changes,
    ).toEqual([{ k: "BlockAffinity/b", v: null }]);
    expect(
      (decodeServerMessage(moved!.byNode.get("n2")!.frame(DeltaEncoding.plain)) as DeltasMessage).changes,
    ).toEqual([{ k: "BlockAffinity/b", v: aff("n2") }]);
  });

  it("reuses a young snapshot, rebuilds an old one, and refuses to build with changes pending", () => {
    const hub = new Hub({ snapshotChunkBytes: 64 });
    for (let i = 0; i < 10; i++) hub.upsert(`IPPool/p${i}`, { metadata: { name: `p${i}` }, spec: { i } });
    hub.flush();
    const s1 = hub.snapshot("felix", 1000, 500);
    expect(s1.count).toBe(10);
    expect(s1.hasAssembledChunks).toBe(false);
    expect(s1.chunks.length).toBeGreaterThan(1);
    expect(s1.hasAssembledChunks).toBe(true);
    // `bytes` is the size of the uncompressed chunk frames, which are assembled only when asked for.
    expect(s1.bytes).toBe(s1.chunks.reduce((n, c) => n + c.byteLength, 0));
    hub.upsert("IPPool/p0", { metadata: { name: "p0" }, spec: { i: 99 } });
    expect(hub.snapshot("felix", 1100, 500)).toBe(s1); // young: reused, the catch-up covers the rest
    // Old, but nothing newer has been flushed: still current (the pending change goes out with the flush).
    expect(hub.snapshot("felix", 2000, 500)).toBe(s1);
    hub.flush();
    const s2 = hub.snapshot("felix", 2000, 500);
    expect(s2).not.toBe(s1);
    expect(s2.revision).toBe(11);
    expect(hub.snapshot("felix", 9000, 500)).toBe(s2); // old but still current: reused
    expect(hub.counters.snapshotsBuilt.felix).toBe(2);
    expect(hub.counters.snapshotsReused.felix).toBe(3);
    const fresh = new Hub();
    fresh.upsert("IPPool/p", { metadata: { name: "p" }, spec: {} });
    expect(() => fresh.snapshot("felix", 0, 500)).toThrow(/flush/);
    const frames = hub.sessionFrames(s2, undefined);
    expect(decodeServerMessage(frames.begin)).toEqual({
      t: "snap-begin",
      revision: 11,
      count: 10,
      chunks: s2.chunks.length,
    });
    expect(decodeValue(s2.chunks[0]!)).toMatchObject({ t: "snap-chunk", index: 0 });
  });

  it("prunes the cached snapshots no session can be given, and keeps the reusable and the in-use", () => {
    const hub = new Hub();
    for (let i = 0; i < 4; i++) hub.upsert(`IPPool/p${i}`, { metadata: { name: `p${i}` }, spec: { i } });
    hub.flush();
    const felix = hub.snapshot("felix", 1000, 500);
    const tunnel = hub.snapshot("tunnel-ip-allocation", 1000, 500);
    const never = () => false;
    // Young, or old but still current: both could be reused, so both stay.
    expect(hub.pruneSnapshots(1200, 500, never)).toBe(0);
    expect(hub.pruneSnapshots(9000, 500, never)).toBe(0);
    expect(hub.latestSnapshot("felix")).toBe(felix);
    hub.upsert("IPPool/p0", { metadata: { name: "p0" }, spec: { i: 99 } });
    hub.flush();
    // The view changed: a young snapshot is still reusable (the catch-up covers the change)...
    expect(hub.pruneSnapshots(1400, 500, never)).toBe(0);
    // ...an old one is not, unless a session is still being sent it.
    expect(hub.pruneSnapshots(9000, 500, (s) => s === felix)).toBe(1);
    expect(hub.latestSnapshot("tunnel-ip-allocation")).toBeUndefined();
    expect(hub.latestSnapshot("felix")).toBe(felix);
    expect(hub.pruneSnapshots(9000, 500, never)).toBe(1);
    expect(hub.latestSnapshot("felix")).toBeUndefined();
    // The next session gets a snapshot built at the head, not the dropped one.
    const rebuilt = hub.snapshot("felix", 9000, 500);
    expect(rebuilt).not.toBe(felix);
    expect(rebuilt.revision).toBe(5);
    expect(hub.counters.snapshotsBuilt.felix).toBe(2);
    expect(tunnel.revision).toBe(4);
  });

  it("prunes a snapshot the log can no longer carry to the head, however young", () => {
    const hub = new Hub();
    for (let i = 0; i < 3; i++) hub.upsert(`IPPool/p${i}`, { metadata: { name: `p${i}` }, spec: { i } });
    hub.flush();
    const s = hub.snapshot("felix", 1000, 500);
    // More changes than the longest catch-up the log serves (1000 entries for so small a view).
    for (let n = 1; n <= 1001; n++) hub.upsert("IPPool/p0", { metadata: { name: "p0" }, spec: { n } });
    hub.flush();
    expect(hub.canResume("felix", s.revision)).toBe(false);
    expect(hub.pruneSnapshots(1000, 500, () => false)).toBe(1);
    expect(hub.latestSnapshot("felix")).toBeUndefined();
  });

  it("splits a catch-up into bounded frames and advances an idle client with an empty frame", () => {
    const hub = new Hub({ maxChangesPerFrame: 2 });
    for (let i = 0; i < 5; i++) hub.upsert(`IPPool/p${i}`, { metadata: { name: `p${i}` }, spec: {} });
    hub.flush();
    const frames = hub
      .catchUp("felix", undefined, 0)!
      .map((f) => decodeDeltasFrame(f.frame(DeltaEncoding.deflate)));
    expect(frames.map((f) => [f.from, f.to, f.changes.length])).toEqual([
      [0, 0, 2],
      [0, 0, 2],
      [0, 5, 1],
    ]);
    hub.upsert("CalicoNodeStatus/s", { metadata: { name: "s" }, spec: { node: "n1" } });
    hub.flush();
    const idle = hub
      .catchUp("felix", undefined, 5)!
      .map((f) => decodeDeltasFrame(f.frame(DeltaEncoding.plain)));
    expect(idle.map((f) => [f.from, f.to, f.changes.length])).toEqual([[5, 6, 0]]);
    expect(hub.catchUp("felix", undefined, 6)).toEqual([]);
  });
});

describe("Hub patches", () => {
  const pod = (rv: string, version: string, extra: Record<string, unknown> = {}) => ({
    metadata: { name: "a", namespace: "ns", resourceVersion: rv, labels: { app: "web", version } },
    spec: { node: "n1", ipNetworks: ["10.0.0.1/32"], profiles: ["kns.ns"], ...extra },
  });

  it("sends an update of a held value as a merge patch on its base resourceVersion, a create in full", () => {
    const hub = new Hub();
    hub.upsert("WorkloadEndpoint/ns/a", pod("1", "v1"));
    const [created] = hub.flush().filter((b) => b.view === "felix");
    // A create has no base: the patch encoding is the plain one, the same Buffer.
    expect(created!.shared!.frame(DeltaEncoding.patch)).toBe(created!.shared!.frame(DeltaEncoding.plain));
    hub.upsert("WorkloadEndpoint/ns/a", pod("2", "v2"));
    hub.upsert("WorkloadEndpoint/ns/a", pod("3", "v3")); // coalesced: the patch is against the pre-batch value
    hub.upsert("WorkloadEndpoint/ns/b", pod("4", "v1"));
    const [updated] = hub.flush().filter((b) => b.view === "felix");
    const patched = decodeDeltasFrame(updated!.shared!.frame(DeltaEncoding.patch | DeltaEncoding.deflate));
    expect(patched.changes).toEqual([
      {
        k: "WorkloadEndpoint/ns/a",
        p: { metadata: { resourceVersion: "3", labels: { version: "v3" } } },
        b: "1",
      },
      { k: "WorkloadEndpoint/ns/b", v: pod("4", "v1") },
    ]);
    const state = new Map([["WorkloadEndpoint/ns/a", pod("1", "v1")]]);
    applyChanges(state, patched.changes);
    expect(state.get("WorkloadEndpoint/ns/a")).toEqual(pod("3", "v3"));
    expect(updated!.shared!.frame(DeltaEncoding.patch).byteLength).toBeLessThan(
      updated!.shared!.frame(DeltaEncoding.plain).byteLength,
    );
  });

  it("sends the full value when a merge patch cannot express the change (a field set to null)", () => {
    const hub = new Hub();
    hub.upsert("WorkloadEndpoint/ns/a", pod("1", "v1", { tag: "x" }));
    hub.flush();
    hub.upsert("WorkloadEndpoint/ns/a", pod("2", "v1", { tag: null }));
    const [felix] = hub.flush().filter((b) => b.view === "felix");
    expect(decodeDeltasFrame(felix!.shared!.frame(DeltaEncoding.patch)).changes).toEqual([
      { k: "WorkloadEndpoint/ns/a", v: pod("2", "v1", { tag: null }) },
    ]);
  });

  it("with json-patch-deltas, sends a change inside an array as a JSON Patch; without, as a merge patch", () => {
    const hub = new Hub();
    const profiles = Array.from({ length: 30 }, (_, i) => `ksa.ns.account-${i}`);
    hub.upsert("WorkloadEndpoint/ns/a", pod("1", "v1", { profiles }));
    hub.flush();
    const next = pod("2", "v1", { profiles: profiles.map((p, i) => (i === 17 ? "kns.other" : p)) });
    hub.upsert("WorkloadEndpoint/ns/a", next);
    const [felix] = hub.flush().filter((b) => b.view === "felix");
    const json = DeltaEncoding.patch | DeltaEncoding.jsonPatch | DeltaEncoding.deflate;
    expect(decodeDeltasFrame(felix!.shared!.frame(json)).changes).toEqual([
      {
        k: "WorkloadEndpoint/ns/a",
        j: [
          { op: "replace", path: "/metadata/resourceVersion", value: "2" },
          { op: "replace", path: "/spec/profiles/17", value: "kns.other" },
        ],
        b: "1",
      },
    ]);
    const merge = decodeDeltasFrame(felix!.shared!.frame(DeltaEncoding.patch | DeltaEncoding.deflate));
    expect(merge.changes).toEqual([
      {
        k: "WorkloadEndpoint/ns/a",
        p: { metadata: { resourceVersion: "2" }, spec: { profiles: next.spec.profiles } },
        b: "1",
      },
    ]);
    // The JSON Patch is the smaller; a JSON Patch bit without patches is the plain frame.
    expect(felix!.shared!.frame(json).byteLength).toBeLessThan(
      felix!.shared!.frame(DeltaEncoding.patch | DeltaEncoding.deflate).byteLength,
    );
    expect(felix!.shared!.frame(DeltaEncoding.jsonPatch)).toBe(felix!.shared!.frame(DeltaEncoding.plain));
    const state = new Map([["WorkloadEndpoint/ns/a", pod("1", "v1", { profiles })]]);
    applyChanges(state, decodeDeltasFrame(felix!.shared!.frame(json)).changes);
    expect(state.get("WorkloadEndpoint/ns/a")).toEqual(next);
  });

  it("keeps the merge patch when it is the smaller (a label change)", () => {
    const hub = new Hub();
    hub.upsert("WorkloadEndpoint/ns/a", pod("1", "v1"));
    hub.flush();
    hub.upsert("WorkloadEndpoint/ns/a", pod("2", "v2"));
    const [felix] = hub.flush().filter((b) => b.view === "felix");
    const json = DeltaEncoding.patch | DeltaEncoding.jsonPatch;
    expect(decodeDeltasFrame(felix!.shared!.frame(json)).changes).toEqual([
      {
        k: "WorkloadEndpoint/ns/a",
        p: { metadata: { resourceVersion: "2", labels: { version: "v2" } } },
        b: "1",
      },
    ]);
  });
});

describe("Hub catch-up limit", () => {
  it("refuses a catch-up longer than a quarter of the view (at least 1000), so a snapshot is used", () => {
    const hub = new Hub();
    const pool = (i: number, x: number) => ({ metadata: { name: `p${i}` }, spec: { x } });
    for (let i = 0; i < 4000; i++) hub.upsert(`IPPool/p${i}`, pool(i, 0));
    hub.flush();
    const start = hub.revision;
    for (let i = 0; i < 900; i++) hub.upsert(`IPPool/p${i}`, pool(i, 1));
    hub.flush();
    expect(hub.canResume("felix", start)).toBe(true);
    expect(hub.catchUp("felix", undefined, start)?.length).toBe(1);
    for (let i = 900; i < 1200; i++) hub.upsert(`IPPool/p${i}`, pool(i, 1));
    hub.flush();
    expect(hub.canResume("felix", start)).toBe(false);
    expect(hub.catchUp("felix", undefined, start)).toBeUndefined();
    // A recent revision still resumes; a snapshot built now is current.
    expect(hub.canResume("felix", start + 900)).toBe(true);
    expect(hub.snapshot("felix", 0, 0).revision).toBe(hub.revision);
  });

  it("keeps no more log entries than the longest catch-up it serves, and still resumes within it", () => {
    const hub = new Hub();
    const pool = (i: number, x: number) => ({ metadata: { name: `p${i}` }, spec: { x } });
    for (let i = 0; i < 8000; i++) hub.upsert(`IPPool/p${i}`, pool(i, 0));
    hub.flush();
    // The initial list is trimmed to a quarter of the view: a client at revision 0 takes a snapshot.
    expect(hub.log("felix").size).toBe(2000);
    expect(hub.canResume("felix", 0)).toBe(false);
    for (let round = 1; round <= 5; round++) {
      for (let i = 0; i < 1500; i++) hub.upsert(`IPPool/p${i}`, pool(i, round));
      hub.flush();
      expect(hub.log("felix").size).toBe(2000);
    }
    // 2000 entries back is the oldest revision that resumes; one more is refused, as before the trim.
    const oldest = hub.log("felix").floor;
    expect(hub.canResume("felix", oldest)).toBe(true);
    expect(hub.log("felix").countAfter(oldest)).toBe(2000);
    expect(hub.canResume("felix", oldest - 1)).toBe(false);
    const catchUp = hub.catchUp("felix", undefined, oldest);
    expect(catchUp?.reduce((n, f) => n + f.count, 0)).toBe(1500);
  });
});

/** A hub holding `count` IPPools `p0`… at `x` 0, flushed, and how to make one. */
function hubOfPools(count: number): { hub: Hub; pool: (i: number, x: number) => ResourceValue } {
  const hub = new Hub();
  const pool = (i: number, x: number): ResourceValue => ({ metadata: { name: `p${i}` }, spec: { x } });
  for (let i = 0; i < count; i++) hub.upsert(`IPPool/p${i}`, pool(i, 0));
  hub.flush();
  return { hub, pool };
}

describe("Hub log pins (a snapshot being sent)", () => {
  it("keep the changes after a pinned snapshot past the catch-up limit, for the catch-up after it only", () => {
    const { hub, pool } = hubOfPools(4000);
    const snapshot = hub.snapshot("felix", 0, 0);
    const unpin = hub.pinLog("felix", snapshot.revision);
    const other = hub.revision;
    // 1500 changes while the snapshot streams: past the limit (1000, a quarter of 4000).
    for (let i = 0; i < 1500; i++) hub.upsert(`IPPool/p${i}`, pool(i, 1));
    hub.flush();
    expect(hub.log("felix").size).toBe(1500);
    // A resume from there is refused as before (a snapshot is cheaper for it)...
    expect(hub.catchUp("felix", undefined, other)).toBeUndefined();
    // ...but the session that was just sent the snapshot is caught up, to exactly the head's state.
    const frames = hub.catchUp("felix", undefined, snapshot.revision, true);
    expect(frames?.reduce((n, f) => n + f.count, 0)).toBe(1500);
    expect(frames?.at(-1)?.to).toBe(hub.revision);
    const state = new Map<string, unknown>();
    for (const chunk of snapshot.chunkEntries) {
      for (const e of chunk) {
        const { k, v } = decodeValue(e) as { k: string; v: unknown };
        state.set(k, v);
      }
    }
    for (const f of frames ?? []) {
      for (const c of decodeDeltasFrame(f.frame(DeltaEncoding.plain)).changes) state.set(c.k, c.v);
    }
    expect(state.get("IPPool/p0")).toEqual(pool(0, 1));
    expect(state.get("IPPool/p1499")).toEqual(pool(1499, 1));
    expect(state.get("IPPool/p1500")).toEqual(pool(1500, 0));
    // Released, the log is trimmed to the limit at the next flush, and the late catch-up is refused.
    unpin();
    unpin();
    hub.upsert("IPPool/p3999", pool(3999, 1));
    hub.flush();
    expect(hub.log("felix").size).toBe(1000);
    expect(hub.catchUp("felix", undefined, snapshot.revision, true)).toBeUndefined();
  });

  it("catch a session up from the snapshot it was sent with patches against the snapshot's values", () => {
    const hub = new Hub();
    const pool = (i: number, rv: number, x: number) => ({
      metadata: { name: `p${i}`, resourceVersion: String(rv) },
      spec: { cidr: `10.${i % 250}.0.0/16`, x, pad: "y".repeat(200) },
    });
    for (let i = 0; i < 40; i++) hub.upsert(`IPPool/p${i}`, pool(i, 1, 0));
    hub.flush();
    const snapshot = hub.snapshot("felix", 0, 0);
    const state = new Map<string, ResourceValue>();
    for (const chunk of snapshot.chunkEntries) {
      for (const e of chunk) {
        const { k, v } = decodeValue(e) as { k: string; v: ResourceValue };
        state.set(k, v);
      }
    }
    // Two rounds of updates to the same keys, a delete and a create while the snapshot streams.
    for (let round = 2; round <= 3; round++) {
      for (let i = 0; i < 10; i++) hub.upsert(`IPPool/p${i}`, pool(i, round, round));
      hub.flush();
    }
    hub.delete("IPPool/p20");
    hub.upsert("IPPool/new", pool(99, 5, 1));
    hub.flush();
    const frames = hub.catchUpFromSnapshot(snapshot)!;
    expect(frames.reduce((n, f) => n + f.count, 0)).toBe(12);
    const patched = frames.flatMap((f) => decodeDeltasFrame(f.frame(DeltaEncoding.patch)).changes);
    const full = frames.flatMap((f) => decodeDeltasFrame(f.frame(DeltaEncoding.plain)).changes);
    // Every update is a patch on the snapshot's value (resourceVersion 1); the delete and the create are not.
    expect(patched.filter(isPatchEntry).map((c) => [c.k, c.b])).toEqual(
      Array.from({ length: 10 }, (_, i) => [`IPPool/p${i}`, "1"]),
    );
    expect(encodeValue(patched).byteLength).toBeLessThan(encodeValue(full).byteLength / 2);
    applyChanges(state, patched);
    expect(state.get("IPPool/p3")).toEqual(pool(3, 3, 3));
    expect(state.has("IPPool/p20")).toBe(false);
    expect(state.get("IPPool/new")).toEqual(pool(99, 5, 1));
    expect(state.size).toBe(40);
    // A view with node-scoped kinds has none (its catch-up stays per node, in full values).
    expect(hub.catchUpFromSnapshot(hub.snapshot("bgp", 0, 0))).toBeUndefined();
  });

  it("without a pin, the catch-up after a snapshot is refused once the log was trimmed past it", () => {
    const { hub, pool } = hubOfPools(4000);
    const snapshot = hub.snapshot("felix", 0, 0);
    for (let i = 0; i < 1500; i++) hub.upsert(`IPPool/p${i}`, pool(i, 1));
    hub.flush();
    expect(hub.log("felix").size).toBe(1000);
    expect(hub.catchUp("felix", undefined, snapshot.revision, true)).toBeUndefined();
  });
});

describe("viewStatus", () => {
  it("is syncing until every kind is listed, stale when any kind is stale, else in sync", () => {
    const states = new Map<string, KindState>([["CalicoNodeStatus", { state: "syncing", since: 5 }]]);
    expect(viewStatus("node-status", states).state).toBe("syncing");
    expect(viewStatus("tunnel-ip-allocation", new Map()).kinds).toEqual(["IPPool", "Node"]);
    states.set("CalicoNodeStatus", { state: "in-sync", since: 7 });
    expect(viewStatus("node-status", states)).toEqual({ state: "in-sync", since: 7 });
    states.set("CalicoNodeStatus", { state: "stale", since: 9, reason: "watch failing" });
    expect(viewStatus("node-status", states)).toMatchObject({
      state: "stale",
      since: 9,
      kinds: ["CalicoNodeStatus"],
    });
  });
});

describe("negotiateVersion", () => {
  it("picks the highest common version or null", () => {
    expect(negotiateVersion([1, 99])).toBe(PROTOCOL_VERSION_MAX);
    expect(negotiateVersion([PROTOCOL_VERSION_MAX + 1, PROTOCOL_VERSION_MAX + 3])).toBeNull();
    expect(negotiateVersion([0, 0])).toBeNull();
  });
});
