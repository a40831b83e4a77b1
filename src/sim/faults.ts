import { SimError, SimErrorCode } from "./errors.js";

interface FailureWindow {
  readonly status: 500 | 429;
  readonly untilMs: number;
  /** Resource ids, or undefined for every request. */
  readonly resources: ReadonlySet<string> | undefined;
}

const MAX_WINDOWS = 64;

/** Injected request failures: HTTP 500 or 429 for a while, for every request or some resources. */
export class RequestFaults {
  readonly #clock: () => number;
  #windows: FailureWindow[] = [];
  /** Requests answered with an injected failure. */
  injected = 0;

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  fail(status: 500 | 429, forMs: number, resources?: readonly string[]): void {
    if (status !== 500 && status !== 429) {
      throw new SimError(
        SimErrorCode.badOption,
        `failRequests: status must be 500 or 429, got ${String(status)}`,
      );
    }
    if (!Number.isFinite(forMs) || forMs < 0) {
      throw new SimError(SimErrorCode.badOption, `failRequests: forMs must be a non-negative number`);
    }
    this.#prune();
    if (this.#windows.length >= MAX_WINDOWS) this.#windows.shift();
    this.#windows.push({
      status,
      untilMs: this.#clock() + forMs,
      resources: resources === undefined ? undefined : new Set(resources),
    });
  }

  /** The injected failure for a request on `resource` (undefined for a non-resource request), if any. */
  check(resource: string | undefined): SimError | undefined {
    if (this.#windows.length === 0) return undefined;
    this.#prune();
    const w = this.#windows.find(
      (x) => x.resources === undefined || (resource !== undefined && x.resources.has(resource)),
    );
    if (w === undefined) return undefined;
    this.injected++;
    return w.status === 429
      ? new SimError(SimErrorCode.injected, "Too many requests, please try again later.", {
          httpStatus: 429,
          details: { retryAfterSeconds: 1 },
        })
      : new SimError(SimErrorCode.injected, "Internal error occurred: injected failure", { httpStatus: 500 });
  }

  #prune(): void {
    const now = this.#clock();
    this.#windows = this.#windows.filter((w) => w.untilMs > now);
  }
}
