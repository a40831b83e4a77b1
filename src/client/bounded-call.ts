import { ClientTimeoutError } from "./errors.js";
import type { TimeoutKind } from "./errors.js";

export interface BoundedCallErrors {
  /** The kind of the ClientTimeoutError thrown when `fn` is too slow. */
  readonly timeout: TimeoutKind;
  /** Thrown when `signal` aborts first. */
  readonly aborted: (cause: unknown) => Error;
  /** Wraps what `fn` threw (errors that `isOwn` accepts pass through unwrapped). */
  readonly failed: (cause: unknown) => Error;
  readonly isOwn: (err: unknown) => boolean;
}

/**
 * Calls a caller-supplied function (discovery, a token source) bounded by `timeoutMs` and `signal`: the
 * function gets a signal that aborts on either, and the call settles as soon as either happens, whether
 * or not the function heeds its signal. Returns what the function returned, unchecked.
 */
export async function callBounded(
  fn: (signal: AbortSignal) => unknown,
  signal: AbortSignal,
  timeoutMs: number,
  errors: BoundedCallErrors,
): Promise<unknown> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new ClientTimeoutError(errors.timeout, timeoutMs);
      reject(error);
      controller.abort(error);
    }, timeoutMs);
    controller.signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer); // at once, not a few microtasks later in `finally`
        reject(errors.aborted(controller.signal.reason));
      },
      { once: true },
    );
  });
  if (signal.aborted) onAbort();
  try {
    return await Promise.race([Promise.resolve().then(() => fn(controller.signal)), stop]);
  } catch (err) {
    if (err instanceof ClientTimeoutError || errors.isOwn(err)) throw err;
    throw errors.failed(err);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    controller.abort(); // lets a function that is still running stop, and settles `stop`
  }
}
