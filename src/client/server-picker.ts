/**
 * Chooses the server for the next attempt. Rules:
 * - a server that rejected the client with a fatal close code is never chosen again;
 * - within a round, an address is not repeated until every usable one was tried (then a new round starts,
 *   avoiding the one tried last when there is a choice);
 * - `prefer` (the server of a healthy session that just dropped, to resume there, or a move hint) wins if
 *   it is usable; `avoid` (a server that asked the client to leave) loses if there is another;
 * - otherwise the choice is random, so that agents with the same list spread over the replicas.
 */
export class ServerPicker {
  readonly #random: () => number;
  readonly #tried = new Set<string>();
  readonly #rejected = new Set<string>();
  #last: string | undefined;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** Never choose this server again. */
  reject(server: string): void {
    this.#rejected.add(server);
  }

  isRejected(server: string): boolean {
    return this.#rejected.has(server);
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
  pick(servers: readonly string[], hints: { prefer?: string; avoid?: string } = {}): string | undefined {
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
