import { SimError, SimErrorCode } from "./errors.js";

/** What a request path addresses. */
export type Route =
  | { readonly type: "core-versions" }
  | { readonly type: "group-list" }
  | { readonly type: "group"; readonly group: string }
  | { readonly type: "resource-list"; readonly group: string; readonly version: string }
  | { readonly type: "version" }
  | { readonly type: "health" }
  | {
      readonly type: "resource";
      readonly group: string;
      readonly version: string;
      readonly plural: string;
      readonly namespace: string | undefined;
      readonly name: string | undefined;
      readonly subresource: string | undefined;
      /** The legacy `/watch/` path prefix. */
      readonly isWatchPath: boolean;
    }
  | { readonly type: "unknown" };

export function parseRoute(pathname: string): Route {
  let segs: string[];
  try {
    segs = pathname
      .split("/")
      .filter((s) => s !== "")
      .map((s) => decodeURIComponent(s));
  } catch {
    return { type: "unknown" }; // a malformed %-escape: the caller answers 404 and counts it
  }
  const [root, a, b] = segs;
  if (segs.length === 1 && (root === "healthz" || root === "livez" || root === "readyz"))
    return { type: "health" };
  if (segs.length === 1 && root === "version") return { type: "version" };
  if (root === "api") {
    if (segs.length === 1) return { type: "core-versions" };
    if (a !== "v1") return { type: "unknown" };
    if (segs.length === 2) return { type: "resource-list", group: "", version: "v1" };
    return resourceRoute("", "v1", segs.slice(2));
  }
  if (root === "apis") {
    if (segs.length === 1) return { type: "group-list" };
    if (segs.length === 2) return { type: "group", group: a! };
    if (segs.length === 3) return { type: "resource-list", group: a!, version: b! };
    return resourceRoute(a!, b!, segs.slice(3));
  }
  return { type: "unknown" };
}

function resourceRoute(group: string, version: string, rest: string[]): Route {
  const isWatchPath = rest[0] === "watch";
  const segs = isWatchPath ? rest.slice(1) : rest;
  let namespace: string | undefined;
  let tail = segs;
  // `namespaces/<ns>/<plural>…` is namespaced; `namespaces` and `namespaces/<name>` address Namespace objects.
  if (segs[0] === "namespaces" && segs.length >= 3) {
    namespace = segs[1];
    tail = segs.slice(2);
  }
  const [plural, name, subresource, ...extra] = tail;
  if (plural === undefined || extra.length > 0) return { type: "unknown" };
  return { type: "resource", group, version, plural, namespace, name, subresource, isWatchPath };
}

export interface ListWatchQuery {
  readonly isWatch: boolean;
  readonly limit: number | undefined;
  readonly continueToken: string | undefined;
  readonly resourceVersion: string | undefined;
  readonly resourceVersionMatch: string | undefined;
  readonly allowWatchBookmarks: boolean;
  readonly sendInitialEvents: boolean;
  readonly timeoutSeconds: number | undefined;
  /** `labelSelector`, as given (lists only). */
  readonly labelSelector: string | undefined;
}

export function parseListWatchQuery(q: URLSearchParams): ListWatchQuery {
  return {
    isWatch: isTrue(q.get("watch")),
    limit: optionalInt(q, "limit"),
    continueToken: nonEmpty(q.get("continue")),
    resourceVersion: nonEmpty(q.get("resourceVersion")),
    resourceVersionMatch: nonEmpty(q.get("resourceVersionMatch")),
    allowWatchBookmarks: isTrue(q.get("allowWatchBookmarks")),
    sendInitialEvents: isTrue(q.get("sendInitialEvents")),
    timeoutSeconds: optionalInt(q, "timeoutSeconds"),
    labelSelector: nonEmpty(q.get("labelSelector")),
  };
}

function isTrue(v: string | null): boolean {
  return v === "true" || v === "1";
}

function nonEmpty(v: string | null): string | undefined {
  return v === null || v === "" ? undefined : v;
}

function optionalInt(q: URLSearchParams, name: string): number | undefined {
  const v = nonEmpty(q.get(name));
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new SimError(SimErrorCode.badRequest, `invalid ${name}: ${v}`);
  return n;
}

/** A resourceVersion query parameter as a number. */
export function parseRv(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) {
    throw new SimError(SimErrorCode.badRequest, `invalid resourceVersion: ${v}`);
  }
  return n;
}

interface ContinueToken {
  readonly rv: number;
  readonly start: string;
}

/** A continue token: the list's resourceVersion and the last key returned (base64 JSON, like the API server's). */
export function encodeContinue(rv: number, lastKey: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start: lastKey })).toString("base64url");
}

export function decodeContinue(token: string): ContinueToken {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch (err) {
    throw new SimError(SimErrorCode.badRequest, "continue key is not valid", { cause: err });
  }
  const t = parsed as { v?: unknown; rv?: unknown; start?: unknown } | null;
  if (t === null || t.v !== "meta.k8s.io/v1" || !Number.isSafeInteger(t.rv) || typeof t.start !== "string") {
    throw new SimError(SimErrorCode.badRequest, "continue key is not valid");
  }
  return { rv: t.rv as number, start: t.start };
}
