import { ClientTimeoutError, ClientTokenError } from "./errors.js";
import type { TokenSource } from "./options.js";

/** Longest token accepted (a projected ServiceAccount token is ~1 KiB). */
export const MAX_TOKEN_CHARS = 8192;

/**
 * The token for the next hello: the string itself, or what the function returns within `timeoutMs`
 * (its signal is aborted then, or when `signal` aborts). Throws ClientTokenError when the function
 * throws or returns no usable token, ClientTimeoutError("token") when it is too slow.
 */
export async function resolveToken(
  source: string | TokenSource | undefined,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<string | undefined> {
  if (typeof source !== "function") return source;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort();
  let timer: NodeJS.Timeout | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new ClientTimeoutError("token", timeoutMs);
      reject(error);
      controller.abort(error);
    }, timeoutMs);
    controller.signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new ClientTokenError("the token function was aborted", { cause: controller.signal.reason }));
      },
      { once: true },
    );
  });
  let token: unknown;
  try {
    token = await Promise.race([Promise.resolve().then(() => source(controller.signal)), stop]);
  } catch (err) {
    if (err instanceof ClientTimeoutError || err instanceof ClientTokenError) throw err;
    throw new ClientTokenError("the token function failed", { cause: err });
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    controller.abort(); // settles `stop`, lets a function still running stop
  }
  if (typeof token !== "string" || token.trim() === "" || token.length > MAX_TOKEN_CHARS) {
    throw new ClientTokenError(
      `the token function returned no token (a non-empty string of at most ${MAX_TOKEN_CHARS} chars)`,
    );
  }
  return token.trim();
}
