import { ClientDiscoveryError, ClientTimeoutError } from "./errors.js";
import { isServerAddress } from "./options.js";
import type { ClientLogger, ServerDiscovery } from "./options.js";

/** Most addresses taken from one discovery. */
export const MAX_DISCOVERED_SERVERS = 1000;

/**
 * Runs the discovery function once, bounded by `timeoutMs` and `signal` (either aborts the signal handed
 * to the function). Returns the usable `ws://` / `wss://` addresses; throws ERR_CLIENT_DISCOVERY when it
 * fails or finds none, ERR_CLIENT_TIMEOUT when it is too slow. Settles as soon as `signal` aborts.
 */
export async function resolveServers(
  discover: ServerDiscovery,
  signal: AbortSignal,
  timeoutMs: number,
  logger: ClientLogger,
): Promise<readonly string[]> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new ClientTimeoutError("discovery", timeoutMs);
      reject(error);
      controller.abort(error);
    }, timeoutMs);
    controller.signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer); // at once, not a few microtasks later in `finally`
        reject(new ClientDiscoveryError("discovery aborted", { cause: controller.signal.reason }));
      },
      { once: true },
    );
  });
  if (signal.aborted) onAbort();
  let found: unknown;
  try {
    found = await Promise.race([Promise.resolve().then(() => discover(controller.signal)), stop]);
  } catch (err) {
    if (err instanceof ClientTimeoutError || err instanceof ClientDiscoveryError) throw err;
    throw new ClientDiscoveryError("the discovery function failed", { cause: err });
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    controller.abort(); // lets a discovery that is still running stop, and settles `stop`
  }
  if (!Array.isArray(found)) throw new ClientDiscoveryError("the discovery function returned no array");
  const servers: string[] = [];
  for (const s of found.slice(0, MAX_DISCOVERED_SERVERS)) {
    if (isServerAddress(s)) servers.push(s);
    else logger.warn({ address: String(s).slice(0, 200) }, "discovery returned an invalid server address");
  }
  if (servers.length === 0) throw new ClientDiscoveryError("discovery found no usable server address");
  return servers;
}
