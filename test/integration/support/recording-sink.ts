import type { ResourceValue } from "../../../proto/messages.js";
import { Hub } from "../../../src/snapshot/hub.js";
import type { PreparedValue } from "../../../src/snapshot/prepared.js";
import type { UpstreamSink } from "../../../src/snapshot/sink.js";
import type { KindState } from "../../../src/snapshot/sync-state.js";

/** What happened to one key, as the datastore wrote it. */
export interface KeyRecord {
  upserts: number;
  /** Deletes that removed the key. */
  effectiveDeletes: number;
  /** Deletes of a key that had been held and was already deleted: a duplicate delete. */
  duplicateDeletes: number;
  /** Deletes of a key never held (a pod with no IP yet converts to "no endpoint"): harmless. */
  deletesOfUnknown: number;
}

/**
 * The datastore's sink in these tests: a bare Hub (flushed after every change, like the fan-out server
 * does per batch) wrapped as an UpstreamSink, recording per key what the datastore did.
 */
export class RecordingSink implements UpstreamSink {
  readonly hub = new Hub();
  readonly states = new Map<string, KindState>();
  readonly #records = new Map<string, KeyRecord>();
  readonly #everHeld = new Set<string>();

  upsert(key: string, value: ResourceValue): void {
    this.hub.upsert(key, value);
    this.hub.flush();
    this.#everHeld.add(key);
    this.#record(key).upserts++;
  }

  upsertPrepared(key: string, prepared: PreparedValue): void {
    this.hub.upsertPrepared(key, prepared);
    this.hub.flush();
    this.#everHeld.add(key);
    this.#record(key).upserts++;
  }

  delete(key: string): void {
    const record = this.#record(key);
    if (this.hub.delete(key)) {
      this.hub.flush();
      record.effectiveDeletes++;
    } else if (this.#everHeld.has(key)) {
      record.duplicateDeletes++;
    } else {
      record.deletesOfUnknown++;
    }
  }

  keysOfKind(kind: string): Iterable<string> {
    return this.hub.store.keysOfKind(kind);
  }

  setKindState(kind: string, state: KindState): void {
    this.states.set(kind, state);
  }

  /** The record of a key (zeros when the datastore never wrote it). */
  recordOf(key: string): Readonly<KeyRecord> {
    return (
      this.#records.get(key) ?? { upserts: 0, effectiveDeletes: 0, duplicateDeletes: 0, deletesOfUnknown: 0 }
    );
  }

  /** Keys with duplicate deletes, with their counts. */
  duplicateDeletes(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, r] of this.#records) if (r.duplicateDeletes > 0) out.set(key, r.duplicateDeletes);
    return out;
  }

  /** Starts counting afresh (keys held stay known). */
  resetRecords(): void {
    this.#records.clear();
  }

  #record(key: string): KeyRecord {
    let r = this.#records.get(key);
    if (r === undefined) {
      r = { upserts: 0, effectiveDeletes: 0, duplicateDeletes: 0, deletesOfUnknown: 0 };
      this.#records.set(key, r);
    }
    return r;
  }
}
