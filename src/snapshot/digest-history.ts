import type { Change } from "./store.js";
import { DigestAccumulator, domainOf, EMPTY_DIGEST } from "./state-digest.js";
import type { DomainDigest, Hash64 } from "./state-digest.js";

/** When a domain held one state: from the change that made it (`enter`) until the change that ended it. */
export interface HeldSpan {
  /** The revision of the change that entered the state (0: the domain was empty from the start). */
  readonly enter: number;
  /** The revision of the change that left it; +Infinity while it is the current state. */
  leave: number;
}

/** A state of a domain and its span: the current one, or one it left (kept until no view's log can start inside its span any more). */
interface HeldState {
  readonly domain: string;
  readonly key: string;
  readonly span: HeldSpan;
}

/** One kind's left (or emptied) states, in the order they were left (or entered): a ring that compacts itself. */
class LeftQueue {
  items: (HeldState | undefined)[] = [];
  start = 0;

  get size(): number {
    return this.items.length - this.start;
  }

  get oldest(): HeldState | undefined {
    return this.items[this.start];
  }

  push(r: HeldState): void {
    this.items.push(r);
  }

  shift(): HeldState | undefined {
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
 * The state digest of every domain (state-digest.ts), now and during every span of revisions the views'
 * logs still reach: "during which revisions did this domain hold exactly this state?" is what a resume on
 * another replica asks. A state is kept while it is current and, once left, until the change that left it
 * is at or below the floor of every view of the kind (no catch-up could start while it was held), or past
 * `maxLeftPerKind`. A state entered long ago (a kind listed at the start that rarely changes) stays
 * resumable for as long as it lasts: what matters is when it was left, not when it was entered. Pure.
 */
export class DigestHistory {
  readonly #current = new Map<string, DigestAccumulator>();
  /** `domain|count|hi|lo` → the latest span during which the domain held that state. */
  readonly #history = new Map<string, HeldSpan>();
  /**
   * Per domain touched: its current state's key and span. An empty domain's entry is kept (see #record)
   * until the change that emptied it is at or below the floor of every view of its kind (#releaseEmpty).
   */
  readonly #held = new Map<string, HeldState>();
  readonly #left = new Map<string, LeftQueue>();
  /** Per kind: the domains that became empty, and the empty state they entered, in that order. */
  readonly #emptied = new Map<string, LeftQueue>();
  readonly #maxLeftPerKind: number;

  constructor(maxLeftPerKind: number) {
    if (!(maxLeftPerKind >= 1)) throw new RangeError("maxLeftPerKind must be at least 1");
    this.#maxLeftPerKind = maxLeftPerKind;
  }

  /** Left states held, all kinds (for tests and status). */
  get size(): number {
    let n = 0;
    for (const q of this.#left.values()) n += q.size;
    return n;
  }

  /** Domains whose current state is tracked (for tests and status). */
  get domains(): number {
    return this.#held.size;
  }

  /** The kinds with left states or emptied domains (forgetBelow has something to do for them). */
  kinds(): string[] {
    const kinds = [...this.#left.keys()];
    for (const kind of this.#emptied.keys()) if (!this.#left.has(kind)) kinds.push(kind);
    return kinds;
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
   * The latest span during which `domain` held the state `{count, digest}` (the current state's span has
   * `leave` +Infinity), while it is still kept; undefined when it is not (never held, or forgotten).
   */
  spanOf(domain: string, count: number, digest: Hash64): Readonly<HeldSpan> | undefined {
    return this.#history.get(historyKey(domain, count, digest));
  }

  /**
   * Forgets the states of `kind` left at or below `revision`: no log of a view of the kind reaches back
   * into their spans (a log with floor F can bring a client from any revision >= F).
   */
  forgetBelow(kind: string, revision: number): void {
    const q = this.#left.get(kind);
    if (q !== undefined) {
      for (let r = q.oldest; r !== undefined && r.span.leave <= revision; r = q.oldest) this.#forget(q);
      if (q.size === 0) this.#left.delete(kind);
    }
    this.#releaseEmpty(kind, revision);
  }

  /**
   * Drops the entries of the domains of `kind` that became empty at or below `revision` and stayed
   * empty. Once no log reaches below the emptying change, "empty since then" and "empty since revision
   * 0" (what an untracked domain means) resume from the same revision, the log's floor; without this,
   * every node that ever held a node-scoped object would keep its entry for the life of the process.
   */
  #releaseEmpty(kind: string, revision: number): void {
    const emptied = this.#emptied.get(kind);
    if (emptied === undefined) return;
    for (let r = emptied.oldest; r !== undefined && r.span.enter <= revision; r = emptied.oldest) {
      emptied.shift();
      // Touched again since: its later state is tracked as usual.
      if (this.#held.get(r.domain) !== r) continue;
      this.#held.delete(r.domain);
      if (this.#history.get(r.key) === r.span) this.#history.delete(r.key);
    }
    if (emptied.size === 0) this.#emptied.delete(kind);
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
    // A domain first touched now was empty since revision 0 (the store starts empty); that is why a
    // domain's entry in #held is kept once it is empty again: its next change must not claim that.
    const held = this.#held.get(domain);
    const was = held ?? {
      domain,
      key: historyKey(domain, 0, EMPTY_DIGEST),
      span: { enter: 0, leave: Infinity },
    };
    if (was.key === key) return;
    was.span.leave = revision;
    // A held state's span is in #history since it was entered; the empty start's is not yet.
    if (held === undefined) this.#history.set(was.key, was.span);
    let q = this.#left.get(kind);
    if (q === undefined) {
      q = new LeftQueue();
      this.#left.set(kind, q);
    }
    q.push(was);
    while (q.size > this.#maxLeftPerKind) this.#forget(q);
    const now = { domain, key, span: { enter: revision, leave: Infinity } };
    this.#history.set(key, now.span);
    this.#held.set(domain, now);
    if (d.count === 0) {
      let emptied = this.#emptied.get(kind);
      if (emptied === undefined) {
        emptied = new LeftQueue();
        this.#emptied.set(kind, emptied);
      }
      emptied.push(now);
    }
  }

  #forget(q: LeftQueue): void {
    const r = q.shift();
    // A later span of the same state (held again since) keeps the key alive.
    if (r !== undefined && this.#history.get(r.key) === r.span) this.#history.delete(r.key);
  }
}

function historyKey(domain: string, count: number, digest: Hash64): string {
  // Decimal halves: cheaper to format than the wire's hex, and only this map reads them.
  return `${domain}|${count}|${digest.hi}|${digest.lo}`;
}
