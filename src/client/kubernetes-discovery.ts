import { readFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import type { IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { LastGoodList } from "./discovery-cache.js";
import type { DiscoveredEndpoint } from "./discovery-cache.js";
import { ClientDiscoveryError, ClientOptionsError } from "./errors.js";
import { NOOP_LOGGER } from "./options.js";
import type { ClientLogger, ServerDiscovery } from "./options.js";

/** Where a pod finds its ServiceAccount token and the cluster CA. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Largest EndpointSlice list answer accepted (a 1000-endpoint Service is ~300 KB). */
export const MAX_ENDPOINT_SLICE_LIST_BYTES = 8 * 1024 * 1024;
/** Most list pages followed (`continue`). */
const MAX_PAGES = 20;

export interface KubernetesDiscoveryOptions {
  /** The tabby Service's namespace (deploy/tabby.yaml: "calico-system"). */
  readonly namespace: string;
  /** The tabby Service's name (deploy/tabby.yaml: "tabby"). */
  readonly service: string;
  /** The EndpointSlice port agents connect to. Default "tabby" (deploy/tabby.yaml). */
  readonly portName?: string;
  /** Connect to this port on every endpoint instead of the named one. */
  readonly port?: number;
  /** Default "wss" (deploy/tabby.yaml serves TLS; set `tls.servername` on the client: endpoints are pod IPs). */
  readonly scheme?: "ws" | "wss";
  /** The agent's node: endpoints on it come first. */
  readonly node?: string;
  /** The agent's zone (`topology.kubernetes.io/zone`): endpoints in it come next. */
  readonly zone?: string;
  /**
   * Persist the last good list here (JSON, written atomically: a temporary file, then a rename), so that
   * an agent that restarts while the API server is down still finds a replica. Its directory must exist.
   */
  readonly cacheFile?: string;
  /** A list younger than this (ms) is reused without asking the API server (reshuffled). Default 5,000; 0: ask every time. */
  readonly cacheTtlMs?: number;
  /** The API server, `https://host:port` (or `http://` in tests). Default: the in-cluster one, from `env`. */
  readonly apiServer?: string;
  /** Bearer token: a string or a function called before each request. Default: `tokenFile`, re-read each time. */
  readonly token?: string | (() => string | Promise<string>);
  /** Default `${SERVICE_ACCOUNT_DIR}/token` (a projected token that kubelet rotates). */
  readonly tokenFile?: string;
  /** CA bundle (PEM) of the API server. Default: `caFile`. */
  readonly ca?: string | Buffer;
  /** Default `${SERVICE_ACCOUNT_DIR}/ca.crt`. */
  readonly caFile?: string;
  /** Deadline of one API request (ms), also bounded by the client's connectTimeoutMs. Default 5,000. */
  readonly requestTimeoutMs?: number;
  /** Where the in-cluster API server is read (KUBERNETES_SERVICE_HOST / _PORT). Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly logger?: ClientLogger;
  /** Random source in [0, 1) for the shuffles (tests). Default Math.random. */
  readonly random?: () => number;
  /** Epoch ms (tests). Default Date.now. */
  readonly clock?: () => number;
}

/** A discovery function with a view of where its last answer came from. */
export interface KubernetesDiscovery extends ServerDiscovery {
  /** The ready endpoints' addresses, ordered (own node, own zone, any; each group shuffled). */
  (signal: AbortSignal): Promise<string[]>;
  /** Where the last answer came from: the API server, the list kept in memory, or the cache file. */
  readonly lastSource: () => "api" | "memory" | "file" | undefined;
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function requireName(value: unknown, field: string): string {
  if (typeof value !== "string" || !NAME.test(value)) {
    throw new ClientOptionsError(field, "a Kubernetes name (lower-case letters, digits and '-', at most 63)");
  }
  return value;
}

function optionalText(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "" || value.length > 4096) {
    throw new ClientOptionsError(field, "a non-empty string");
  }
  return value;
}

interface Resolved {
  readonly namespace: string;
  readonly service: string;
  readonly portName: string;
  readonly port: number | undefined;
  readonly scheme: "ws" | "wss";
  readonly node: string | undefined;
  readonly zone: string | undefined;
  readonly cacheTtlMs: number;
  readonly requestTimeoutMs: number;
  readonly apiServer: string;
  readonly logger: ClientLogger;
  readonly random: () => number;
  readonly clock: () => number;
}

function resolve(o: KubernetesDiscoveryOptions): Resolved {
  if (o === null || typeof o !== "object") throw new ClientOptionsError("options", "an object");
  const port = o.port;
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new ClientOptionsError("port", "an integer in [1, 65535]");
  }
  if (o.scheme !== undefined && o.scheme !== "ws" && o.scheme !== "wss") {
    throw new ClientOptionsError("scheme", '"ws" or "wss"');
  }
  const ms = (value: unknown, field: string, fallback: number, min: number): number => {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > 2_147_483_647) {
      throw new ClientOptionsError(field, `an integer number of milliseconds, at least ${min}`);
    }
    return value;
  };
  let apiServer = optionalText(o.apiServer, "apiServer");
  if (apiServer === undefined) {
    const env = o.env ?? process.env;
    const host = env.KUBERNETES_SERVICE_HOST;
    const envPort = env.KUBERNETES_SERVICE_PORT;
    if (host === undefined || host === "" || envPort === undefined || envPort === "") {
      throw new ClientOptionsError(
        "apiServer",
        "set (not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset)",
      );
    }
    apiServer = `https://${host.includes(":") ? `[${host}]` : host}:${envPort}`;
  }
  try {
    const url = new URL(apiServer);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("scheme");
  } catch {
    throw new ClientOptionsError("apiServer", "an https:// (or http://) URL");
  }
  if (o.random !== undefined && typeof o.random !== "function") {
    throw new ClientOptionsError("random", "a function returning a number in [0, 1)");
  }
  return {
    namespace: requireName(o.namespace, "namespace"),
    service: requireName(o.service, "service"),
    portName: o.portName === undefined ? "tabby" : (optionalText(o.portName, "portName") ?? "tabby"),
    port,
    scheme: o.scheme ?? "wss",
    node: optionalText(o.node, "node"),
    zone: optionalText(o.zone, "zone"),
    cacheTtlMs: ms(o.cacheTtlMs, "cacheTtlMs", 5000, 0),
    requestTimeoutMs: ms(o.requestTimeoutMs, "requestTimeoutMs", 5000, 1),
    apiServer: apiServer.replace(/\/+$/, ""),
    logger: o.logger ?? NOOP_LOGGER,
    random: o.random ?? Math.random,
    clock: o.clock ?? Date.now,
  };
}

/** An API answer that is not a success: `status` 0 for a network error or a timeout. */
class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * The ready endpoints of a list of EndpointSlices (discovery.k8s.io v1 or v1beta1), one per address, on
 * the named port (or `port`). Ready: `conditions.ready` is not false (absent means ready, as the API
 * documents) and the endpoint is not terminating. Node and zone: v1 `nodeName` / `zone`, v1beta1
 * `topology["kubernetes.io/hostname"]` / `topology["topology.kubernetes.io/zone"]` (and `nodeName`).
 */
export function readyEndpointsOf(
  items: readonly unknown[],
  options: { readonly portName: string; readonly port?: number | undefined; readonly scheme: "ws" | "wss" },
): DiscoveredEndpoint[] {
  const byUrl = new Map<string, DiscoveredEndpoint>();
  for (const item of items) {
    const slice = record(item);
    if (slice === undefined || !Array.isArray(slice.endpoints)) continue;
    let port = options.port;
    if (port === undefined && Array.isArray(slice.ports)) {
      for (const p of slice.ports) {
        const r = record(p);
        if (r !== undefined && (r.name ?? "") === options.portName && typeof r.port === "number")
          port = r.port;
      }
    }
    if (port === undefined) continue;
    for (const e of slice.endpoints) {
      const endpoint = record(e);
      if (endpoint === undefined) continue;
      const conditions = record(endpoint.conditions);
      if (conditions?.ready === false || conditions?.terminating === true) continue;
      const addresses = Array.isArray(endpoint.addresses) ? endpoint.addresses : [];
      const address = addresses.find((a): a is string => typeof a === "string" && a !== "");
      if (address === undefined) continue;
      const topology = record(endpoint.topology);
      const node = endpoint.nodeName ?? topology?.["kubernetes.io/hostname"];
      const zone = endpoint.zone ?? topology?.["topology.kubernetes.io/zone"];
      const host = address.includes(":") ? `[${address}]` : address;
      const url = `${options.scheme}://${host}:${port}`;
      byUrl.set(url, {
        url,
        ...(typeof node === "string" && { node }),
        ...(typeof zone === "string" && { zone }),
      });
    }
  }
  return [...byUrl.values()];
}

/** Own node first, then own zone, then the rest; each group shuffled (Fisher–Yates). */
export function orderEndpoints(
  endpoints: readonly DiscoveredEndpoint[],
  where: { readonly node?: string | undefined; readonly zone?: string | undefined },
  random: () => number,
): string[] {
  const groups: DiscoveredEndpoint[][] = [[], [], []];
  for (const e of endpoints) {
    const rank =
      where.node !== undefined && e.node === where.node
        ? 0
        : where.zone !== undefined && e.zone === where.zone
          ? 1
          : 2;
    groups[rank]!.push(e);
  }
  const out: string[] = [];
  for (const group of groups) {
    for (let i = group.length - 1; i > 0; i--) {
      const r = random();
      const j = Math.min(i, Math.max(0, Math.floor((Number.isFinite(r) ? r : 0) * (i + 1))));
      [group[i], group[j]] = [group[j]!, group[i]!];
    }
    for (const e of group) out.push(e.url);
  }
  return out;
}

/**
 * A ServerDiscovery for a tabby Service in Kubernetes: before each connection attempt it lists the
 * Service's EndpointSlices (`kubernetes.io/service-name=<service>`, discovery.k8s.io/v1, or v1beta1 on
 * an API server that answers 404 for v1) with the agent's own credentials (by default the pod's
 * ServiceAccount token and CA, and the in-cluster API address), keeps the ready endpoints on the named
 * port, and returns their addresses ordered own node first, then own zone, then any, each group shuffled.
 * A good list is kept in memory and, with `cacheFile`, on disk; when the API server is unreachable or
 * answers an error (or lists no ready endpoint), the last good list (memory, else the file) is returned,
 * so that agents keep finding replicas while the API is down. Throws ClientDiscoveryError
 * (ERR_CLIENT_DISCOVERY) when there is no list at all. Uses node:http(s) only (no Kubernetes client).
 */
export function kubernetesDiscovery(options: KubernetesDiscoveryOptions): KubernetesDiscovery {
  const o = resolve(options);
  const tokenFile = optionalText(options.tokenFile, "tokenFile") ?? `${SERVICE_ACCOUNT_DIR}/token`;
  const caFile = optionalText(options.caFile, "caFile") ?? `${SERVICE_ACCOUNT_DIR}/ca.crt`;
  const token = options.token;
  if (token !== undefined && typeof token !== "function" && (typeof token !== "string" || token === "")) {
    throw new ClientOptionsError("token", "a non-empty string or a function");
  }
  const isHttps = o.apiServer.startsWith("https:");
  let ca: string | Buffer | undefined = options.ca;
  const lastGood = new LastGoodList(
    `${o.namespace}/${o.service}`,
    optionalText(options.cacheFile, "cacheFile"),
    o.logger,
  );
  /** discovery.k8s.io versions to try, the one that answered last first. */
  let versions = ["v1", "v1beta1"];
  let fetchedAtMs: number | undefined;
  let lastSource: "api" | "memory" | "file" | undefined;

  const bearer = async (): Promise<string | undefined> => {
    if (typeof token === "string") return token;
    if (typeof token === "function") return String(await token());
    try {
      return (await readFile(tokenFile, "utf8")).trim();
    } catch (err) {
      // Off-cluster with an http:// API (tests, a proxy): no token is fine.
      if (!isHttps) return undefined;
      throw new ApiError(0, `cannot read the ServiceAccount token ${tokenFile}`, { cause: err });
    }
  };

  const get = async (path: string, signal: AbortSignal): Promise<unknown> => {
    const auth = await bearer();
    if (isHttps && ca === undefined) {
      try {
        ca = await readFile(caFile);
      } catch {
        ca = undefined; // the system roots, then
      }
    }
    const url = `${o.apiServer}${path}`;
    return new Promise((resolvePromise, reject) => {
      const timeout = AbortSignal.timeout(o.requestTimeoutMs);
      const both = AbortSignal.any([signal, timeout]);
      const onResponse = (res: IncomingMessage): void => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_ENDPOINT_SLICE_LIST_BYTES) {
            req.destroy(new ApiError(0, `answer larger than ${MAX_ENDPOINT_SLICE_LIST_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            reject(new ApiError(status, `GET ${path}: HTTP ${status}`));
            return;
          }
          try {
            resolvePromise(JSON.parse(Buffer.concat(chunks).toString("utf8")));
          } catch (err) {
            reject(new ApiError(status, `GET ${path}: the answer is not JSON`, { cause: err }));
          }
        });
        res.on("error", (err) => reject(new ApiError(0, `GET ${path}: ${err.message}`, { cause: err })));
      };
      const headers = {
        accept: "application/json",
        ...(auth !== undefined && { authorization: `Bearer ${auth}` }),
      };
      const req = isHttps
        ? httpsRequest(url, { signal: both, headers, ...(ca !== undefined && { ca }) }, onResponse)
        : httpRequest(url, { signal: both, headers }, onResponse);
      req.on("error", (err) => {
        const why = timeout.aborted ? `no answer within ${o.requestTimeoutMs} ms` : err.message;
        reject(err instanceof ApiError ? err : new ApiError(0, `GET ${path}: ${why}`, { cause: err }));
      });
      req.end();
    });
  };

  /** Every EndpointSlice of the Service, in the first version the API server serves. */
  const listSlices = async (signal: AbortSignal): Promise<unknown[]> => {
    const selector = encodeURIComponent(`kubernetes.io/service-name=${o.service}`);
    let notFound: ApiError | undefined;
    for (const version of versions) {
      const base = `/apis/discovery.k8s.io/${version}/namespaces/${o.namespace}/endpointslices?labelSelector=${selector}`;
      try {
        const items: unknown[] = [];
        let cont: string | undefined;
        for (let page = 0; page < MAX_PAGES; page++) {
          const body = record(
            await get(cont === undefined ? base : `${base}&continue=${encodeURIComponent(cont)}`, signal),
          );
          if (body === undefined || !Array.isArray(body.items))
            throw new ApiError(200, `GET ${base}: not a list`);
          items.push(...(body.items as unknown[]));
          const next = record(body.metadata)?.continue;
          if (typeof next !== "string" || next === "") break;
          cont = next;
        }
        if (version !== versions[0]) versions = [version, ...versions.filter((v) => v !== version)];
        return items;
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          notFound = err; // an API server without this version (v1 arrived in 1.21): try the next
          continue;
        }
        throw err;
      }
    }
    throw notFound ?? new ApiError(404, "no discovery.k8s.io version served");
  };

  const fallback = async (why: unknown, message: string): Promise<string[]> => {
    const kept = await lastGood.read();
    if (kept === undefined) {
      throw new ClientDiscoveryError(`${message}, and there is no last good list`, { cause: why });
    }
    lastSource = kept.source;
    o.logger.warn(
      { err: why, source: kept.source, endpoints: kept.endpoints.length, savedAtMs: kept.savedAtMs },
      `${message}: using the last good list`,
    );
    return orderEndpoints(kept.endpoints, o, o.random);
  };

  const discover = async (signal: AbortSignal): Promise<string[]> => {
    const fresh = lastGood.inMemory();
    if (fresh !== undefined && fetchedAtMs !== undefined && o.clock() - fetchedAtMs < o.cacheTtlMs) {
      lastSource = "memory";
      return orderEndpoints(fresh.endpoints, o, o.random);
    }
    let items: unknown[];
    try {
      items = await listSlices(signal);
    } catch (err) {
      if (signal.aborted) throw new ClientDiscoveryError("discovery aborted", { cause: err });
      return fallback(err, `cannot list the EndpointSlices of ${o.namespace}/${o.service}`);
    }
    const endpoints = readyEndpointsOf(items, o);
    if (endpoints.length === 0) {
      return fallback(
        new ClientDiscoveryError(
          `${items.length} EndpointSlices, no ready endpoint on port ${o.port ?? o.portName}`,
        ),
        `the Service ${o.namespace}/${o.service} has no ready endpoint`,
      );
    }
    fetchedAtMs = o.clock();
    lastSource = "api";
    await lastGood.save(endpoints, o.clock());
    return orderEndpoints(endpoints, o, o.random);
  };
  return Object.assign(discover, { lastSource: () => lastSource });
}
