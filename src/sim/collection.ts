import { expiredError } from "./errors.js";
import type { KubeObject, WatchEventType } from "./types.js";

/** A stored object version with its JSON text, serialized at most once and shared by lists and watch events. */
export class Stored {
  readonly obj: KubeObject;
  readonly rv: number;
  #json: string | undefined;

  constructor(obj: KubeObject, rv: number) {
    this.obj = obj;
    this.rv = rv;
  }

  get json(): string {
    return (this.#json ??= JSON.stringify(this.obj));
  }
}

/** One change of a collection, as retained in its history. */
export class StoredEvent {
  readonly type: WatchEventType;
  readonly key: string;
  readonly namespace: string | undefined;
  /** The new state; for DELETED, the last state stamped with the deletion resourceVersion. */
  readonly entry: Stored;
  /** The state before the change (undefined for ADDED). */
  readonly prev: Stored | undefined;
  #line: string | undefined;

  constructor(
    type: WatchEventType,
    key: string,
    namespace: string | undefined,
    entry: Stored,
    prev?: Stored,
  ) {
    this.type = type;
    this.key = key;
    this.namespace = namespace;
    this.entry = entry;
    this.prev = prev;
  }

  get rv(): number {
    return this.entry.rv;
  }

  /** The watch line `{"type":…,"object":…}\n`, built once and shared by every watcher. */
  get line(): string {
    return (this.#line ??= `{"type":"${this.type}","object":${this.entry.json}}\n`);
  }
}

export interface Page {
  readonly items: Stored[];
  /** Key of the last item, when more items follow (the continue token's start). */
  readonly nextAfterKey: string | undefined;
}

/**
 * The objects of one resource: a map, the keys in sorted order (for paging), and a bounded history of
 * changes (for watches from a resourceVersion and for consistent paged lists at an older resourceVersion).
 */
export class Collection {
  readonly #objects = new Map<string, Stored>();
  /** Sorted keys, as of the last consolidation; #added and #removed hold the changes since. */
  #keys: string[] = [];
  readonly #added = new Set<string>();
  readonly #removed = new Set<string>();
  #history: StoredEvent[] = [];
  #historyStart = 0;
  #historyLimit: number;
  /** The resourceVersion of the newest change dropped from history: watches must start at or after it. */
  #compactedRv: number;

  constructor(historyLimit: number, createdAtRv: number) {
    this.#historyLimit = historyLimit;
    this.#compactedRv = createdAtRv;
  }

  get size(): number {
    return this.#objects.size;
  }

  get compactedRv(): number {
    return this.#compactedRv;
  }

  get historyLength(): number {
    return this.#history.length - this.#historyStart;
  }

  get(key: string): Stored | undefined {
    return this.#objects.get(key);
  }

  /** Applies a change and records it. */
  apply(ev: StoredEvent): void {
    if (ev.type === "DELETED") {
      this.#objects.delete(ev.key);
      if (!this.#added.delete(ev.key)) this.#removed.add(ev.key);
    } else {
      if (!this.#objects.has(ev.key) && !this.#removed.delete(ev.key)) this.#added.add(ev.key);
      this.#objects.set(ev.key, ev.entry);
    }
    this.#history.push(ev);
    this.#trim();
  }

  setHistoryLimit(n: number): void {
    this.#historyLimit = n;
    this.#trim();
  }

  /** Drops every object and the history (the CRD was uninstalled). */
  clear(nowRv: number): void {
    this.#objects.clear();
    this.#keys = [];
    this.#added.clear();
    this.#removed.clear();
    this.#history = [];
    this.#historyStart = 0;
    this.#compactedRv = nowRv;
  }

  /** Throws ERR_SIM_EXPIRED when changes after `rv` are no longer all retained. */
  checkRetained(rv: number): void {
    if (rv < this.#compactedRv) throw expiredError(rv, this.#compactedRv + 1);
  }

  /** The retained changes with resourceVersion > rv, oldest first (call checkRetained first). */
  eventsAfter(rv: number): StoredEvent[] {
    let lo = this.#historyStart;
    let hi = this.#history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#history[mid]!.rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    return this.#history.slice(lo);
  }

  /** Every current object of a namespace (or all), in key order. */
  current(prefix?: string): Stored[] {
    return this.page(undefined, undefined, undefined, prefix).items;
  }

  /**
   * One page of the collection as it was at `listRv` (undefined: now), with keys > afterKey within the key
   * prefix, reconstructed from the current state and the retained history. Throws ERR_SIM_EXPIRED when the
   * history no longer reaches back to listRv.
   */
  page(
    listRv: number | undefined,
    afterKey: string | undefined,
    limit: number | undefined,
    prefix?: string,
  ): Page {
    const past = new Map<string, Stored | null>();
    if (listRv !== undefined) {
      this.checkRetained(listRv);
      for (const ev of this.eventsAfter(listRv)) if (!past.has(ev.key)) past.set(ev.key, ev.prev ?? null);
    }
    const inRange = (k: string): boolean =>
      (afterKey === undefined || k > afterKey) && (prefix === undefined || k.startsWith(prefix));
    const gone = [...past.keys()].filter((k) => !this.#objects.has(k) && inRange(k)).sort();
    this.#consolidate();
    const from = afterKey ?? "";
    let i = this.#search(prefix !== undefined && prefix > from ? prefix : from);
    if (afterKey !== undefined && this.#keys[i] === afterKey) i++;
    let g = 0;
    const max = limit ?? Number.MAX_SAFE_INTEGER;
    const items: Stored[] = [];
    let lastKey: string | undefined;
    for (;;) {
      const ck = this.#keys[i];
      const cur = ck !== undefined && (prefix === undefined || ck.startsWith(prefix)) ? ck : undefined;
      const gk = gone[g];
      let key: string;
      if (cur !== undefined && (gk === undefined || cur < gk)) {
        key = cur;
        i++;
      } else if (gk !== undefined) {
        key = gk;
        g++;
      } else {
        return { items, nextAfterKey: undefined };
      }
      const entry = past.has(key) ? past.get(key) : this.#objects.get(key);
      if (entry === null || entry === undefined) continue;
      if (items.length === max) return { items, nextAfterKey: lastKey };
      items.push(entry);
      lastKey = key;
    }
  }

  /** Brings #keys up to date: O(n + a log a) after a changes, nothing when unchanged. */
  #consolidate(): void {
    if (this.#added.size === 0 && this.#removed.size === 0) return;
    const added = [...this.#added].sort();
    const removed = this.#removed;
    const old = this.#keys;
    const keys: string[] = [];
    let i = 0;
    let j = 0;
    while (i < old.length || j < added.length) {
      const o = old[i];
      const a = added[j];
      if (o !== undefined && (a === undefined || o < a)) {
        if (!removed.has(o)) keys.push(o);
        i++;
      } else {
        keys.push(a!);
        j++;
      }
    }
    this.#keys = keys;
    this.#added.clear();
    this.#removed.clear();
  }

  /** Index of the first key >= k. */
  #search(k: string): number {
    const keys = this.#keys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #trim(): void {
    const excess = this.#history.length - this.#historyStart - this.#historyLimit;
    if (excess <= 0) return;
    this.#historyStart += excess;
    this.#compactedRv = this.#history[this.#historyStart - 1]!.rv;
    if (this.#historyStart > 1024 && this.#historyStart * 2 > this.#history.length) {
      this.#history = this.#history.slice(this.#historyStart);
      this.#historyStart = 0;
    }
  }
}
