import { applyPatchEntry, JsonPatchError } from "../../proto/json-patch.js";
import { resourceVersionOf } from "../../proto/merge-patch.js";
import { isPatchEntry } from "../../proto/messages.js";
import type { DeltaEntry, ResourceValue } from "../../proto/messages.js";
import { deepEqual } from "../snapshot/deep-equal.js";
import { kindOfKey } from "../snapshot/keys.js";
import type { HeldValues } from "./snapshot-assembler.js";

/** One real change as the application sees it: `value` null is a delete. */
export interface Update {
  /** `Kind/name` or `Kind/namespace/name`. */
  readonly key: string;
  readonly kind: string;
  readonly value: ResourceValue | null;
}

/** A delta frame holds a patch the mirror cannot apply: the client must resync. */
export class MirrorPatchError extends Error {
  override readonly name = "MirrorPatchError";
}

/**
 * The client's copy of a view: key → value, indexed by kind. Every mutation returns the real changes it
 * made (adds, updates to a different value, deletes of present keys) and nothing else, so that replaying an
 * identical state (a resync after failover) yields no change at all.
 *
 * Every value it holds is deeply frozen (`freezeValue`): the application gets the mirror's own objects (in
 * updates, `get`, `list`), and the mirror relies on them being what the server sent: patches apply to them,
 * and a snapshot keeps a held value whose bytes' hash matches without comparing it. A change made by the
 * application would otherwise persist silently, and later patches would build on it; frozen, it throws
 * (ES modules are strict).
 */
export class Mirror implements HeldValues {
  readonly #values = new Map<string, ResourceValue>();
  /**
   * The hash of the bytes a value came from in a snapshot chunk (SnapshotResult.hashes), for the keys whose
   * value has not changed since: the next snapshot skips decoding those bytes (heldIfSame).
   */
  readonly #hashes = new Map<string, string>();
  readonly #byKind = new Map<string, Map<string, ResourceValue>>();
  /** While settling: the value each key had before the first change since (undefined: absent). */
  #before: Map<string, ResourceValue | undefined> | undefined;

  get size(): number {
    return this.#values.size;
  }

  get(key: string): ResourceValue | undefined {
    return this.#values.get(key);
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  heldIfSame(key: string, hash: string): ResourceValue | undefined {
    return this.#hashes.get(key) === hash ? this.#values.get(key) : undefined;
  }

  /** The values of one kind (a fresh array; order unspecified). */
  list(kind: string): ResourceValue[] {
    const values = this.#byKind.get(kind);
    return values === undefined ? [] : [...values.values()];
  }

  /** The keys of one kind, or every key. */
  keys(kind?: string): string[] {
    if (kind === undefined) return [...this.#values.keys()];
    const values = this.#byKind.get(kind);
    return values === undefined ? [] : [...values.keys()];
  }

  /** The kinds with at least one value. */
  kinds(): string[] {
    return [...this.#byKind.keys()];
  }

  /**
   * Applies one frame's deltas in order; returns the real changes. All or nothing: a patch for a value the
   * mirror does not hold at the patch's base resourceVersion, or one that does not apply to it (a JSON
   * Patch path that is not there), throws MirrorPatchError before anything is changed (a frame holds at
   * most one entry per key, so each patch applies to the value held now).
   */
  apply(changes: readonly DeltaEntry[]): Update[] {
    let patched: Map<DeltaEntry, ResourceValue> | undefined;
    for (const change of changes) {
      if (!isPatchEntry(change)) continue;
      const held = this.#values.get(change.k);
      const rv = resourceVersionOf(held);
      if (held === undefined || rv !== change.b) {
        throw new MirrorPatchError(
          held === undefined
            ? `a patch for ${change.k}, which the mirror does not hold`
            : `a patch for ${change.k} at resourceVersion ${change.b}, the mirror holds ${rv ?? "none"}`,
        );
      }
      let next: ResourceValue;
      try {
        next = applyPatchEntry(held, change);
      } catch (err) {
        if (!(err instanceof JsonPatchError)) throw err;
        throw new MirrorPatchError(`a patch for ${change.k} that does not apply: ${err.message}`);
      }
      (patched ??= new Map()).set(change, next);
    }
    const updates: Update[] = [];
    for (const change of changes) {
      this.#hashes.delete(change.k);
      const update = isPatchEntry(change)
        ? this.#set(change.k, patched?.get(change) as ResourceValue)
        : change.v === null
          ? this.#delete(change.k)
          : this.#set(change.k, change.v);
      if (update !== undefined) updates.push(update);
    }
    return updates;
  }

  /**
   * Replaces the whole content with `next` (a complete snapshot) and returns the difference: keys added,
   * keys whose value differs (deep equality), keys that vanished. `hashes`: the hashes of the bytes the
   * values came from (SnapshotResult.hashes), kept for the next snapshot; a key without one keeps none.
   */
  replace(next: ReadonlyMap<string, ResourceValue>, hashes?: ReadonlyMap<string, string>): Update[] {
    const updates: Update[] = [];
    for (const [key, value] of next) {
      const update = this.#set(key, value);
      if (update !== undefined) updates.push(update);
      const hash = hashes?.get(key);
      if (hash === undefined) this.#hashes.delete(key);
      else this.#hashes.set(key, hash);
    }
    // Every key of `next` is now present, so extra keys exist exactly when the mirror is larger.
    if (this.#values.size > next.size) {
      for (const key of [...this.#values.keys()]) {
        if (next.has(key)) continue;
        const update = this.#delete(key);
        if (update !== undefined) updates.push(update);
      }
    }
    return updates;
  }

  /**
   * Starts holding the changes back (idempotent): from now on the mirror remembers, per key, the value it
   * had before its first change, until `settle` returns the net difference. Used while a snapshot older
   * than the server's head is being caught up, so that the application never sees a value go back.
   */
  hold(): void {
    this.#before ??= new Map();
  }

  get isHolding(): boolean {
    return this.#before !== undefined;
  }

  /**
   * Ends the hold and returns the net changes since it began: keys whose value now differs (deep
   * equality) from the one held before, added keys, and deleted keys; a key changed and changed back is
   * not in it. Empty when there was no hold.
   */
  settle(): Update[] {
    const before = this.#before;
    this.#before = undefined;
    if (before === undefined) return [];
    const updates: Update[] = [];
    for (const [key, old] of before) {
      const now = this.#values.get(key);
      if (now === undefined ? old === undefined : old !== undefined && deepEqual(old, now)) continue;
      updates.push({ key, kind: kindOfKey(key), value: now ?? null });
    }
    return updates;
  }

  clear(): void {
    this.#values.clear();
    this.#hashes.clear();
    this.#byKind.clear();
  }

  #set(key: string, value: ResourceValue): Update | undefined {
    const old = this.#values.get(key);
    if (old !== undefined && deepEqual(old, value)) return undefined;
    if (this.#before !== undefined && !this.#before.has(key)) this.#before.set(key, old);
    freezeValue(value);
    const kind = kindOfKey(key);
    this.#values.set(key, value);
    let ofKind = this.#byKind.get(kind);
    if (ofKind === undefined) {
      ofKind = new Map();
      this.#byKind.set(kind, ofKind);
    }
    ofKind.set(key, value);
    return { key, kind, value };
  }

  #delete(key: string): Update | undefined {
    const old = this.#values.get(key);
    if (old === undefined) return undefined;
    if (this.#before !== undefined && !this.#before.has(key)) this.#before.set(key, old);
    this.#values.delete(key);
    this.#hashes.delete(key);
    const kind = kindOfKey(key);
    const ofKind = this.#byKind.get(kind);
    ofKind?.delete(key);
    if (ofKind?.size === 0) this.#byKind.delete(kind);
    return { key, kind, value: null };
  }
}

/**
 * Freezes `value` and every object and array in it, stopping at what is already frozen (a patched value
 * shares the held value's unchanged parts, frozen before). Binary data (a msgpack bin decodes to a
 * Uint8Array, which cannot be frozen) is left as it is. Returns `value`.
 */
export function freezeValue<T>(value: T): T {
  if (typeof value === "object" && value !== null) freezeObject(value);
  return value;
}

function freezeObject(value: object): void {
  if (Object.isFrozen(value) || ArrayBuffer.isView(value)) return;
  Object.freeze(value);
  const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
  for (let i = 0; i < children.length; i++) {
    const child = children[i];
    if (typeof child === "object" && child !== null) freezeObject(child);
  }
}
