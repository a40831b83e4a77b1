/**
 * Jittered exponential backoff: the n-th delay since the last reset is
 * min(maxMs, initialMs × 2^n) × (0.5 + random()), capped at maxMs. The jitter spreads the reconnects of many
 * agents that lost the same server at the same moment; the cap bounds how long an agent stays away.
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: { initialMs: number; maxMs: number; random?: () => number }) {
    if (!(options.initialMs >= 1) || !(options.maxMs >= options.initialMs)) {
      throw new RangeError("Backoff: need 1 <= initialMs <= maxMs");
    }
    this.#initialMs = options.initialMs;
    this.#maxMs = options.maxMs;
    this.#random = options.random ?? Math.random;
  }

  /** Delays handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The next delay in ms; each call doubles the base until the cap. */
  next(): number {
    // 2^31 already exceeds any cap setTimeout accepts; stop growing the exponent there.
    const base = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#attempt, 31));
    this.#attempt++;
    const r = this.#random();
    const jitter = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0.5;
    return Math.max(1, Math.min(this.#maxMs, Math.round(base * (0.5 + jitter))));
  }

  /** After a healthy session: the next delay is the initial one again. */
  reset(): void {
    this.#attempt = 0;
  }
}
