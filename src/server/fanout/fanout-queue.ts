import type { Session } from "./session.js";

/** One pass over the sessions of a view: `visit` each (in order), then `finish` once. */
export interface FanoutJob {
  readonly sessions: Iterable<Session>;
  visit(session: Session): void;
  finish(): void;
}

/**
 * Runs fan-out jobs strictly in order, yielding to the event loop (setImmediate) after every
 * `sliceSessions` visits so that a large fan-out never blocks the loop for long (the upstream watch
 * streams, pongs and new connections keep being served). Jobs never overlap: a session always sees the
 * frames of job N before those of job N+1. The first slice of a job pushed while idle runs synchronously.
 */
export class FanoutQueue {
  readonly #sliceSessions: number;
  readonly #onError: (err: unknown) => void;
  readonly #jobs: FanoutJob[] = [];
  #current: { job: FanoutJob; iterator: Iterator<Session> } | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #isRunning = false;
  #isClosed = false;

  constructor(sliceSessions: number, onError: (err: unknown) => void) {
    this.#sliceSessions = sliceSessions;
    this.#onError = onError;
  }

  /** Jobs not finished yet (the running one included). */
  get length(): number {
    return this.#jobs.length + (this.#current === undefined ? 0 : 1);
  }

  push(job: FanoutJob): void {
    if (this.#isClosed) return;
    this.#jobs.push(job);
    if (!this.#isRunning && this.#immediate === undefined) this.#run();
  }

  /** Drops every pending job; no callback runs afterwards. */
  close(): void {
    this.#isClosed = true;
    this.#jobs.length = 0;
    this.#current = undefined;
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#immediate = undefined;
  }

  #run(): void {
    this.#isRunning = true;
    let budget = this.#sliceSessions;
    try {
      while (!this.#isClosed) {
        if (this.#current === undefined) {
          const job = this.#jobs.shift();
          if (job === undefined) return;
          this.#current = { job, iterator: job.sessions[Symbol.iterator]() };
        }
        const { job, iterator } = this.#current;
        for (;;) {
          if (budget === 0) {
            this.#immediate = setImmediate(() => {
              this.#immediate = undefined;
              this.#run();
            });
            return;
          }
          const next = iterator.next();
          if (next.done === true) break;
          budget--;
          try {
            job.visit(next.value);
          } catch (err) {
            this.#onError(err);
          }
        }
        this.#current = undefined;
        try {
          job.finish();
        } catch (err) {
          this.#onError(err);
        }
      }
    } finally {
      this.#isRunning = false;
    }
  }
}
