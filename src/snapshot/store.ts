import { encodeEntry } from "../../proto/frame-builder.js";
import { decodeValue } from "../../proto/codec.js";
import type { Entry, ResourceValue } from "../../proto/messages.js";
import { sameResource } from "./deep-equal.js";
import { kindOfKey } from "./keys.js";
import { nodeOf } from "./kinds.js";
import type { PreparedValue } from "./prepared.js";
import { valueHash } from "./state-digest.js";
import type { Hash64 } from "./state-digest.js";

export interface StoreEntry {
  readonly key: string;
  readonly kind: string;
  /** The server-wide revision of the change that last set this entry. */
  readonly revision: number;
  /** The owning node, for node-scoped kinds. */
  readonly node: string | undefined;
  /** `{k, v}` msgpack-encoded once; snapshots and delta frames are assembled from it. */
  readonly encoded: Buffer;
  /** entryHash(key, resourceVersion): this entry's part of its domain's state digest (state-digest.ts). */
  readonly hash: Hash64;
  /** PreparedValue.sameAs, when the value came prepared: compared instead of decoding the value. */
  readonly sameAs: string | undefined;
}

/** One real change, as the store made it. */
export interface Change {
  readonly revision: number;
  readonly key: string;
  readonly kind: string;
  /**
   * The new value, or null for a delete; undefined when it came prepared (upsertPrepared), where only
   * `encoded` holds it (decode that if the value is needed).
   */
  readonly value: ResourceValue | null | undefined;
  /**
   * The previous value, when the store decoded it to compare (so that a patch against it need not decode
   * it again); undefined when it was not decoded or the key was absent.
   */
  readonly prevValue: ResourceValue | undefined;
  /** Owning node after the change (for a delete: before it). Node-scoped kinds only. */
  readonly node: string | undefined;
  /** Owning node before the change, when it differs from `node` (the old owner must see a delete). */
  readonly prevNode: string | undefined;
  /** `{k, v}` encoded once. */
  readonly encoded: Buffer;
  /** The entry's encoding before this change (undefined when the key was absent). */
  readonly prevEncoded: Buffer | undefined;
  /** The entry's hash after the change (undefined for a delete). */
  readonly hash: Hash64 | undefined;
  /** The entry's hash before the change (undefined when the key was absent). */
  readonly prevHash: Hash64 | undefined;
  /** The owning node before the change, whether or not it differs (undefined: absent, or no owner). */
  readonly ownerBefore: string | undefined;
}

/**
 * The current state: key → {value, revision}. Every real change gets the next server-wide revision; an
 * upsert whose value equals the current one (ignoring resourceVersion) is skipped and counted.
 * Values are kept only in their encoded form (a third of the memory of the objects); the previous value
 * is decoded only when an upsert's encoding differs from it and no fingerprint (PreparedValue.sameAs)
 * decides. Pure: no I/O, no timers.
 */
export class Store {
  readonly #entries = new Map<string, StoreEntry>();
  readonly #byKind = new Map<string, Map<string, StoreEntry>>();
  /** Entries of node-scoped kinds, by owning node. */
  readonly #byNode = new Map<string, Map<string, StoreEntry>>();
  #revision = 0;
  #skipped = 0;

  /** The revision of the last real change (0 when nothing has happened yet). */
  get revision(): number {
    return this.#revision;
  }

  /** Upserts skipped because the value was unchanged. */
  get skipped(): number {
    return this.#skipped;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): StoreEntry | undefined {
    return this.#entries.get(key);
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** The entries of one kind (live view; do not mutate the store while iterating). */
  entriesOfKind(kind: string): IterableIterator<StoreEntry> {
    return (this.#byKind.get(kind) ?? new Map<string, StoreEntry>()).values();
  }

  keysOfKind(kind: string): IterableIterator<string> {
    return (this.#byKind.get(kind) ?? new Map<string, StoreEntry>()).keys();
  }

  /** The node-scoped entries owned by `node` (all node-scoped kinds). */
  entriesOfNode(node: string): IterableIterator<StoreEntry> {
    return (this.#byNode.get(node) ?? new Map<string, StoreEntry>()).values();
  }

  countOfKind(kind: string): number {
    return this.#byKind.get(kind)?.size ?? 0;
  }

  /** The current value of a key, decoded (for tools and tests; the hot paths use `encoded`). */
  valueOf(key: string): ResourceValue | undefined {
    const entry = this.#entries.get(key);
    return entry === undefined ? undefined : decodeStored(entry.encoded);
  }

  /** Sets a value. Returns the change, or null when the value is unchanged (skipped). */
  upsert(key: string, value: ResourceValue): Change | null {
    const prev = this.#entries.get(key);
    const encoded = encodeEntry({ k: key, v: value });
    let prevValue: ResourceValue | undefined;
    if (prev !== undefined) {
      if (prev.encoded.equals(encoded)) return this.#skip();
      prevValue = decodeStored(prev.encoded);
      if (sameResource(prevValue, value)) return this.#skip();
    }
    const kind = prev?.kind ?? kindOfKey(key);
    const node = nodeOf(kind, value);
    return this.#set(
      prev,
      { key, kind, node, encoded, hash: valueHash(key, value), sameAs: undefined },
      value,
      prevValue,
    );
  }

  /**
   * Sets a value prepared ahead (prepareValue, possibly on another thread): the same as `upsert` of the
   * value it was prepared from, but compared by bytes and fingerprint, without decoding.
   */
  upsertPrepared(key: string, p: PreparedValue): Change | null {
    const prev = this.#entries.get(key);
    let prevValue: ResourceValue | undefined;
    if (prev !== undefined) {
      if (prev.encoded.equals(p.encoded)) return this.#skip();
      if (prev.sameAs !== undefined) {
        if (prev.sameAs === p.sameAs) return this.#skip();
      } else {
        // Set by a plain upsert (static entries): compare the values.
        prevValue = decodeStored(prev.encoded);
        if (sameResource(prevValue, decodeStored(p.encoded))) return this.#skip();
      }
    }
    const kind = prev?.kind ?? kindOfKey(key);
    const entry = { key, kind, node: p.node, encoded: p.encoded, hash: p.hash, sameAs: p.sameAs };
    return this.#set(prev, entry, undefined, prevValue);
  }

  #skip(): null {
    this.#skipped++;
    return null;
  }

  #set(
    prev: StoreEntry | undefined,
    next: Omit<StoreEntry, "revision">,
    value: ResourceValue | undefined,
    prevValue: ResourceValue | undefined,
  ): Change {
    const { key, kind, node, encoded, hash } = next;
    const revision = ++this.#revision;
    const entry: StoreEntry = { ...next, revision };
    this.#entries.set(key, entry);
    let ofKind = this.#byKind.get(kind);
    if (ofKind === undefined) {
      ofKind = new Map();
      this.#byKind.set(kind, ofKind);
    }
    ofKind.set(key, entry);
    if (prev?.node !== undefined && prev.node !== node) this.#unindexNode(prev.node, key);
    if (node !== undefined) {
      let ofNode = this.#byNode.get(node);
      if (ofNode === undefined) {
        ofNode = new Map();
        this.#byNode.set(node, ofNode);
      }
      ofNode.set(key, entry);
    }
    const prevNode = prev !== undefined && prev.node !== node ? prev.node : undefined;
    return {
      revision,
      key,
      kind,
      value,
      prevValue,
      node,
      prevNode,
      encoded,
      prevEncoded: prev?.encoded,
      hash,
      prevHash: prev?.hash,
      ownerBefore: prev?.node,
    };
  }

  /** Deletes a key. Returns the change, or null when the key was absent. */
  delete(key: string): Change | null {
    const prev = this.#entries.get(key);
    if (prev === undefined) return null;
    this.#entries.delete(key);
    this.#byKind.get(prev.kind)?.delete(key);
    if (prev.node !== undefined) this.#unindexNode(prev.node, key);
    const revision = ++this.#revision;
    return {
      revision,
      key,
      kind: prev.kind,
      value: null,
      prevValue: undefined,
      node: prev.node,
      prevNode: undefined,
      encoded: encodeEntry({ k: key, v: null }),
      prevEncoded: prev.encoded,
      hash: undefined,
      prevHash: prev.hash,
      ownerBefore: prev.node,
    };
  }

  #unindexNode(node: string, key: string): void {
    const ofNode = this.#byNode.get(node);
    if (ofNode === undefined) return;
    ofNode.delete(key);
    if (ofNode.size === 0) this.#byNode.delete(node);
  }
}

/** The value of an entry encoded by this store (`{k, v}` with v a map). */
export function decodeStored(encoded: Buffer): ResourceValue {
  return (decodeValue(encoded) as Entry).v as ResourceValue;
}
