import { ClientOptionsError } from "./errors.js";
import type { TabbyClientError } from "./errors.js";
import type { TypedUpdate } from "./types/index.js";

export interface UpdateStreamOptions {
  /** Ends the iteration at once (batches not yet taken are dropped). */
  readonly signal?: AbortSignal;
  /**
   * Batches held for a consumer that is behind; default 1024. When one more arrives, the held batches are
   * coalesced into one with the latest update of each key (what a slow consumer needs to catch up: the
   * net change, not every step), so memory stays bounded by the number of keys, not by time.
   */
  readonly maxPendingBatches?: number;
}

export const DEFAULT_MAX_PENDING_BATCHES = 1024;

type Batch = readonly TypedUpdate[];

/**
 * The `updates` events of a client as an async iterator (as nats.js offers subscriptions):
 * `for await (const batch of client.updates({ signal }))`. Each value is one batch, as the `updates`
 * event gives it. Ends when the signal aborts, when the loop breaks (`return()`), or when the client
 * closes: after close() it ends once the held batches are taken; if the client stopped on an error, the
 * iteration then throws that error.
 */
export class UpdateStream implements AsyncIterableIterator<Batch> {
  readonly #maxPending: number;
  readonly #detach: () => void;
  readonly #signal: AbortSignal | undefined;
  #queue: Batch[] = [];
  #waiter: { resolve: (r: IteratorResult<Batch>) => void; reject: (err: unknown) => void } | undefined;
  #isEnded = false;
  #error: TabbyClientError | undefined;
  /** Times held batches were coalesced because the consumer was behind. */
  coalesced = 0;
  readonly #onAbort = (): void => {
    this.#queue = [];
    this.end(undefined);
  };

  /** `detach` unsubscribes from the client; it is called once, when the stream ends. */
  constructor(options: UpdateStreamOptions, detach: () => void) {
    const max = options.maxPendingBatches ?? DEFAULT_MAX_PENDING_BATCHES;
    if (!Number.isSafeInteger(max) || max < 1)
      throw new ClientOptionsError("maxPendingBatches", "an integer >= 1");
    this.#maxPending = max;
    this.#detach = detach;
    this.#signal = options.signal;
    if (this.#signal?.aborted === true) this.#onAbort();
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Batches held, not yet taken by the consumer. */
  get pending(): number {
    return this.#queue.length;
  }

  /** A new batch from the client. */
  push(batch: Batch): void {
    if (this.#isEnded || batch.length === 0) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter.resolve({ value: batch, done: false });
      return;
    }
    this.#queue.push(batch);
    if (this.#queue.length > this.#maxPending) this.#coalesce();
  }

  /** No more batches: the held ones can still be taken, then the iteration ends (or throws `error`). */
  end(error: TabbyClientError | undefined): void {
    if (this.#isEnded) return;
    this.#isEnded = true;
    this.#error = error;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#detach();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter === undefined) return;
    if (error !== undefined) {
      this.#error = undefined;
      waiter.reject(error);
    } else {
      waiter.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<Batch>> {
    const batch = this.#queue.shift();
    if (batch !== undefined) return Promise.resolve({ value: batch, done: false });
    if (this.#isEnded) {
      const error = this.#error;
      this.#error = undefined;
      return error === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(error);
    }
    if (this.#waiter !== undefined)
      return Promise.reject(new Error("next() called again before it resolved"));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** `break` out of the loop: unsubscribes and drops what is held. */
  return(): Promise<IteratorResult<Batch>> {
    this.#queue = [];
    this.end(undefined);
    this.#error = undefined;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #coalesce(): void {
    const latest = new Map<string, TypedUpdate>();
    for (const batch of this.#queue) {
      for (const u of batch) {
        // Re-insert so the batch keeps the order of each key's last change.
        latest.delete(u.key);
        latest.set(u.key, u);
      }
    }
    this.#queue = [[...latest.values()]];
    this.coalesced++;
  }
}
