import type { Change } from "./store.js";
import { DigestAccumulator, domainOf, EMPTY_DIGEST } from "./state-digest.js";
import type { DomainDigest, Hash64 } from "./state-digest.js";

interface Recorded {
  readonly key: string;
  readonly revision: number;
}

/** One kind's records, oldest first (a ring that compacts itself). */
class RecordQueue {
  items: (Recorded | undefined)[] = [];
  start = 0;

  get size(): number {
    return this.items.length - this.start;
  }

  get oldest(): Recorded | undefined {
    return this.items[this.start];
  }

  push(r: Recorded): void {
    this.items.push(r);
  }

  shift(): Recorded | undefined {
    const r = this.items[this.start];
    if (r === undefined) return undefined;
    this.items[this.start] = undefined;
    this.start++;
    if (this.start > 1024 && this.start * 2 > this.items.length) {
      this.items = this.items.slice(this.start);
      this.start = 0;
    }
    return r;
  }
}

/**
 * The state digest of every domain (state-digest.ts), now and at every revision the views' logs still
 * cover: "at which revision did this domain hold exactly this state?" is what a resume on another replica
 * asks. One history record per domain change, kept per kind: a kind's records are dropped once their
 * revision is below the floor of every view of the kind (no catch-up could start there; the views' logs
 * bound them), or past `maxRecordsPerKind`. Pure.
 */
export class DigestHistory {
  readonly #current = new Map<string, DigestAccumulator>();
  /** `domain|count|hex` → the latest revision at which the domain entered that state. */
  readonly #history = new Map<string, number>();
  readonly #records = new Map<string, RecordQueue>();
  readonly #maxRecordsPerKind: number;

  constructor(maxRecordsPerKind: number) {
    if (!(maxRecordsPerKind >= 1)) throw new RangeError("maxRecordsPerKind must be at least 1");
    this.#maxRecordsPerKind = maxRecordsPerKind;
  }

  /** History records held, all kinds (for tests and status). */
  get size(): number {
    let n = 0;
    for (const q of this.#records.values()) n += q.size;
    return n;
  }

  /** The kinds with records. */
  kinds(): IterableIterator<string> {
    return this.#records.keys();
  }

  /** The current digest of a domain (empty when it never held anything). */
  current(domain: string): DomainDigest {
    return this.#current.get(domain) ?? EMPTY_DIGEST;
  }

  /** Applies one store change to the domains it touches and records their new states at its revision. */
  apply(change: Change): void {
    const before = change.prevHash === undefined ? undefined : domainOf(change.kind, change.ownerBefore);
    const after = change.hash === undefined ? undefined : domainOf(change.kind, change.node);
    if (before !== undefined && change.prevHash !== undefined) this.#move(before, -1, change.prevHash);
    if (after !== undefined && change.hash !== undefined) this.#move(after, 1, change.hash);
    if (before !== undefined) this.#record(change.kind, before, change.revision);
    if (after !== undefined && after !== before) this.#record(change.kind, after, change.revision);
  }

  /**
   * The latest revision at which `domain` entered the state `{count, digest}`, while it is still
   * recorded; undefined when it is not (never held, or forgotten). A current state is found by `current`.
   */
  revisionOf(domain: string, count: number, digest: Hash64): number | undefined {
    return this.#history.get(historyKey(domain, count, digest));
  }

  /** Forgets the records of `kind` below `revision` (no log of a view of the kind reaches back there). */
  forgetBelow(kind: string, revision: number): void {
    const q = this.#records.get(kind);
    if (q === undefined) return;
    for (let r = q.oldest; r !== undefined && r.revision < revision; r = q.oldest) this.#forget(q);
    if (q.size === 0) this.#records.delete(kind);
  }

  #move(domain: string, sign: 1 | -1, hash: Hash64): void {
    let d = this.#current.get(domain);
    if (d === undefined) {
      d = new DigestAccumulator();
      this.#current.set(domain, d);
    }
    if (sign > 0) d.add(hash);
    else d.remove(hash);
    if (d.count === 0 && d.hi === 0 && d.lo === 0) this.#current.delete(domain);
  }

  #record(kind: string, domain: string, revision: number): void {
    const d = this.current(domain);
    const key = historyKey(domain, d.count, d);
    this.#history.set(key, revision);
    let q = this.#records.get(kind);
    if (q === undefined) {
      q = new RecordQueue();
      this.#records.set(kind, q);
    }
    q.push({ key, revision });
    while (q.size > this.#maxRecordsPerKind) this.#forget(q);
  }

  #forget(q: RecordQueue): void {
    const r = q.shift();
    // A later record of the same state keeps the key alive.
    if (r !== undefined && this.#history.get(r.key) === r.revision) this.#history.delete(r.key);
  }
}

function historyKey(domain: string, count: number, digest: Hash64): string {
  // Decimal halves: cheaper to format than the wire's hex, and only this map reads them.
  return `${domain}|${count}|${digest.hi}|${digest.lo}`;
}
