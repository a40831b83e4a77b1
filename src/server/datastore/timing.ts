/** Small timing helpers: abortable sleep, linked abort controllers, jittered exponential backoff. */

/** An abortable wait, as `sleep`: resolves after `ms` or when the signal aborts, never rejects. Injected for tests. */
export type Delay = (ms: number, signal: AbortSignal) => Promise<void>;

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * A controller that aborts when `parent` does (with the parent's reason). `dispose()` removes the listener
 * from the parent; call it when the child's work is done so long-lived parents do not collect listeners.
 */
export function linkedController(parent: AbortSignal): {
  controller: AbortController;
  dispose: () => void;
} {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, dispose: () => undefined };
  }
  const onAbort = (): void => controller.abort(parent.reason);
  parent.addEventListener("abort", onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener("abort", onAbort) };
}

/**
 * Jittered exponential backoff: attempt n waits a random time in [d/2, d) with d = min(max, initial × 2^n).
 * `reset()` after a success.
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(initialMs: number, maxMs: number, random: () => number = Math.random) {
    this.#initialMs = initialMs;
    this.#maxMs = Math.max(initialMs, maxMs);
    this.#random = random;
  }

  /** Failures since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  next(): number {
    const d = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return d / 2 + (this.#random() * d) / 2;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
