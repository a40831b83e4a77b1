import type { PeerCertificate } from "node:tls";

/**
 * Why a client was refused: a bounded metric label (`tabby_auth_refused_total{reason}`).
 *
 * | reason | close code |
 * |---|---|
 * | no-credentials: neither an accepted certificate nor a token | 4004 |
 * | bad-certificate: a certificate that does not chain to the client CA | 4004 |
 * | identity-mismatch: a certificate whose CN / URI SAN is not allowed | 4004 |
 * | token-invalid: TokenReview did not authenticate the token (expired, wrong audience, revoked) | 4004 |
 * | service-account-not-allowed: the token's ServiceAccount is not in the allow-list | 4004 |
 * | pod-unknown: the token's pod does not exist (or has another uid) or has no node yet | 4004 |
 * | node-mismatch: the hello asks for a node-scoped view of another node | 4004 |
 * | no-node-binding: a token not bound to a pod asks for a node-scoped view | 4004 |
 * | review-unavailable: the Kubernetes API could not review the token (down, timeout, 5xx) | 4012 |
 */
export type AuthRefusalReason =
  | "no-credentials"
  | "bad-certificate"
  | "identity-mismatch"
  | "token-invalid"
  | "service-account-not-allowed"
  | "pod-unknown"
  | "node-mismatch"
  | "no-node-binding"
  | "review-unavailable";

export const AUTH_REFUSAL_REASONS: readonly AuthRefusalReason[] = [
  "no-credentials",
  "bad-certificate",
  "identity-mismatch",
  "token-invalid",
  "service-account-not-allowed",
  "pod-unknown",
  "node-mismatch",
  "no-node-binding",
  "review-unavailable",
];

/** Who a client is, once authenticated. */
export interface PeerIdentity {
  readonly method: "certificate" | "token" | "anonymous";
  /** CN or URI SAN of the certificate; `ns/name` of the ServiceAccount; "anonymous". */
  readonly subject: string;
  /**
   * The node this identity may ask node-scoped data of; undefined when it is not bound to a node (then
   * `isNodeBound` says whether node-scoped views are refused or allowed for any node).
   */
  readonly node: string | undefined;
  /** True: node-scoped views only for `node` (a token bound to a pod). False: not node-restricted. */
  readonly isNodeBound: boolean;
}

/** What the server knows about a connecting client when it authenticates it. */
export interface AuthRequest {
  /** The TLS client certificate (undefined: none, or a plain-TCP listener). */
  readonly certificate: PeerCertificate | undefined;
  /** The certificate chains to the client CA (tls.TLSSocket#authorized). */
  readonly isCertificateTrusted: boolean;
  /** Why the chain check failed (tls.TLSSocket#authorizationError), for the log. */
  readonly certificateError: string | undefined;
  /** The hello's token. */
  readonly token: string | undefined;
  /** Aborted when the connection closes or the handshake times out. */
  readonly signal: AbortSignal;
}

export type AuthResult =
  | { readonly ok: true; readonly identity: PeerIdentity }
  | { readonly ok: false; readonly reason: AuthRefusalReason; readonly detail: string };

/** Decides whether a connecting client may go on. Never throws: every failure is an AuthResult. */
export interface Authenticator {
  authenticate(request: AuthRequest): Promise<AuthResult>;
}

export const ANONYMOUS: PeerIdentity = Object.freeze({
  method: "anonymous",
  subject: "anonymous",
  node: undefined,
  isNodeBound: false,
});

export function refuse(reason: AuthRefusalReason, detail: string): AuthResult {
  return { ok: false, reason, detail };
}
