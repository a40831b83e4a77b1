import type { ResourceValue } from "../../proto/messages.js";
import type { PreparedValue } from "./prepared.js";
import type { KindState } from "./sync-state.js";

/**
 * What the upstream side (the Kubernetes datastore) writes into. The fan-out server implements it on top
 * of the Hub; tests can implement it on a bare Hub.
 */
export interface UpstreamSink {
  /** Sets a key (Calico-model value, trimmed). Unchanged values are skipped by the store. */
  upsert(key: string, value: ResourceValue): void;
  /**
   * Sets a key from a value prepared ahead (prepareValue: the ingest worker encodes, hashes and
   * fingerprints off the main thread); the same as `upsert` of the value it was prepared from.
   */
  upsertPrepared(key: string, prepared: PreparedValue): void;
  /** Deletes a key; a key that is absent is ignored. */
  delete(key: string): void;
  /** The keys currently held for a kind (to diff a relist against). */
  keysOfKind(kind: string): Iterable<string>;
  /** The upstream state of a kind changed (syncing, in-sync, stale). */
  setKindState(kind: string, state: KindState): void;
}
