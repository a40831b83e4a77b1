import { callBounded } from "./bounded-call.js";
import { ClientDiscoveryError } from "./errors.js";
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
  const found = await callBounded(discover, signal, timeoutMs, {
    timeout: "discovery",
    aborted: (cause) => new ClientDiscoveryError("discovery aborted", { cause }),
    failed: (cause) => new ClientDiscoveryError("the discovery function failed", { cause }),
    isOwn: (err) => err instanceof ClientDiscoveryError,
  });
  if (!Array.isArray(found)) throw new ClientDiscoveryError("the discovery function returned no array");
  const servers: string[] = [];
  for (const s of found.slice(0, MAX_DISCOVERED_SERVERS)) {
    if (isServerAddress(s)) servers.push(s);
    else logger.warn({ address: String(s).slice(0, 200) }, "discovery returned an invalid server address");
  }
  if (servers.length === 0) throw new ClientDiscoveryError("discovery found no usable server address");
  return servers;
}

export {
  kubernetesDiscovery,
  orderEndpoints,
  readyEndpointsOf,
  SERVICE_ACCOUNT_DIR,
} from "./kubernetes-discovery.js";
export type { KubernetesDiscovery, KubernetesDiscoveryOptions } from "./kubernetes-discovery.js";
export type { DiscoveredEndpoint } from "./discovery-cache.js";
