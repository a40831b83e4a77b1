import { ReplicaError, ReplicaErrorCode } from "./errors.js";

/** One entry of a static peer list: the agent address and where its /status is read. */
export interface StaticPeer {
  readonly url: string;
  readonly statusUrl: string;
}

/** Most entries in `--peers`. */
export const MAX_STATIC_PEERS = 1000;

function bad(entry: string, why: string): ReplicaError {
  return new ReplicaError(ReplicaErrorCode.badPeer, `peer "${entry.slice(0, 200)}": ${why}`);
}

/** `host` as it goes in a URL (IPv6 in brackets). */
export function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** The /status URL of an `http(s)://host:port[/path]` address: a bare address gets `/status`. */
function statusUrlOf(entry: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad(entry, `"${raw}" is not a URL`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") {
    throw bad(entry, "the status address must be http:// or https:// with a host");
  }
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/status";
  return url.toString();
}

/**
 * Parses `--peers`: a comma list of `ws(s)://host:port`, each optionally followed by `=http(s)://host:port`,
 * where that replica serves /status (its health or metrics port). An entry without one is read at the same
 * host on `defaultStatusPort` (this server's health port: the replicas of one Deployment share their
 * ports). Throws ReplicaError (ERR_REPLICA_BAD_PEER) on the first bad entry.
 */
export function parseStaticPeers(
  value: string,
  defaultStatusPort: number,
  defaultStatusScheme: "http" | "https" = "http",
): StaticPeer[] {
  const entries = value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (entries.length > MAX_STATIC_PEERS) {
    throw new ReplicaError(ReplicaErrorCode.badPeer, `at most ${MAX_STATIC_PEERS} peers`);
  }
  const out: StaticPeer[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    const agent = eq < 0 ? entry : entry.slice(0, eq);
    let url: URL;
    try {
      url = new URL(agent);
    } catch {
      throw bad(entry, `"${agent}" is not a URL`);
    }
    if ((url.protocol !== "ws:" && url.protocol !== "wss:") || url.hostname === "" || url.port === "") {
      throw bad(entry, "the agent address must be ws:// or wss:// with a host and a port");
    }
    const normalized = `${url.protocol}//${url.host}`;
    if (seen.has(normalized)) throw bad(entry, "listed twice");
    seen.add(normalized);
    let statusUrl: string;
    if (eq >= 0) {
      statusUrl = statusUrlOf(entry, entry.slice(eq + 1));
    } else {
      if (defaultStatusPort === 0) {
        throw bad(entry, "name its status address (`=http://host:port`): this server's health port is 0");
      }
      statusUrl = `${defaultStatusScheme}://${url.host.replace(/:\d+$/, "")}:${defaultStatusPort}/status`;
    }
    out.push({ url: normalized, statusUrl });
  }
  return out;
}

/**
 * The `--peers` value for replicas on known ports (the load test, tests): `ws://host:port=http://host:statusPort`
 * per replica, comma-separated. Pass the same list to every replica: each finds itself in it by its server id.
 */
export function formatStaticPeers(
  replicas: readonly { readonly host?: string; readonly port: number; readonly statusPort: number }[],
  schemes: { readonly agent?: "ws" | "wss"; readonly status?: "http" | "https" } = {},
): string {
  return replicas
    .map((r) => {
      const host = urlHost(r.host ?? "127.0.0.1");
      return `${schemes.agent ?? "ws"}://${host}:${r.port}=${schemes.status ?? "http"}://${host}:${r.statusPort}`;
    })
    .join(",");
}
