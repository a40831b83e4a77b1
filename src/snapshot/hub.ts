import { LRUCache } from "lru-cache";
import { encodeMessage } from "../../proto/codec.js";
import { assembleSnapshotChunk, encodeEntry } from "../../proto/frame-builder.js";
import { VIEW_NAMES } from "../../proto/messages.js";
import type { ResourceValue, ResumeState, ViewName } from "../../proto/messages.js";
import { ChangeLog } from "./change-log.js";
import { DeltaFrames } from "./delta-frames.js";
import type { PatchedChanges } from "./delta-frames.js";
import { DigestHistory } from "./digest-history.js";
import { decideReplicaResume } from "./replica-resume.js";
import type { ReplicaResumeDecision, ReplicaState } from "./replica-resume.js";
import { encodeJsonPatchEntry, encodePatchEntry } from "./patch-entry.js";
import { isNodeScoped, perView, VIEWS, viewsOfKind } from "./kinds.js";
import type { PerView } from "./kinds.js";
import type { PreparedValue } from "./prepared.js";
import { digestHex, domainOf, fnv1a64Parts } from "./state-digest.js";
import { decodeStored, Store } from "./store.js";
import type { Change } from "./store.js";

export interface HubOptions {
  /**
   * Most changes each view's log keeps. Default 100,000. The log never keeps more than the longest
   * catch-up it serves (maxCatchUpFraction of the view, at least 1000 entries): older entries could not
   * be used.
   */
  readonly maxLogEntries?: number;
  /** Most encoded bytes each view's log keeps. Default 64 MiB. */
  readonly maxLogBytes?: number;
  /** Bytes of encoded snapshots kept for reuse, all views together. Default 64 MiB. */
  readonly snapshotCacheBytes?: number;
  /** Target size of one snapshot chunk frame, in bytes. Default 256 KiB. */
  readonly snapshotChunkBytes?: number;
  /** Most changes in one catch-up (resume) frame. Default 1000. */
  readonly maxChangesPerFrame?: number;
  /**
   * A catch-up (resume, or a lagging session) longer than this fraction of the view's entries (and than
   * 1000 changes) is refused: the shared, cached, compressed snapshot is cheaper than a private catch-up
   * of that size. Default 0.25.
   */
  readonly maxCatchUpFraction?: number;
  /**
   * Identifies how upstream objects become values here (conversion code and options): a state digest
   * from a replica with another id proves nothing (PROTOCOL.md §5.2). Default DEFAULT_CONVERSION_ID.
   */
  readonly conversionId?: string;
}

/** The conversion id of a hub whose options do not name one. */
export const DEFAULT_CONVERSION_ID = "tabby-1";

/** The frames one flush produced for one view. */
export interface ViewBatch {
  readonly view: ViewName;
  readonly from: number;
  readonly to: number;
  /** For every session whose node has no node-scoped change in this batch. Null: no broadcast change. */
  readonly shared: DeltaFrames | null;
  /** For sessions of these nodes: the shared changes plus that node's own. */
  readonly byNode: ReadonlyMap<string, DeltaFrames>;
  /** Broadcast changes in the batch. */
  readonly changes: number;
}

/** The frames of `batch` for a session on `node` (undefined: none of the batch concerns it). */
export function framesFor(batch: ViewBatch, node: string | undefined): DeltaFrames | null {
  return node === undefined ? batch.shared : (batch.byNode.get(node) ?? batch.shared);
}

/** A key's value before a batch: its encoding, and the value itself when the store already decoded it. */
interface PatchBase {
  readonly encoded: Buffer;
  readonly value: ResourceValue | undefined;
}

/** What a patch is made from: the key, its new value (null: a delete; undefined: decode `encoded`). */
type PatchableChange = Pick<Change, "key" | "value" | "encoded">;

/** A key's entry in a batch with merge patches only, and with JSON Patches allowed too. */
interface PatchForms {
  readonly merged: Buffer;
  readonly withJson: Buffer;
}

/**
 * The patch forms of a batch's broadcast changes, computed once per key (a change may reach several
 * views) and only when some view's frame is first asked for a patch encoding. Both forms of a key are
 * made at once from one decoding of its old and new values, which are then let go: kept until the other
 * form is asked for, later in the fan-out, they outlived the young generation and were most of what the
 * server promoted to the old space under churn (docs/BENCHMARKS.md, "Server memory under churn").
 */
class PatchMemo {
  readonly #bases: ReadonlyMap<string, PatchBase | undefined>;
  readonly #forms = new Map<string, PatchForms>();

  constructor(bases: ReadonlyMap<string, PatchBase | undefined>) {
    this.#bases = bases;
  }

  /** The changes with patches where smaller, or undefined when none of them can have one. */
  of(changes: readonly PatchableChange[]): PatchedChanges | undefined {
    if (!changes.some((c) => c.value !== null && this.#bases.get(c.key) !== undefined)) return undefined;
    return (isJsonAllowed) => changes.map((c) => this.#entry(c, isJsonAllowed));
  }

  #entry(c: PatchableChange, isJsonAllowed: boolean): Buffer {
    const base = this.#bases.get(c.key);
    if (c.value === null || base === undefined) return c.encoded;
    let forms = this.#forms.get(c.key);
    if (forms === undefined) {
      // The base was decoded already when the store compared against it (its first change in the batch).
      const before = base.value ?? decodeStored(base.encoded);
      const next = c.value ?? decodeStored(c.encoded);
      // The merge-only entry (full value or merge patch) is the one a JSON Patch must beat.
      const merged = encodePatchEntry(c.key, before, next, c.encoded.byteLength) ?? c.encoded;
      const json = encodeJsonPatchEntry(c.key, before, next);
      forms = { merged, withJson: json !== undefined && json.byteLength < merged.byteLength ? json : merged };
      this.#forms.set(c.key, forms);
    }
    return isJsonAllowed ? forms.withJson : forms.merged;
  }
}

/**
 * A view's broadcast content at one revision, in chunks ready to send. Shared by every session. Holds the
 * chunks' pre-encoded entries (the store's own buffers); the uncompressed chunk frames are assembled only
 * when a session without "deflate-snapshot" first asks for them (a compressed variant is made from the
 * entries by the sender), so a server whose clients all compress never holds them.
 */
export class EncodedSnapshot {
  readonly view: ViewName;
  readonly revision: number;
  /** Broadcast entries (node-scoped entries are added per session). */
  readonly count: number;
  /** The pre-encoded entries of each chunk. */
  readonly chunkEntries: readonly (readonly Buffer[])[];
  /**
   * The store revision of each entry of each chunk (the change that last set it). Revisions are unique
   * per change, so two chunks with the same revisions in the same order hold the same bytes: the sender
   * reuses a chunk's compressed form across builds by comparing these (SnapshotSender).
   */
  readonly chunkRevisions: readonly (readonly number[])[];
  /** The key of every entry, in chunk order (what the chunks hold, without reading their bytes). */
  readonly keys: readonly string[];
  /** Bytes of the uncompressed chunk frames (assembled or not). */
  readonly bytes: number;
  readonly createdAtMs: number;
  #chunks: readonly Buffer[] | undefined;

  constructor(init: {
    view: ViewName;
    revision: number;
    count: number;
    chunkEntries: readonly (readonly Buffer[])[];
    chunkRevisions: readonly (readonly number[])[];
    keys: readonly string[];
    createdAtMs: number;
  }) {
    this.view = init.view;
    this.revision = init.revision;
    this.count = init.count;
    this.chunkEntries = init.chunkEntries;
    this.chunkRevisions = init.chunkRevisions;
    this.keys = init.keys;
    this.createdAtMs = init.createdAtMs;
    this.bytes = init.chunkEntries.reduce(
      (n, entries, index) => n + chunkFrameOverhead(index, entries.length) + byteLength(entries),
      0,
    );
  }

  get chunkCount(): number {
    return this.chunkEntries.length;
  }

  /** The uncompressed chunk frames, assembled on first use and kept with the snapshot. */
  get chunks(): readonly Buffer[] {
    this.#chunks ??= this.chunkEntries.map((entries, index) => assembleSnapshotChunk(index, entries));
    return this.#chunks;
  }

  get hasAssembledChunks(): boolean {
    return this.#chunks !== undefined;
  }
}

function byteLength(buffers: readonly Buffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}

/** The bytes assembleSnapshotChunk adds around its entries: the map with `t` and `index`, the array header. */
function chunkFrameOverhead(index: number, entries: number): number {
  const indexBytes = index < 0x80 ? 1 : index < 0x100 ? 2 : index < 0x10000 ? 3 : 5;
  const arrayHeader = entries < 16 ? 1 : entries < 0x10000 ? 3 : 5;
  return 28 + indexBytes + arrayHeader;
}

/** The frames that open one session's snapshot: begin and end wrap the shared chunks and the node chunk. */
export interface SessionSnapshotFrames {
  readonly begin: Buffer;
  /** This node's node-scoped entries, as the last chunk (index = shared chunk count), or null. */
  readonly nodeChunk: Buffer | null;
  readonly end: Buffer;
  /** Entries in the whole snapshot, node chunk included. */
  readonly count: number;
}

export interface HubCounters {
  readonly snapshotsBuilt: Readonly<Record<ViewName, number>>;
  readonly snapshotsReused: Readonly<Record<ViewName, number>>;
}

/**
 * The snapshot core: the store, one change log per view, the batch of changes not yet flushed, and the
 * cache of encoded snapshots. Pure: callers pass time in and schedule flushes.
 *
 * Invariant: for every view V, node N and revision R that `canResume(V, R)`, the snapshot of V at R for N,
 * followed by `catchUp(V, N, R)`, gives exactly V at the flushed head for N.
 */
export class Hub {
  readonly store = new Store();
  readonly #logs: PerView<ChangeLog>;
  readonly #entriesOfSnapshot = new WeakMap<EncodedSnapshot, ReadonlyMap<string, Buffer>>();
  /**
   * Per view, the revisions of the snapshots being sent and not yet caught up (revision → how many): the
   * log keeps what brings a session from there to the head, whatever the catch-up limit (pinLog).
   */
  readonly #logPins = perView(() => new Map<number, number>());
  readonly #pending: Change[] = [];
  #flushed = 0;
  readonly #snapshots: LRUCache<string, EncodedSnapshot>;
  readonly #latestSnapshot = perView<string | undefined>(() => undefined);
  readonly #chunkBytes: number;
  readonly #maxChangesPerFrame: number;
  readonly #maxCatchUpFraction: number;
  readonly #counters = {
    snapshotsBuilt: perView(() => 0),
    snapshotsReused: perView(() => 0),
  };
  readonly #digests: DigestHistory;
  readonly conversionId: string;

  constructor(options: HubOptions = {}) {
    const maxEntries = options.maxLogEntries ?? 100_000;
    const maxBytes = options.maxLogBytes ?? 64 * 1024 * 1024;
    this.#logs = perView(() => new ChangeLog({ maxEntries, maxBytes }));
    // Two left states per log entry at most (an owner move touches two domains), and the entry at the floor.
    this.#digests = new DigestHistory(2 * maxEntries + 2);
    this.conversionId = options.conversionId ?? DEFAULT_CONVERSION_ID;
    this.#snapshots = new LRUCache<string, EncodedSnapshot>({
      maxSize: options.snapshotCacheBytes ?? 64 * 1024 * 1024,
      sizeCalculation: (s) => Math.max(1, s.bytes),
    });
    this.#chunkBytes = options.snapshotChunkBytes ?? 256 * 1024;
    this.#maxChangesPerFrame = options.maxChangesPerFrame ?? 1000;
    this.#maxCatchUpFraction = options.maxCatchUpFraction ?? 0.25;
    if (!(this.#maxCatchUpFraction > 0)) throw new RangeError("maxCatchUpFraction must be positive");
    if (!(this.#chunkBytes >= 1)) throw new RangeError("snapshotChunkBytes must be at least 1");
    if (!(this.#maxChangesPerFrame >= 1)) throw new RangeError("maxChangesPerFrame must be at least 1");
  }

  /** The revision every session can be brought to: the head as of the last flush. */
  get revision(): number {
    return this.#flushed;
  }

  /** Changes applied to the store but not flushed yet. */
  get pendingCount(): number {
    return this.#pending.length;
  }

  get counters(): HubCounters {
    return this.#counters;
  }

  log(view: ViewName): ChangeLog {
    return this.#logs[view];
  }

  /** Applies an upsert; returns false when the value was unchanged (skipped). */
  upsert(key: string, value: ResourceValue): boolean {
    return this.#record(this.store.upsert(key, value));
  }

  /** Applies an upsert of a prepared value (Store.upsertPrepared); returns false when it was unchanged. */
  upsertPrepared(key: string, prepared: PreparedValue): boolean {
    return this.#record(this.store.upsertPrepared(key, prepared));
  }

  /** Applies a delete; returns false when the key was absent. */
  delete(key: string): boolean {
    return this.#record(this.store.delete(key));
  }

  #record(change: Change | null): boolean {
    if (change === null) return false;
    if (viewsOfKind(change.kind).length > 0) this.#digests.apply(change);
    this.#pending.push(change);
    return true;
  }

  /**
   * Turns the pending changes into one frame per view (plus one per node with node-scoped changes),
   * appends them to the views' logs, and advances the flushed revision. Broadcast changes to a key that
   * had a value before the batch also get a patch form (built only if a session asks for it).
   */
  flush(): ViewBatch[] {
    if (this.#pending.length === 0) return [];
    const from = this.#flushed;
    const to = this.store.revision;
    /** Per key: its value's encoding before the batch (what an in-step session holds). */
    const bases = new Map<string, PatchBase | undefined>();
    const shared = new Map<ViewName, Map<string, Change>>();
    const nodes = new Map<ViewName, Map<string, Map<string, Buffer>>>();
    for (const change of this.#pending) {
      if (!bases.has(change.key)) {
        const encoded = change.prevEncoded;
        bases.set(change.key, encoded === undefined ? undefined : { encoded, value: change.prevValue });
      }
      for (const view of viewsOfKind(change.kind)) {
        const log = this.#logs[view];
        if (!isNodeScoped(view, change.kind)) {
          // Built field by field: a log entry must not keep the change's value object alive.
          log.append({
            revision: change.revision,
            key: change.key,
            encoded: change.encoded,
            isNodeScoped: false,
            node: undefined,
            prevNode: undefined,
            prevEncoded: undefined,
            isDelete: change.value === null,
          });
          setLast(
            getOrMake(shared, view, () => new Map<string, Change>()),
            change.key,
            change,
          );
          continue;
        }
        const prevEncoded =
          change.prevNode === undefined ? undefined : encodeEntry({ k: change.key, v: null });
        log.append({
          revision: change.revision,
          key: change.key,
          encoded: change.encoded,
          isNodeScoped: true,
          node: change.node,
          prevNode: change.prevNode,
          prevEncoded,
        });
        const byNode = getOrMake(nodes, view, () => new Map<string, Map<string, Buffer>>());
        if (change.node !== undefined)
          setLast(
            getOrMake(byNode, change.node, () => new Map<string, Buffer>()),
            change.key,
            change.encoded,
          );
        if (change.prevNode !== undefined && prevEncoded !== undefined) {
          setLast(
            getOrMake(byNode, change.prevNode, () => new Map<string, Buffer>()),
            change.key,
            prevEncoded,
          );
        }
      }
    }
    this.#pending.length = 0;
    this.#flushed = to;
    const patches = new PatchMemo(bases);
    const batches: ViewBatch[] = [];
    for (const view of VIEW_NAMES) {
      this.#logs[view].advance(to);
      this.#logs[view].trimTo(this.#logKeep(view));
      const sharedChanges = [...(shared.get(view)?.values() ?? [])];
      const viewNodes = nodes.get(view);
      if (sharedChanges.length === 0 && viewNodes === undefined) continue;
      const full = sharedChanges.map((c) => c.encoded);
      const patched = patches.of(sharedChanges);
      const sharedFrames = full.length > 0 ? new DeltaFrames(from, to, full, patched) : null;
      const byNode = new Map<string, DeltaFrames>();
      for (const [node, own] of viewNodes ?? []) {
        const ownFull = [...own.values()];
        byNode.set(
          node,
          new DeltaFrames(
            from,
            to,
            [...full, ...ownFull],
            patched === undefined ? undefined : (isJson) => [...patched(isJson), ...ownFull],
          ),
        );
      }
      batches.push({ view, from, to, shared: sharedFrames, byNode, changes: sharedChanges.length });
    }
    // A state left at or below the floor of every view of its kind can never be caught up from: forget it.
    for (const kind of this.#digests.kinds()) {
      let floor = Number.POSITIVE_INFINITY;
      for (const view of viewsOfKind(kind)) floor = Math.min(floor, this.#logs[view].floor);
      this.#digests.forgetBelow(kind, floor);
    }
    return batches;
  }

  /**
   * Decides whether a client holding `state` (digests of a mirror built on any replica) for `view` on
   * `node` can be brought to the flushed head from the log alone, and if so gives the frames (all `from`
   * `base`, the last one `to` the head; at least one): `base` is the client's revision when the token is
   * this server's own, else 0. Throws if changes are pending: flush first.
   */
  resumeFromState(
    view: ViewName,
    node: string | undefined,
    state: ReplicaState,
    base = 0,
  ): ReplicaResumeDecision {
    if (this.#pending.length > 0) throw new Error("Hub.resumeFromState: flush pending changes first");
    return decideReplicaResume({
      view,
      node,
      state,
      conversionId: this.conversionId,
      log: this.#logs[view],
      digests: this.#digests,
      head: this.#flushed,
      base,
      maxEntries: this.#catchUpLimit(view),
      maxChangesPerFrame: this.#maxChangesPerFrame,
    });
  }

  /**
   * The digests of `view` on `node` at the flushed head, as a client holding that view computes them
   * (PROTOCOL.md §5.2): what a session that has been sent everything up to the head holds. Undefined for a
   * node-scoped view without a node. Throws if changes are pending: flush first.
   */
  stateOf(view: ViewName, node: string | undefined): ResumeState | undefined {
    if (this.#pending.length > 0) throw new Error("Hub.stateOf: flush pending changes first");
    const kinds: Record<string, readonly [number, string]> = {};
    for (const kind of VIEWS[view].kinds) {
      const domain = domainOf(kind, node);
      if (domain === undefined) return undefined;
      const d = this.#digests.current(domain);
      kinds[kind] = [d.count, digestHex(d)];
    }
    return { conversion: this.conversionId, view, ...(node !== undefined && { node }), kinds };
  }

  /**
   * True when a client of `view` at `revision` can be brought to the head from the log alone, with a
   * catch-up no longer than maxCatchUpFraction of the view (else a snapshot is the cheaper way).
   */
  canResume(view: ViewName, revision: number): boolean {
    const log = this.#logs[view];
    if (!log.canResume(revision)) return false;
    return log.countAfter(revision) <= this.#catchUpLimit(view);
  }

  /** The longest catch-up (in log entries) served from the log; the log keeps no more than this. */
  #catchUpLimit(view: ViewName): number {
    return Math.max(1000, Math.ceil(this.#maxCatchUpFraction * this.#viewSize(view)));
  }

  /** The entries the log of `view` keeps at most: the longest catch-up, or more for a pinned snapshot. */
  #logKeep(view: ViewName): number {
    let keep = this.#catchUpLimit(view);
    const log = this.#logs[view];
    for (const revision of this.#logPins[view].keys()) {
      if (log.canResume(revision)) keep = Math.max(keep, log.countAfter(revision));
    }
    return keep;
  }

  /**
   * Keeps the log of `view` able to bring a session from `revision` (a snapshot being sent) to the head,
   * past the catch-up limit (the log's own bounds, maxLogEntries and maxLogBytes, still hold): a session
   * whose snapshot took longer to stream than the limit's worth of changes would otherwise be refused its
   * catch-up and sent a snapshot again, which takes as long (catchUp with `isAfterSnapshot`). Returns the
   * release (idempotent).
   */
  pinLog(view: ViewName, revision: number): () => void {
    const pins = this.#logPins[view];
    pins.set(revision, (pins.get(revision) ?? 0) + 1);
    let isPinned = true;
    return () => {
      if (!isPinned) return;
      isPinned = false;
      const n = (pins.get(revision) ?? 1) - 1;
      if (n > 0) pins.set(revision, n);
      else pins.delete(revision);
    };
  }

  #viewSize(view: ViewName): number {
    let n = 0;
    for (const kind of VIEWS[view].kinds) n += this.store.countOfKind(kind);
    return n;
  }

  /**
   * The frames that bring a session of `view` for `node` from `revision` to the flushed head: the changes
   * coalesced per key, split into frames of at most maxChangesPerFrame (all but the last keep `to` at
   * `revision`). Empty when already at the head; undefined when `canResume` is false, or with
   * `isAfterSnapshot` (the session was just sent the snapshot at `revision`: another snapshot would not be
   * cheaper, only as slow) when the log no longer covers `revision` at all.
   */
  catchUp(
    view: ViewName,
    node: string | undefined,
    revision: number,
    isAfterSnapshot = false,
  ): DeltaFrames[] | undefined {
    const isCovered = isAfterSnapshot ? this.#logs[view].canResume(revision) : this.canResume(view, revision);
    if (!isCovered) return undefined;
    const changes = this.#logs[view].since(revision, node);
    if (changes === undefined) return undefined;
    if (this.#flushed === revision) return [];
    // Full values only: the session's values are older than any batch's base.
    return this.#catchUpFrames(revision, changes, (from, to, slice) => new DeltaFrames(from, to, slice));
  }

  /**
   * `items` split into frames from `revision` of at most maxChangesPerFrame, all but the last with `to` at
   * `revision` and the last at the flushed head; at least one frame, so that a client learns it reached
   * the head even when nothing of its view changed. `frame` makes one frame of a slice.
   */
  #catchUpFrames<T>(
    revision: number,
    items: readonly T[],
    frame: (from: number, to: number, slice: readonly T[]) => DeltaFrames,
  ): DeltaFrames[] {
    const frames: DeltaFrames[] = [];
    for (let i = 0; i < items.length || frames.length === 0; i += this.#maxChangesPerFrame) {
      const isLast = i + this.#maxChangesPerFrame >= items.length;
      frames.push(
        frame(revision, isLast ? this.#flushed : revision, items.slice(i, i + this.#maxChangesPerFrame)),
      );
    }
    return frames;
  }

  /**
   * The catch-up for a session that was just sent `snapshot`: the changes since, coalesced per key, as
   * catchUp with `isAfterSnapshot` gives them, but with patches (PROTOCOL.md §6.6) where smaller, made
   * against the values the session holds, the snapshot's own. A storm's sessions finish their snapshots
   * long after it was built, with seconds of churn to catch up; in full values that was a third of the
   * storm's bytes. Undefined when the view has node-scoped kinds or the log no longer covers the snapshot.
   */
  catchUpFromSnapshot(snapshot: EncodedSnapshot): DeltaFrames[] | undefined {
    const { view, revision } = snapshot;
    if (VIEWS[view].nodeScopedKinds.size > 0) return undefined;
    const changes = this.#logs[view].sinceKeyed(revision);
    if (changes === undefined) return undefined;
    if (this.#flushed === revision) return [];
    const held = this.#snapshotEntries(snapshot);
    const bases = new Map<string, PatchBase | undefined>();
    const patchable: PatchableChange[] = changes.map((c) => {
      const encoded = held.get(c.key);
      bases.set(c.key, encoded === undefined ? undefined : { encoded, value: undefined });
      return { key: c.key, encoded: c.encoded, value: c.isDelete ? null : undefined };
    });
    const memo = new PatchMemo(bases);
    return this.#catchUpFrames(
      revision,
      patchable,
      (from, to, slice) =>
        new DeltaFrames(
          from,
          to,
          slice.map((c) => c.encoded),
          memo.of(slice),
        ),
    );
  }

  /** The encoded entry of every key in `snapshot`'s broadcast chunks (read once per snapshot). */
  #snapshotEntries(snapshot: EncodedSnapshot): ReadonlyMap<string, Buffer> {
    const cached = this.#entriesOfSnapshot.get(snapshot);
    if (cached !== undefined) return cached;
    const map = new Map<string, Buffer>();
    let i = 0;
    for (const chunk of snapshot.chunkEntries) {
      for (const entry of chunk) map.set(snapshot.keys[i++] as string, entry);
    }
    this.#entriesOfSnapshot.set(snapshot, map);
    return map;
  }

  /**
   * The encoded broadcast snapshot of `view`. Reuses the latest one while it is younger than `maxAgeMs`
   * (or still current) and the log can still carry a session from it to the head; otherwise builds one
   * at the flushed revision. Throws if changes are pending: flush (and send the batches) first.
   */
  snapshot(view: ViewName, nowMs: number, maxAgeMs: number): EncodedSnapshot {
    const reusable = this.#reusableSnapshot(view, nowMs, maxAgeMs);
    if (reusable !== undefined) {
      this.#counters.snapshotsReused[view]++;
      return reusable;
    }
    if (this.#pending.length > 0) throw new Error("Hub.snapshot: flush pending changes first");
    const built = this.#build(view, nowMs);
    this.#snapshots.set(`${view}@${built.revision}`, built);
    this.#latestSnapshot[view] = `${view}@${built.revision}`;
    this.#counters.snapshotsBuilt[view]++;
    return built;
  }

  /** True when `snapshot()` with these arguments would reuse the cached one (no flush needed first). */
  hasReusableSnapshot(view: ViewName, nowMs: number, maxAgeMs: number): boolean {
    return this.#reusableSnapshot(view, nowMs, maxAgeMs) !== undefined;
  }

  #reusableSnapshot(view: ViewName, nowMs: number, maxAgeMs: number): EncodedSnapshot | undefined {
    const latestKey = this.#latestSnapshot[view];
    const latest = latestKey === undefined ? undefined : this.#snapshots.get(latestKey);
    return latest !== undefined && this.#isReusable(latest, nowMs, maxAgeMs) ? latest : undefined;
  }

  /**
   * Drops the cached snapshots that `snapshot()` can no longer give to a session: every one but each
   * view's latest, and the latest too once it is older than `maxAgeMs` and the view has changed since,
   * unless `isInUse` says it is still being sent (a session arriving meanwhile may still reuse it). A
   * cached snapshot pins the encoded values of its revision; under churn the store replaces them, and a
   * kept snapshot would hold up to a whole view's worth of old values (tens of MB for felix) until the
   * next build. Sessions still sending one keep their own reference. Returns how many it dropped.
   */
  pruneSnapshots(nowMs: number, maxAgeMs: number, isInUse: (s: EncodedSnapshot) => boolean): number {
    let dropped = 0;
    for (const [key, s] of [...this.#snapshots.entries()]) {
      const isLatest = this.#latestSnapshot[s.view] === key;
      if (isLatest && (this.#isReusable(s, nowMs, maxAgeMs) || isInUse(s))) continue;
      this.#snapshots.delete(key);
      if (isLatest) this.#latestSnapshot[s.view] = undefined;
      dropped++;
    }
    return dropped;
  }

  /**
   * Whether a session may still be given `s`: the log can carry it from there to the head, and it is
   * younger than `maxAgeMs` or still current (nothing of its view changed since).
   */
  #isReusable(s: EncodedSnapshot, nowMs: number, maxAgeMs: number): boolean {
    return (
      this.canResume(s.view, s.revision) &&
      (nowMs - s.createdAtMs <= maxAgeMs || s.revision >= this.#logs[s.view].lastEntryRevision)
    );
  }

  /** The snapshot last built for `view`, while the cache holds it. */
  latestSnapshot(view: ViewName): EncodedSnapshot | undefined {
    const key = this.#latestSnapshot[view];
    return key === undefined ? undefined : this.#snapshots.peek(key);
  }

  /** The per-session frames around a shared snapshot: begin, this node's chunk, end. */
  sessionFrames(snapshot: EncodedSnapshot, node: string | undefined): SessionSnapshotFrames {
    const def = VIEWS[snapshot.view];
    let nodeChunk: Buffer | null = null;
    let nodeCount = 0;
    if (node !== undefined && def.nodeScopedKinds.size > 0) {
      const own: Buffer[] = [];
      for (const e of this.store.entriesOfNode(node)) {
        if (def.nodeScopedKinds.has(e.kind as never) && e.revision <= snapshot.revision) own.push(e.encoded);
      }
      // Entries changed after the snapshot revision are delivered by the catch-up that follows; an entry
      // that existed at the snapshot revision but changed since is also covered there (coalesced per key).
      if (own.length > 0) {
        nodeCount = own.length;
        nodeChunk = assembleSnapshotChunk(snapshot.chunkCount, own);
      }
    }
    const count = snapshot.count + nodeCount;
    const chunks = snapshot.chunkCount + (nodeChunk === null ? 0 : 1);
    return {
      begin: encodeMessage({ t: "snap-begin", revision: snapshot.revision, count, chunks }),
      nodeChunk,
      end: encodeMessage({ t: "snap-end", revision: snapshot.revision }),
      count,
    };
  }

  /**
   * The view's broadcast entries in chunks of about `snapshotChunkBytes`, cut where the content says
   * (isChunkEnd), not at a byte count from the start: a change to one entry then changes only its own
   * chunk, and the sender can keep the other chunks' compressed bytes from the previous build.
   */
  #build(view: ViewName, nowMs: number): EncodedSnapshot {
    const def = VIEWS[view];
    const chunkEntries: Buffer[][] = [];
    const chunkRevisions: number[][] = [];
    const keys: string[] = [];
    let current: Buffer[] = [];
    let revisions: number[] = [];
    let currentBytes = 0;
    let count = 0;
    for (const kind of def.kinds) {
      if (def.nodeScopedKinds.has(kind)) continue;
      for (const e of this.store.entriesOfKind(kind)) {
        current.push(e.encoded);
        revisions.push(e.revision);
        keys.push(e.key);
        currentBytes += e.encoded.byteLength;
        count++;
        if (isChunkEnd(e.key, e.encoded.byteLength, currentBytes, this.#chunkBytes)) {
          chunkEntries.push(current);
          chunkRevisions.push(revisions);
          current = [];
          revisions = [];
          currentBytes = 0;
        }
      }
    }
    if (current.length > 0) {
      chunkEntries.push(current);
      chunkRevisions.push(revisions);
    }
    return new EncodedSnapshot({
      view,
      revision: this.#flushed,
      count,
      chunkEntries,
      chunkRevisions,
      keys,
      createdAtMs: nowMs,
    });
  }
}

/**
 * Whether a snapshot chunk ends after the entry `key` of `entryBytes`, with `filledBytes` in the chunk
 * so far (that entry included): content-defined, so that chunk boundaries survive changes elsewhere. Past
 * half the target size, each entry ends the chunk with a probability proportional to its size (decided by
 * a hash of its key, not of its value), so that chunks average about `targetBytes`; at twice the target
 * the chunk always ends.
 */
export function isChunkEnd(
  key: string,
  entryBytes: number,
  filledBytes: number,
  targetBytes: number,
): boolean {
  if (filledBytes >= 2 * targetBytes) return true;
  const half = targetBytes / 2;
  if (filledBytes < half) return false;
  return ((fnv1a64Parts(key).lo & 0xffff) + 1) * half <= entryBytes * 65536;
}

function getOrMake<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

function setLast<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
}
