import type { Entry, ResourceValue } from "../../proto/messages.js";
import { deepEqual } from "../snapshot/deep-equal.js";
import { kindOfKey } from "../snapshot/keys.js";

/** One real change as the application sees it: `value` null is a delete. */
export interface Update {
  /** `Kind/name` or `Kind/namespace/name`. */
  readonly key: string;
  readonly kind: string;
  readonly value: ResourceValue | null;
}

/**
 * The client's copy of a view: key → value, indexed by kind. Every mutation returns the real changes it
 * made (adds, updates to a different value, deletes of present keys) and nothing else, so that replaying an
 * identical state (a resync after failover) yields no change at all.
 */
export class Mirror {
  readonly #values = new Map<string, ResourceValue>();
  readonly #byKind = new Map<string, Map<string, ResourceValue>>();

  get size(): number {
    return this.#values.size;
  }

  get(key: string): ResourceValue | undefined {
    return this.#values.get(key);
  }

  has(key: string): boolean {
    return this.#values.has(key);
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

  /** Applies deltas in order; returns the real changes. */
  apply(changes: readonly Entry[]): Update[] {
    const updates: Update[] = [];
    for (const change of changes) {
      const update = change.v === null ? this.#delete(change.k) : this.#set(change.k, change.v);
      if (update !== undefined) updates.push(update);
    }
    return updates;
  }

  /**
   * Replaces the whole content with `next` (a complete snapshot) and returns the difference: keys added,
   * keys whose value differs (deep equality), keys that vanished.
   */
  replace(next: ReadonlyMap<string, ResourceValue>): Update[] {
    const updates: Update[] = [];
    for (const [key, value] of next) {
      const update = this.#set(key, value);
      if (update !== undefined) updates.push(update);
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

  clear(): void {
    this.#values.clear();
    this.#byKind.clear();
  }

  #set(key: string, value: ResourceValue): Update | undefined {
    const old = this.#values.get(key);
    if (old !== undefined && deepEqual(old, value)) return undefined;
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
    if (!this.#values.delete(key)) return undefined;
    const kind = kindOfKey(key);
    const ofKind = this.#byKind.get(kind);
    ofKind?.delete(key);
    if (ofKind?.size === 0) this.#byKind.delete(kind);
    return { key, kind, value: null };
  }
}
