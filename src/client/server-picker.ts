/** How long a server the client was moved away from is avoided (unless it is the only one left), in ms. */
export const RECENTLY_LEFT_MS = 120_000;

/** Hints for one pick (from the reconnect plan). */
export interface PickHints {
  /** The server of a healthy session that just dropped (to resume there), or a move hint. */
  readonly prefer?: string;
  /** A server that asked the client to leave: chosen only if there is no other. */
  readonly avoid?: string;
  /**
   * True: `prefer` wins even over a server the client left recently (a draining server's hint: it
   * goes away, the hint is where there is room). False or absent: a rebalance hint back to a server
   * the client was moved away from is ignored when there is another choice (no bouncing).
   */
  readonly isPreferFirm?: boolean;
}

/**
 * Chooses the server for the next attempt. Rules:
 * - a server that rejected the client with a fatal close code is never chosen again;
 * - within a round, an address is not repeated until every usable one was tried (then a new round starts,
 *   avoiding the one tried last when there is a choice);
 * - a server the client was moved away from (`left`) is avoided for RECENTLY_LEFT_MS when there is
 *   another choice, so that a moved agent does not bounce back;
 * - `prefer` wins if it is usable (and not recently left, unless `isPreferFirm`); `avoid` loses if there
 *   is another;
 * - otherwise the choice is random, so that agents with the same list spread over the replicas.
 */
export class ServerPicker {
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #recentlyLeftMs: number;
  readonly #tried = new Set<string>();
  readonly #rejected = new Set<string>();
  /** Servers the client was moved away from, and when (ms). */
  readonly #left = new Map<string, number>();
  #last: string | undefined;

  constructor(
    random: () => number = Math.random,
    now: () => number = Date.now,
    recentlyLeftMs = RECENTLY_LEFT_MS,
  ) {
    this.#random = random;
    this.#now = now;
    this.#recentlyLeftMs = recentlyLeftMs;
  }

  /** Never choose this server again. */
  reject(server: string): void {
    this.#rejected.add(server);
  }

  isRejected(server: string): boolean {
    return this.#rejected.has(server);
  }

  /** The client was moved away from `server` (a `move`, 4007 or 4008): avoid it for a while. */
  left(server: string): void {
    this.#left.set(server, this.#now());
  }

  /** True when the client was moved away from `server` within the last RECENTLY_LEFT_MS. */
  isRecentlyLeft(server: string): boolean {
    const at = this.#left.get(server);
    if (at === undefined) return false;
    if (this.#now() - at < this.#recentlyLeftMs) return true;
    this.#left.delete(server);
    return false;
  }

  /** True when every one of `servers` rejected the client (and there is at least one). */
  isAllRejected(servers: readonly string[]): boolean {
    return servers.length > 0 && servers.every((s) => this.#rejected.has(s));
  }

  /** A session with `server` was healthy: start a new round (so that it may be chosen again to resume). */
  newRound(): void {
    this.#tried.clear();
  }

  /** The server for the next attempt, or undefined when none of `servers` is usable. */
  pick(servers: readonly string[], hints: PickHints = {}): string | undefined {
    const usable = [...new Set(servers)].filter((s) => !this.#rejected.has(s));
    if (usable.length === 0) return undefined;
    let untried = usable.filter((s) => !this.#tried.has(s));
    if (untried.length === 0) {
      this.#tried.clear();
      untried = usable;
      if (untried.length > 1 && this.#last !== undefined && hints.prefer !== this.#last) {
        untried = untried.filter((s) => s !== this.#last);
      }
    }
    if (hints.avoid !== undefined && untried.length > 1) untried = untried.filter((s) => s !== hints.avoid);
    const isPreferred = (s: string): boolean => s === hints.prefer && hints.isPreferFirm === true;
    const fresh = untried.filter((s) => isPreferred(s) || !this.isRecentlyLeft(s));
    if (fresh.length > 0) untried = fresh;
    let choice: string;
    if (hints.prefer !== undefined && untried.includes(hints.prefer)) {
      choice = hints.prefer;
    } else {
      const r = this.#random();
      const i = Math.min(
        untried.length - 1,
        Math.max(0, Math.floor((Number.isFinite(r) ? r : 0) * untried.length)),
      );
      choice = untried[i] as string;
    }
    this.#tried.add(choice);
    this.#last = choice;
    return choice;
  }
}
