import type { SecureContextOptions } from "node:tls";
import { VIEW_NAMES } from "../../proto/messages.js";
import type { ViewName } from "../../proto/messages.js";
import { VIEWS } from "../snapshot/kinds.js";
import { ClientOptionsError } from "./errors.js";

/**
 * The logger the client writes to: the four levels of pino's API (`logger.warn(obj, msg)`), so a pino
 * Logger can be passed as is. The default logs nothing.
 */
export interface ClientLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const noop = (): void => undefined;
export const NOOP_LOGGER: ClientLogger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

/** Returns the addresses to try, re-run before each connection attempt. Should honour `signal`. */
export type ServerDiscovery = (signal: AbortSignal) => Promise<readonly string[]>;

/**
 * TLS settings for `wss://` servers. Only these fields reach the socket (picked one by one: nothing in
 * this object can change a WebSocket option such as maxFrameBytes).
 */
export type ClientTlsOptions = Pick<SecureContextOptions, "ca" | "cert" | "key" | "passphrase"> & {
  /** Verify the server's certificate against `ca` (or the system roots). Default true. */
  readonly rejectUnauthorized?: boolean;
  /** The name checked against the server's certificate (SNI). Default the URL's host. */
  readonly servername?: string;
};

/** The TLS fields the client passes to the socket. */
export const CLIENT_TLS_FIELDS = [
  "ca",
  "cert",
  "key",
  "passphrase",
  "rejectUnauthorized",
  "servername",
] as const;

/**
 * Returns the bearer token for the next hello; called before each connection attempt, so it can re-read
 * a projected ServiceAccount token file that kubelet rotates. Should honour `signal` (aborted after
 * connectTimeoutMs or on close).
 */
export type TokenSource = (signal: AbortSignal) => string | Promise<string>;

export interface TabbyClientOptions {
  /** `ws://host:port` (or `wss://`) addresses, or a function that discovers them before each attempt. */
  readonly servers: readonly string[] | ServerDiscovery;
  /** The view to mirror. */
  readonly view: ViewName;
  /** The node the agent runs on. Required for views with node-scoped kinds (`bgp`, `node-status`). */
  readonly nodeName?: string;
  /** Sent in the hello. Default "tabby-client". */
  readonly clientName?: string;
  /** Sent in the hello. Default the library's version. */
  readonly clientVersion?: string;
  /** Default: logs nothing. */
  readonly logger?: ClientLogger;
  /** Aborting it closes the client. */
  readonly signal?: AbortSignal;
  /**
   * From starting an attempt to the server accepting the WebSocket (TCP, TLS, upgrade; and the time
   * discovery may take). Default 10,000 ms. Once accepted, the wait for the welcome is bounded by
   * readTimeoutMs: a busy server (a reconnect storm) is waited for rather than abandoned and retried.
   * Both timeouts look at the socket once more before they fire: an answer that arrived while the agent's
   * own event loop was stalled (a busy node, a long GC) counts.
   */
  readonly connectTimeoutMs?: number;
  /** Watchdog: no frame at all (pings included) within this long => reconnect. Default 30,000 ms. */
  readonly readTimeoutMs?: number;
  /** First reconnect delay (jittered ×0.5–1.5). Default 200 ms. */
  readonly backoffInitialMs?: number;
  /** Largest reconnect delay; the delay doubles per failed attempt up to this. Default 10,000 ms. */
  readonly backoffMaxMs?: number;
  /**
   * Keep a mirror of the view (default true). False is "lite" mode: no mirror, snapshot chunks are
   * counted but not decoded, deltas are still emitted as updates (every change). For load tests.
   */
  readonly mirror?: boolean;
  /**
   * Decode the changes of delta frames (default true). False, only with `mirror: false`: delta frames
   * are skimmed for their revisions, their changes are neither decoded nor validated, and no `updates`
   * are emitted (stats.deltas still counts the frames). For load-test agents that discard what they
   * receive, as Typha's load clients do: decoding every value is most of a lite client's CPU.
   */
  readonly decodeDeltas?: boolean;
  /** Bearer token sent in the hello: a string, or a function called before each connection attempt. */
  readonly token?: string | TokenSource;
  /** TLS settings for `wss://` addresses. */
  readonly tls?: ClientTlsOptions;
  /** Largest frame accepted, and largest inflated snapshot chunk. Default 64 MiB. */
  readonly maxFrameBytes?: number;
  /** How long close() waits for the server's close frame before dropping the socket. Default 2,000 ms. */
  readonly closeTimeoutMs?: number;
  /** Random source in [0, 1) for backoff jitter and server choice (tests). Default Math.random. */
  readonly random?: () => number;
}

/** The library's version, sent as the default `clientVersion`. */
export const CLIENT_VERSION = "0.1.0";

export interface ResolvedClientOptions {
  readonly servers: readonly string[] | ServerDiscovery;
  readonly view: ViewName;
  readonly nodeName: string | undefined;
  readonly clientName: string;
  readonly clientVersion: string;
  readonly logger: ClientLogger;
  readonly signal: AbortSignal | undefined;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly isMirror: boolean;
  readonly isDecodingDeltas: boolean;
  readonly token: string | TokenSource | undefined;
  readonly tls: ClientTlsOptions | undefined;
  readonly maxFrameBytes: number;
  readonly closeTimeoutMs: number;
  readonly random: () => number;
}

/** setTimeout's limit. */
const MAX_DELAY_MS = 2_147_483_647;

/** True for a `ws://` or `wss://` URL with a host. */
export function isServerAddress(value: unknown): value is string {
  if (typeof value !== "string" || value.length > 2048) return false;
  try {
    const url = new URL(value);
    return (url.protocol === "ws:" || url.protocol === "wss:") && url.hostname !== "";
  } catch {
    return false;
  }
}

function duration(value: unknown, field: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > MAX_DELAY_MS) {
    throw new ClientOptionsError(field, `an integer number of milliseconds in [${min}, ${MAX_DELAY_MS}]`);
  }
  return value;
}

function text(value: unknown, field: string, maxLength: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "" || value.length > maxLength) {
    throw new ClientOptionsError(field, `a non-empty string of at most ${maxLength} chars`);
  }
  return value;
}

function isLogger(value: unknown): value is ClientLogger {
  if (value === null || typeof value !== "object") return false;
  const l = value as Record<string, unknown>;
  return ["debug", "info", "warn", "error"].every((level) => typeof l[level] === "function");
}

/** Validates the options and fills in the defaults. Throws ClientOptionsError naming the first bad field. */
export function resolveOptions(options: TabbyClientOptions): ResolvedClientOptions {
  if (options === null || typeof options !== "object") {
    throw new ClientOptionsError("options", "an object");
  }
  const o = options as unknown as Record<string, unknown>;

  const servers = o.servers;
  if (typeof servers !== "function") {
    if (!Array.isArray(servers) || servers.length === 0 || servers.length > 1000) {
      throw new ClientOptionsError("servers", "a non-empty array of ws:// URLs or a discovery function");
    }
    servers.forEach((s, i) => {
      if (!isServerAddress(s)) throw new ClientOptionsError(`servers[${i}]`, "a ws:// or wss:// URL");
    });
  }

  const view = o.view;
  if (typeof view !== "string" || !(VIEW_NAMES as readonly string[]).includes(view)) {
    throw new ClientOptionsError("view", `one of ${VIEW_NAMES.join(", ")}`);
  }
  const nodeName = text(o.nodeName, "nodeName", 253);
  if (nodeName === undefined && VIEWS[view as ViewName].nodeScopedKinds.size > 0) {
    throw new ClientOptionsError("nodeName", `set for view "${view}" (it has node-scoped kinds)`);
  }

  const logger = o.logger;
  if (logger !== undefined && !isLogger(logger)) {
    throw new ClientOptionsError("logger", "an object with debug, info, warn and error methods");
  }
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new ClientOptionsError("signal", "an AbortSignal");
  }
  const mirror = o.mirror;
  if (mirror !== undefined && typeof mirror !== "boolean") {
    throw new ClientOptionsError("mirror", "a boolean");
  }
  const decodeDeltas = o.decodeDeltas;
  if (decodeDeltas !== undefined && typeof decodeDeltas !== "boolean") {
    throw new ClientOptionsError("decodeDeltas", "a boolean");
  }
  if (decodeDeltas === false && mirror !== false) {
    throw new ClientOptionsError("decodeDeltas", "true (or unset) unless mirror is false");
  }
  const tls = resolveTls(o.tls);
  const token = typeof o.token === "function" ? (o.token as TokenSource) : text(o.token, "token", 8192);
  const random = o.random;
  if (random !== undefined && typeof random !== "function") {
    throw new ClientOptionsError("random", "a function returning a number in [0, 1)");
  }

  const backoffInitialMs = duration(o.backoffInitialMs, "backoffInitialMs", 200);
  const backoffMaxMs = duration(o.backoffMaxMs, "backoffMaxMs", Math.max(10_000, backoffInitialMs));
  if (backoffMaxMs < backoffInitialMs) {
    throw new ClientOptionsError("backoffMaxMs", "at least backoffInitialMs");
  }
  const maxFrameBytes = o.maxFrameBytes ?? 64 * 1024 * 1024;
  if (
    typeof maxFrameBytes !== "number" ||
    !Number.isInteger(maxFrameBytes) ||
    maxFrameBytes < 1024 ||
    maxFrameBytes > 256 * 1024 * 1024
  ) {
    throw new ClientOptionsError("maxFrameBytes", "an integer number of bytes in [1024, 268435456]");
  }

  return {
    servers: servers as readonly string[] | ServerDiscovery,
    view: view as ViewName,
    nodeName,
    clientName: text(o.clientName, "clientName", 128) ?? "tabby-client",
    clientVersion: text(o.clientVersion, "clientVersion", 128) ?? CLIENT_VERSION,
    logger: logger ?? NOOP_LOGGER,
    signal,
    connectTimeoutMs: duration(o.connectTimeoutMs, "connectTimeoutMs", 10_000),
    readTimeoutMs: duration(o.readTimeoutMs, "readTimeoutMs", 30_000),
    backoffInitialMs,
    backoffMaxMs,
    isMirror: mirror ?? true,
    isDecodingDeltas: decodeDeltas ?? true,
    token,
    tls,
    maxFrameBytes,
    closeTimeoutMs: duration(o.closeTimeoutMs, "closeTimeoutMs", 2_000),
    random: (random as (() => number) | undefined) ?? Math.random,
  };
}

function isPem(value: unknown): boolean {
  const one = (v: unknown): boolean => typeof v === "string" || Buffer.isBuffer(v);
  return one(value) || (Array.isArray(value) && value.length > 0 && value.every(one));
}

/** Checks each TLS field and keeps only the known ones (a copy: later changes to the caller's object do not count). */
function resolveTls(value: unknown): ClientTlsOptions | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ClientOptionsError("tls", "an object");
  }
  const t = value as Record<string, unknown>;
  const known = new Set<string>(CLIENT_TLS_FIELDS);
  const unknown = Object.keys(t).find((k) => !known.has(k));
  if (unknown !== undefined) {
    throw new ClientOptionsError(
      `tls.${unknown}`,
      `absent (known TLS fields: ${CLIENT_TLS_FIELDS.join(", ")})`,
    );
  }
  for (const field of ["ca", "cert", "key"] as const) {
    if (t[field] !== undefined && !isPem(t[field])) {
      throw new ClientOptionsError(`tls.${field}`, "a PEM string or Buffer (or an array of them)");
    }
  }
  if (t.passphrase !== undefined && typeof t.passphrase !== "string") {
    throw new ClientOptionsError("tls.passphrase", "a string");
  }
  if (t.rejectUnauthorized !== undefined && typeof t.rejectUnauthorized !== "boolean") {
    throw new ClientOptionsError("tls.rejectUnauthorized", "a boolean");
  }
  if (t.servername !== undefined && (typeof t.servername !== "string" || t.servername === "")) {
    throw new ClientOptionsError("tls.servername", "a non-empty string");
  }
  const out: Record<string, unknown> = {};
  for (const field of CLIENT_TLS_FIELDS) if (t[field] !== undefined) out[field] = t[field];
  return out;
}
