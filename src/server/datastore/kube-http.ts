import http from "node:http";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import type { KubeConfig } from "../kube-config.js";
import {
  DatastoreDecodeError,
  DatastoreError,
  DatastoreGoneError,
  DatastoreListError,
  DatastoreWatchError,
} from "./errors.js";
import type { DatastoreErrorDetails } from "./errors.js";
import { linkedController } from "./timing.js";
import type { KubeObject } from "./types.js";

export interface KubeHttpOptions {
  /** Deadline for one list page, headers and body, in ms. */
  readonly requestTimeoutMs: number;
  /** Largest list page body accepted, in bytes. */
  readonly maxListBytes: number;
}

export interface ListPage {
  readonly items: readonly KubeObject[];
  readonly resourceVersion: string;
  /** The continue token; undefined on the last page. */
  readonly continueToken: string | undefined;
}

type Op = "list" | "watch";

/** How much of an error response body is read (a Status object), in bytes. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

function errorFor(op: Op, message: string, details: DatastoreErrorDetails): DatastoreError {
  if (details.status === 410) return new DatastoreGoneError(message, details);
  return op === "list" ? new DatastoreListError(message, details) : new DatastoreWatchError(message, details);
}

function retryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

async function readBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.byteLength;
    if (total > maxBytes) {
      res.destroy();
      throw new RangeError(`response body larger than ${maxBytes} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/**
 * The HTTP(S) client for the Kubernetes API: plain node:http/https requests through ONE keep-alive agent
 * (never an agent per request), authenticated by `kubeConfig.applyToHTTPSOptions` (kubeconfig file,
 * in-cluster service account, token, client certificates, exec/auth plugins).
 */
export class KubeHttp {
  readonly #kubeConfig: KubeConfig;
  readonly #base: URL;
  readonly #isHttps: boolean;
  readonly #options: KubeHttpOptions;
  readonly #agent: http.Agent;
  readonly #usesProxy: boolean;
  /** With a proxy, client-node's proxy agent (created on the first request) is kept and shared. */
  #proxyAgent: http.Agent | undefined;

  constructor(kubeConfig: KubeConfig, options: KubeHttpOptions) {
    const cluster = kubeConfig.getCurrentCluster();
    if (cluster === null) throw new TypeError("kubeConfig: no current cluster");
    this.#kubeConfig = kubeConfig;
    this.#base = new URL(cluster.server);
    this.#isHttps = this.#base.protocol === "https:";
    if (!this.#isHttps && this.#base.protocol !== "http:") {
      throw new TypeError(`kubeConfig: unsupported server URL "${cluster.server}"`);
    }
    this.#options = options;
    this.#usesProxy = cluster.proxyUrl !== undefined && cluster.proxyUrl !== "";
    const agentOptions = { keepAlive: true, scheduling: "lifo" as const };
    this.#agent = this.#isHttps ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** Sockets the shared agent holds: in use plus idle. */
  socketCount(): number {
    let n = 0;
    for (const list of Object.values(this.#agent.sockets)) n += list?.length ?? 0;
    for (const list of Object.values(this.#agent.freeSockets)) n += list?.length ?? 0;
    return n;
  }

  /** Destroys every socket of the shared agent; resolves once they have all closed. */
  async destroy(): Promise<void> {
    const sockets = [this.#agent, this.#proxyAgent].flatMap((agent) =>
      agent === undefined
        ? []
        : [...Object.values(agent.sockets), ...Object.values(agent.freeSockets)].flatMap((l) => l ?? []),
    );
    // A socket still in the agent's lists has not emitted 'close' yet (the agent drops it right there),
    // even when it is already destroyed: a net.Socket emits 'close' once its handle has closed.
    const closed = sockets.map((s) => new Promise<void>((resolve) => s.once("close", () => resolve())));
    this.#agent.destroy();
    this.#proxyAgent?.destroy();
    await Promise.all(closed);
  }

  /** Lists one page. Throws DatastoreListError (or DatastoreGoneError on 410, DatastoreDecodeError). */
  async list(
    path: string,
    query: Record<string, string>,
    signal: AbortSignal,
    resource: string,
  ): Promise<ListPage> {
    return parseListPage(await this.listBody(path, query, signal, resource), resource);
  }

  /**
   * Lists one page and gives its body undecoded (parseListPage decodes it, here or in the ingest worker).
   * Throws DatastoreListError (or DatastoreGoneError on 410).
   */
  async listBody(
    path: string,
    query: Record<string, string>,
    signal: AbortSignal,
    resource: string,
  ): Promise<Buffer> {
    const { controller, dispose } = linkedController(signal);
    const timer = setTimeout(
      () => controller.abort(new DatastoreListError("list request timed out", { resource })),
      this.#options.requestTimeoutMs,
    );
    try {
      const res = await this.#request("list", path, query, controller.signal, resource);
      let body: Buffer;
      try {
        body = await readBody(res, this.#options.maxListBytes);
      } catch (cause) {
        throw this.#wrap("list", "list response broke off", cause, controller.signal, resource);
      }
      return body;
    } finally {
      clearTimeout(timer);
      dispose();
    }
  }

  /**
   * Opens a watch; resolves with the response once a 200 arrived (the caller reads and ends it). Throws
   * DatastoreWatchError (or DatastoreGoneError on 410).
   */
  watch(
    path: string,
    query: Record<string, string>,
    signal: AbortSignal,
    resource: string,
  ): Promise<IncomingMessage> {
    return this.#request("watch", path, query, signal, resource);
  }

  #wrap(op: Op, message: string, cause: unknown, signal: AbortSignal, resource: string): DatastoreError {
    if (signal.aborted && signal.reason instanceof DatastoreError) return signal.reason;
    if (cause instanceof DatastoreError) return cause;
    return errorFor(op, `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      resource,
      cause,
    });
  }

  async #request(
    op: Op,
    path: string,
    query: Record<string, string>,
    signal: AbortSignal,
    resource: string,
  ): Promise<IncomingMessage> {
    const opts: https.RequestOptions = {};
    try {
      await this.#kubeConfig.applyToHTTPSOptions(opts);
    } catch (cause) {
      throw this.#wrap(op, "cannot apply kubeconfig credentials", cause, signal, resource);
    }
    // applyToHTTPSOptions sets a fresh agent on every call (client-node #2893); use the shared one.
    if (this.#usesProxy) {
      this.#proxyAgent ??= opts.agent instanceof http.Agent ? opts.agent : undefined;
      opts.agent = this.#proxyAgent ?? this.#agent;
    } else {
      opts.agent = this.#agent;
    }
    const basePath = this.#base.pathname.replace(/\/+$/, "");
    const search = new URLSearchParams(query).toString();
    const hostname = this.#base.hostname.replace(/^\[(.*)\]$/, "$1");
    const requestOptions: https.RequestOptions = {
      ...opts,
      protocol: this.#base.protocol,
      hostname,
      port: this.#base.port === "" ? (this.#isHttps ? 443 : 80) : Number(this.#base.port),
      method: "GET",
      path: `${basePath}${path}${search === "" ? "" : `?${search}`}`,
      headers: { ...(opts.headers ?? {}), Accept: "application/json", "User-Agent": "tabby-datastore" },
      signal,
    };
    let res: IncomingMessage;
    for (let attempt = 1; ; attempt++) {
      let isReused = false;
      try {
        res = await new Promise<IncomingMessage>((resolve, reject) => {
          const req = (this.#isHttps ? https : http).request(requestOptions, resolve);
          req.on("error", (err) => {
            isReused = req.reusedSocket;
            reject(err);
          });
          req.end();
        });
        break;
      } catch (cause) {
        // A kept-alive connection the API server closed as this request went out on it ("socket hang up"
        // before any answer): every request here is a GET, so it goes once more on a new connection, as Go's
        // net/http (client-go) does. Not a sign of a failing server.
        if (attempt === 1 && isReused && !signal.aborted && isConnectionReset(cause)) continue;
        throw this.#wrap(op, `${op} request failed`, cause, signal, resource);
      }
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    let message = `${op} ${path}: HTTP ${status}`;
    try {
      const body = await readBody(res, MAX_ERROR_BODY_BYTES);
      const parsed = JSON.parse(body.toString("utf8")) as { message?: unknown };
      if (typeof parsed.message === "string") message += `: ${parsed.message.slice(0, 500)}`;
    } catch (cause) {
      // The status code says what matters; an unreadable body only loses the server's message.
      message += ` (body unreadable: ${cause instanceof Error ? cause.message : String(cause)})`;
    }
    const header = res.headers["retry-after"];
    const details: DatastoreErrorDetails = { resource, status };
    const after = retryAfterMs(header);
    throw errorFor(op, message, after === undefined ? details : { ...details, retryAfterMs: after });
  }
}

/** The peer closed the connection before answering (ECONNRESET, "socket hang up"; EPIPE while writing). */
function isConnectionReset(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ECONNRESET" || code === "EPIPE";
}

/** Decodes a list page body. Throws DatastoreDecodeError. Pure. */
export function parseListPage(body: Uint8Array, resource: string): ListPage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
  } catch (cause) {
    throw new DatastoreDecodeError("list response is not valid JSON", { resource, cause });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new DatastoreDecodeError("list response is not an object", { resource });
  }
  const { items, metadata } = parsed as Record<string, unknown>;
  if (items !== null && items !== undefined && !Array.isArray(items)) {
    throw new DatastoreDecodeError("list response items is not an array", { resource });
  }
  const meta = (metadata ?? {}) as Record<string, unknown>;
  const rv = meta.resourceVersion;
  if (typeof rv !== "string" || rv === "") {
    throw new DatastoreDecodeError("list response has no resourceVersion", { resource });
  }
  const cont = meta.continue;
  const objects = ((items ?? []) as unknown[]).filter(
    (i): i is KubeObject => i !== null && typeof i === "object" && !Array.isArray(i),
  );
  return {
    items: objects,
    resourceVersion: rv,
    continueToken: typeof cont === "string" && cont !== "" ? cont : undefined,
  };
}

/** How much of each end of a list page `peekContinue` reads, at most. */
const PEEK_BYTES = 64 * 1024;

const enum Ch {
  quote = 0x22,
  backslash = 0x5c,
  colon = 0x3a,
  comma = 0x2c,
  openBrace = 0x7b,
  closeBrace = 0x7d,
  openBracket = 0x5b,
  closeBracket = 0x5d,
}

/** JSON whitespace: space, tab, line feed, carriage return. */
function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(b: Uint8Array, i: number, end: number): number {
  while (i < end && isSpace(b[i])) i++;
  return i;
}

/** The index just past the JSON string starting at `i` (a quote), or -1 if it does not end before `end`. */
function skipString(b: Uint8Array, i: number, end: number): number {
  for (let j = i + 1; j < end; j++) {
    if (b[j] === Ch.backslash) j++;
    else if (b[j] === Ch.quote) return j + 1;
  }
  return -1;
}

/** The index just past the JSON value starting at `i`, or -1 if it does not end before `end`. */
function skipValue(b: Uint8Array, i: number, end: number): number {
  if (b[i] === Ch.quote) return skipString(b, i, end);
  if (b[i] !== Ch.openBrace && b[i] !== Ch.openBracket) {
    // A number or a literal: up to the next delimiter.
    let j = i;
    while (j < end && b[j] !== Ch.comma && b[j] !== Ch.closeBrace && b[j] !== Ch.closeBracket) j++;
    return j < end ? j : -1;
  }
  let depth = 0;
  for (let j = i; j < end; j++) {
    const c = b[j];
    if (c === Ch.quote) {
      j = skipString(b, j, end) - 1;
      if (j < 0) return -1;
    } else if (c === Ch.openBrace || c === Ch.openBracket) depth++;
    else if (c === Ch.closeBrace || c === Ch.closeBracket) {
      if (--depth === 0) return j + 1;
    }
  }
  return -1;
}

/** The list metadata's continue token, from the JSON object at [start, end) of `body`; undefined if not one. */
function tokenOf(
  body: Uint8Array,
  start: number,
  end: number,
): { readonly token: string | undefined } | undefined {
  if (body[start] !== Ch.openBrace) return undefined;
  try {
    const meta = JSON.parse(
      Buffer.from(body.buffer, body.byteOffset + start, end - start).toString("utf8"),
    ) as Record<string, unknown> | null;
    const cont = meta?.continue;
    return { token: typeof cont === "string" && cont !== "" ? cont : undefined };
  } catch {
    return undefined;
  }
}

/** The token from a top-level `metadata` before `items` in the first 64 KiB; undefined if not found. */
function tokenFromHead(body: Uint8Array): { readonly token: string | undefined } | undefined {
  const end = Math.min(body.byteLength, PEEK_BYTES);
  let i = skipSpace(body, 0, end);
  if (body[i] !== Ch.openBrace) return undefined;
  i++;
  for (;;) {
    i = skipSpace(body, i, end);
    if (body[i] !== Ch.quote) return undefined;
    const keyEnd = skipString(body, i, end);
    if (keyEnd < 0) return undefined;
    const key = Buffer.from(body.buffer, body.byteOffset + i + 1, keyEnd - i - 2).toString("latin1");
    i = skipSpace(body, keyEnd, end);
    if (body[i] !== Ch.colon) return undefined;
    i = skipSpace(body, i + 1, end);
    if (key === "items") return undefined;
    const valueEnd = skipValue(body, i, end);
    if (valueEnd < 0) return undefined;
    if (key === "metadata") return tokenOf(body, i, valueEnd);
    i = skipSpace(body, valueEnd, end);
    if (body[i] !== Ch.comma) return undefined;
    i++;
  }
}

const METADATA_FIELD = Buffer.from('"metadata":');

/**
 * The token from a top-level `metadata` that is the object's last field, within the last 64 KiB: its
 * value must end right where the object does (the last `metadata` of the tail that does is taken).
 */
function tokenFromTail(body: Uint8Array): { readonly token: string | undefined } | undefined {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let close = bytes.byteLength - 1;
  while (close >= 0 && isSpace(bytes[close])) close--;
  if (close < 0 || bytes[close] !== Ch.closeBrace) return undefined;
  const floor = Math.max(0, close - PEEK_BYTES);
  for (
    let at = bytes.lastIndexOf(METADATA_FIELD, close);
    at >= floor;
    at = bytes.lastIndexOf(METADATA_FIELD, at - 1)
  ) {
    const start = skipSpace(bytes, at + METADATA_FIELD.byteLength, close);
    const valueEnd = skipValue(bytes, start, close);
    if (valueEnd >= 0 && skipSpace(bytes, valueEnd, close) === close) return tokenOf(bytes, start, valueEnd);
    if (at === 0) break;
  }
  return undefined;
}

/**
 * A list page's continue token read before the body is decoded, so that the next page can be asked for
 * meanwhile: `{token}` (undefined on the last page), or undefined when it cannot tell. It looks for the
 * top-level `metadata` at the head (kube-apiserver writes a built-in List as kind, apiVersion, metadata,
 * items) and else at the tail (a custom resource's list has its fields sorted: apiVersion, items, kind,
 * metadata), reading at most 64 KiB at each end. Never throws. A guess only: the decoded page's own
 * continue token decides which page comes next.
 */
export function peekContinue(body: Uint8Array): { readonly token: string | undefined } | undefined {
  return tokenFromHead(body) ?? tokenFromTail(body);
}
