import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { KubeApi } from "./kube-api.js";
import { refuse } from "./types.js";
import type { AuthResult } from "./types.js";

/** How tabby checks ServiceAccount tokens. Units in the names; defaults in TOKEN_REVIEW_DEFAULTS. */
export interface TokenReviewOptions {
  /** The audience the token must be issued for (TokenReview spec.audiences). Required. */
  readonly audience: string;
  /** `namespace/name` of the ServiceAccounts that may connect. Required, non-empty. */
  readonly allowedServiceAccounts: readonly string[];
  /** A review's answer is reused this long (and never past the token's expiry). */
  readonly cacheTtlMs?: number;
  /** A refusal is reused this long (spares the API a token that keeps retrying). */
  readonly negativeCacheTtlMs?: number;
  /**
   * While the API cannot review tokens, a token that was accepted is still accepted for this long after
   * its last successful review (never past its expiry): sessions reconnect, new tokens are refused.
   */
  readonly graceMs?: number;
  /** Reviews kept (the oldest is forgotten first). */
  readonly maxCacheEntries?: number;
}

export const TOKEN_REVIEW_DEFAULTS = {
  cacheTtlMs: 60_000,
  negativeCacheTtlMs: 10_000,
  graceMs: 600_000,
  maxCacheEntries: 10_000,
} as const;

const POD_NAME = "authentication.kubernetes.io/pod-name";
const POD_UID = "authentication.kubernetes.io/pod-uid";
const NODE_NAME = "authentication.kubernetes.io/node-name";
const SA_PREFIX = "system:serviceaccount:";

interface CacheEntry {
  result: AuthResult;
  /** The answer is fresh until then. */
  freshUntilMs: number;
  /** A positive answer may stand in for an unavailable API until then (0: never). */
  graceUntilMs: number;
}

/** The review could not be done (API down, timeout, 5xx, tabby not allowed to create tokenreviews). */
class ReviewUnavailable extends Error {}

function record(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function firstString(v: unknown): string | undefined {
  const s = Array.isArray(v) ? (v[0] as unknown) : v;
  return typeof s === "string" && s !== "" ? s : undefined;
}

/** The `exp` claim of a JWT, in epoch ms (read only after the API accepted the token). */
export function jwtExpiryMs(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const exp = record(JSON.parse(Buffer.from(payload, "base64url").toString("utf8"))).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Validates ServiceAccount tokens with the Kubernetes TokenReview API, checks the ServiceAccount against
 * the allow-list, and binds the token to the node of its pod (from the `pod-name`/`pod-uid` extras of a
 * bound token: the pod is read from the API). Answers are cached (bounded in time and entries) and
 * concurrent reviews of one token share one request.
 */
export class TokenReviewer {
  readonly #api: KubeApi;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #audience: string;
  readonly #allowed: ReadonlySet<string>;
  readonly #cacheTtlMs: number;
  readonly #negativeCacheTtlMs: number;
  readonly #graceMs: number;
  readonly #maxEntries: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inFlight = new Map<string, Promise<AuthResult>>();
  /** Counts for tests and /status: reviews sent, answers from the cache, grace acceptances. */
  readonly counts = { reviews: 0, cacheHits: 0, graceAccepted: 0, unavailable: 0 };

  constructor(deps: {
    readonly api: KubeApi;
    readonly logger: Logger;
    readonly clock?: () => number;
    readonly options: TokenReviewOptions;
  }) {
    const o = deps.options;
    if (o.audience === "") throw new TypeError("TokenReviewOptions.audience: must not be empty");
    if (o.allowedServiceAccounts.length === 0) {
      throw new TypeError("TokenReviewOptions.allowedServiceAccounts: must list at least one namespace/name");
    }
    this.#api = deps.api;
    this.#logger = deps.logger;
    this.#clock = deps.clock ?? Date.now;
    this.#audience = o.audience;
    this.#allowed = new Set(o.allowedServiceAccounts);
    this.#cacheTtlMs = o.cacheTtlMs ?? TOKEN_REVIEW_DEFAULTS.cacheTtlMs;
    this.#negativeCacheTtlMs = o.negativeCacheTtlMs ?? TOKEN_REVIEW_DEFAULTS.negativeCacheTtlMs;
    this.#graceMs = o.graceMs ?? TOKEN_REVIEW_DEFAULTS.graceMs;
    this.#maxEntries = o.maxCacheEntries ?? TOKEN_REVIEW_DEFAULTS.maxCacheEntries;
  }

  /** Reviews (or recalls) a token. Never throws. */
  review(token: string, signal: AbortSignal): Promise<AuthResult> {
    const key = createHash("sha256").update(token).digest("base64");
    const now = this.#clock();
    const entry = this.#cache.get(key);
    if (entry !== undefined && now < entry.freshUntilMs) {
      this.counts.cacheHits++;
      return Promise.resolve(entry.result);
    }
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.#reviewAndCache(key, token, signal).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  async #reviewAndCache(key: string, token: string, signal: AbortSignal): Promise<AuthResult> {
    let result: AuthResult;
    try {
      this.counts.reviews++;
      result = await this.#review(token, signal);
    } catch (err) {
      this.counts.unavailable++;
      const now = this.#clock();
      const entry = this.#cache.get(key);
      if (entry !== undefined && entry.result.ok && now < entry.graceUntilMs) {
        this.counts.graceAccepted++;
        this.#logger.debug({ err }, "token review unavailable: a token accepted before is accepted (grace)");
        return entry.result;
      }
      this.#logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        "token review unavailable",
      );
      return refuse("review-unavailable", "the Kubernetes API cannot review the token now");
    }
    const now = this.#clock();
    const expiresAtMs = jwtExpiryMs(token) ?? Number.POSITIVE_INFINITY;
    this.#cache.delete(key); // re-inserted last: the Map's order is the eviction order
    this.#cache.set(
      key,
      result.ok
        ? {
            result,
            freshUntilMs: Math.min(now + this.#cacheTtlMs, expiresAtMs),
            graceUntilMs: Math.min(now + this.#graceMs, expiresAtMs),
          }
        : {
            result,
            freshUntilMs: now + Math.min(this.#cacheTtlMs, this.#negativeCacheTtlMs),
            graceUntilMs: 0,
          },
    );
    while (this.#cache.size > this.#maxEntries) {
      const oldest = this.#cache.keys().next().value as string;
      this.#cache.delete(oldest);
    }
    return result;
  }

  async #review(token: string, signal: AbortSignal): Promise<AuthResult> {
    const res = await this.#call(
      "POST",
      "/apis/authentication.k8s.io/v1/tokenreviews",
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, audiences: [this.#audience] },
      },
      signal,
    );
    if (res.status !== 200 && res.status !== 201) {
      throw new ReviewUnavailable(`TokenReview answered HTTP ${res.status}`);
    }
    const status = record(record(res.body).status);
    if (status.authenticated !== true) {
      const error = typeof status.error === "string" ? status.error.slice(0, 200) : "not authenticated";
      return refuse("token-invalid", `token not accepted: ${error}`);
    }
    const audiences = status.audiences;
    if (Array.isArray(audiences) && !audiences.includes(this.#audience)) {
      return refuse("token-invalid", "token not issued for this audience");
    }
    const user = record(status.user);
    const username = typeof user.username === "string" ? user.username : "";
    if (!username.startsWith(SA_PREFIX)) {
      return refuse("service-account-not-allowed", "the token is not a ServiceAccount token");
    }
    const [namespace, name] = username.slice(SA_PREFIX.length).split(":");
    const subject = `${namespace ?? ""}/${name ?? ""}`;
    if (namespace === undefined || name === undefined || !this.#allowed.has(subject)) {
      return refuse("service-account-not-allowed", `ServiceAccount ${subject.slice(0, 300)} is not allowed`);
    }
    const extra = record(user.extra);
    const podName = firstString(extra[POD_NAME]);
    if (podName === undefined) {
      // Not bound to a pod (a legacy Secret token): no node-scoped data.
      return { ok: true, identity: { method: "token", subject, node: undefined, isNodeBound: true } };
    }
    const node =
      firstString(extra[NODE_NAME]) ??
      (await this.#nodeOfPod(namespace, podName, firstString(extra[POD_UID]), signal));
    if (node === undefined) {
      return refuse("pod-unknown", `pod ${namespace}/${podName.slice(0, 253)} is gone or not on a node`);
    }
    return { ok: true, identity: { method: "token", subject, node, isNodeBound: true } };
  }

  async #nodeOfPod(
    namespace: string,
    pod: string,
    uid: string | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const res = await this.#call(
      "GET",
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`,
      undefined,
      signal,
    );
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new ReviewUnavailable(`GET pod answered HTTP ${res.status}`);
    const body = record(res.body);
    if (uid !== undefined && record(body.metadata).uid !== uid) return undefined;
    const nodeName = record(body.spec).nodeName;
    return typeof nodeName === "string" && nodeName !== "" ? nodeName : undefined;
  }

  async #call(method: "GET" | "POST", path: string, body: unknown, signal: AbortSignal) {
    try {
      return await this.#api.request(method, path, body, signal);
    } catch (err) {
      throw new ReviewUnavailable(
        `${method} ${path.split("/")[3] ?? path}: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
        },
      );
    }
  }
}
