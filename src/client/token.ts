import { callBounded } from "./bounded-call.js";
import { ClientTokenError } from "./errors.js";
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
  const token = await callBounded(source, signal, timeoutMs, {
    timeout: "token",
    aborted: (cause) => new ClientTokenError("the token function was aborted", { cause }),
    failed: (cause) => new ClientTokenError("the token function failed", { cause }),
    isOwn: (err) => err instanceof ClientTokenError,
  });
  if (typeof token !== "string" || token.trim() === "" || token.length > MAX_TOKEN_CHARS) {
    throw new ClientTokenError(
      `the token function returned no token (a non-empty string of at most ${MAX_TOKEN_CHARS} chars)`,
    );
  }
  return token.trim();
}
