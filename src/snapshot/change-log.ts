/** One change as a view's log keeps it: already routed and encoded. */
export interface LogEntry {
  readonly revision: number;
  readonly key: string;
  /** `{k, v}` encoded. */
  readonly encoded: Buffer;
  /**
   * True for a node-scoped kind in this view: the entry reaches only `node` (and `prevNode`), never a
   * node it does not name. An object of a node-scoped kind with no owner reaches nobody, as in a
   * snapshot and in live delivery.
   */
  readonly isNodeScoped: boolean;
  /** For node-scoped kinds: the node that must receive `encoded` (undefined: no owner, nobody). */
  readonly node: string | undefined;
  /** For node-scoped kinds whose owner changed: the old owner, which must receive `{k, v: null}`. */
  readonly prevNode: string | undefined;
  /** `{k, v: null}` encoded, present iff prevNode is. */
  readonly prevEncoded: Buffer | undefined;
  /** The change deletes the key (`encoded` is `{k, v: null}`). Set for broadcast entries. */
  readonly isDelete?: boolean;
}

export interface ChangeLogLimits {
  /** Most entries kept. */
  readonly maxEntries: number;
  /** Most encoded bytes kept. */
  readonly maxBytes: number;
}

/**
 * A view's bounded log of changes in revision order. It answers "can a client at revision R resume?" and
 * "what changed for node N since R?". The oldest entries go first when a bound is passed.
 */
export class ChangeLog {
  readonly #limits: ChangeLogLimits;
  #entries: LogEntry[] = [];
  #start = 0;
  #bytes = 0;
  /** Every change with a revision above the floor is in the log. */
  #floor = 0;
  #head = 0;
  #lastEntry = 0;
  #evicted = 0;

  constructor(limits: ChangeLogLimits) {
    if (!(limits.maxEntries >= 1)) throw new RangeError("maxEntries must be at least 1");
    if (!(limits.maxBytes >= 1)) throw new RangeError("maxBytes must be at least 1");
    this.#limits = limits;
  }

  /** Revisions above this are all in the log; a client at a revision >= floor can resume. */
  get floor(): number {
    return this.#floor;
  }

  /** The revision of the newest entry (or of the last `advance`). */
  get head(): number {
    return this.#head;
  }

  /** The revision of the newest entry (0 when none was ever appended). */
  get lastEntryRevision(): number {
    return this.#lastEntry;
  }

  get size(): number {
    return this.#entries.length - this.#start;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Entries dropped to stay within the limits, since creation. */
  get evicted(): number {
    return this.#evicted;
  }

  append(entry: LogEntry): void {
    if (entry.revision <= this.#head) {
      throw new RangeError(`log revision ${entry.revision} is not after head ${this.#head}`);
    }
    this.#entries.push(entry);
    this.#bytes += entrySize(entry);
    this.#head = entry.revision;
    this.#lastEntry = entry.revision;
    while (this.size > this.#limits.maxEntries || (this.#bytes > this.#limits.maxBytes && this.size > 1)) {
      this.#evictOldest();
    }
    this.#compact();
  }

  /**
   * Drops the oldest entries beyond the newest `maxEntries`: a client further back than that many
   * entries cannot resume from this log anyway (the hub refuses catch-ups that long), so keeping them
   * would only hold memory (the initial list, the history of a burst).
   */
  trimTo(maxEntries: number): void {
    const keep = Math.max(1, Math.floor(maxEntries));
    if (this.size <= keep) return;
    while (this.size > keep) this.#evictOldest();
    this.#compact();
  }

  #evictOldest(): void {
    const old = this.#entries[this.#start];
    if (old === undefined) return;
    this.#entries[this.#start] = undefined as unknown as LogEntry;
    this.#start++;
    this.#bytes -= entrySize(old);
    this.#floor = old.revision;
    this.#evicted++;
  }

  #compact(): void {
    if (this.#start > 1024 && this.#start * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#start);
      this.#start = 0;
    }
  }

  /** Moves the head without an entry (a flush that had no change for this view). */
  advance(revision: number): void {
    if (revision > this.#head) this.#head = revision;
  }

  /** True when every change after `revision` up to the head is still in the log. */
  canResume(revision: number): boolean {
    return revision >= this.#floor && revision <= this.#head;
  }

  /** How many entries the log holds after `revision` (before coalescing): an upper bound of a catch-up. */
  countAfter(revision: number): number {
    return this.#entries.length - this.#firstAfter(revision);
  }

  /**
   * The changes after `revision` that concern `node` (broadcast ones, node-scoped ones owned by it, and
   * a delete for each node-scoped object it owned and no longer does), coalesced to the last change per key, in the order of those last changes. Undefined when the log no
   * longer covers `revision`.
   */
  since(revision: number, node: string | undefined): Buffer[] | undefined {
    if (!this.canResume(revision)) return undefined;
    const byKey = new Map<string, Buffer>();
    for (let i = this.#firstAfter(revision); i < this.#entries.length; i++) {
      const e = this.#entries[i] as LogEntry;
      let buf: Buffer | undefined;
      if (!e.isNodeScoped) buf = e.encoded;
      else if (node === undefined) continue;
      else if (e.node === node) buf = e.encoded;
      else if (e.prevNode === node) buf = e.prevEncoded;
      if (buf === undefined) continue;
      byKey.delete(e.key);
      byKey.set(e.key, buf);
    }
    return [...byKey.values()];
  }

  /**
   * The broadcast changes after `revision` (a view without node-scoped kinds), coalesced to the last one
   * per key, in the order of those last changes, with their keys. Undefined when the log no longer covers
   * `revision`, or holds a node-scoped entry after it.
   */
  sinceKeyed(revision: number): { key: string; encoded: Buffer; isDelete: boolean }[] | undefined {
    if (!this.canResume(revision)) return undefined;
    const byKey = new Map<string, { key: string; encoded: Buffer; isDelete: boolean }>();
    for (let i = this.#firstAfter(revision); i < this.#entries.length; i++) {
      const e = this.#entries[i] as LogEntry;
      if (e.isNodeScoped) return undefined;
      byKey.delete(e.key);
      byKey.set(e.key, { key: e.key, encoded: e.encoded, isDelete: e.isDelete === true });
    }
    return [...byKey.values()];
  }

  /**
   * Like `since`, but each key has its own starting point: the changes concerning `node` whose revision is
   * above `cutOf(key)`, scanning from `from` (the lowest cut), coalesced per key. `matched` counts the log
   * entries taken before coalescing (the bound a catch-up is judged by). Undefined when the log no longer
   * covers `from`.
   */
  sinceCuts(
    from: number,
    node: string | undefined,
    cutOf: (key: string) => number,
  ): { readonly changes: Buffer[]; readonly matched: number } | undefined {
    if (!this.canResume(from)) return undefined;
    const byKey = new Map<string, Buffer>();
    let matched = 0;
    for (let i = this.#firstAfter(from); i < this.#entries.length; i++) {
      const e = this.#entries[i] as LogEntry;
      if (e.revision <= cutOf(e.key)) continue;
      let buf: Buffer | undefined;
      if (!e.isNodeScoped) buf = e.encoded;
      else if (node === undefined) continue;
      else if (e.node === node) buf = e.encoded;
      else if (e.prevNode === node) buf = e.prevEncoded;
      if (buf === undefined) continue;
      matched++;
      byKey.delete(e.key);
      byKey.set(e.key, buf);
    }
    return { changes: [...byKey.values()], matched };
  }

  #firstAfter(revision: number): number {
    let lo = this.#start;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#entries[mid] as LogEntry).revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function entrySize(e: LogEntry): number {
  return e.encoded.byteLength + (e.prevEncoded?.byteLength ?? 0) + 64;
}
