import type { ViewName } from "../../../proto/messages.js";
import { VIEWS } from "../../snapshot/kinds.js";
import { checkCertificate } from "./certificate-identity.js";
import type { AllowedCertificateIdentity } from "./certificate-identity.js";
import type { TokenReviewer } from "./token-review.js";
import { ANONYMOUS, refuse } from "./types.js";
import type { AuthRequest, AuthResult, Authenticator, PeerIdentity } from "./types.js";

export interface AuthPolicy {
  /** mTLS: the allowed identities of a client certificate (the chain is checked by TLS). */
  readonly certificate?: AllowedCertificateIdentity;
  /** ServiceAccount tokens, reviewed by the Kubernetes API. */
  readonly tokens?: Pick<TokenReviewer, "review">;
  /** Let a client with no credentials in (`--insecure-allow-anonymous`). */
  readonly isAnonymousAllowed: boolean;
}

/**
 * One or both methods, as configured: a client is in when its certificate matches an allowed identity
 * or its token passes review. A certificate that does not match is not fatal when a token may still
 * authenticate the client. Credentials that are presented are always checked, also when anonymous
 * clients are allowed: a bad one is refused.
 */
export class PolicyAuthenticator implements Authenticator {
  readonly #policy: AuthPolicy;

  constructor(policy: AuthPolicy) {
    this.#policy = policy;
  }

  async authenticate(request: AuthRequest): Promise<AuthResult> {
    const p = this.#policy;
    const byCertificate = p.certificate === undefined ? undefined : checkCertificate(request, p.certificate);
    if (byCertificate?.ok === true) return byCertificate;
    if (p.tokens !== undefined && request.token !== undefined) {
      return p.tokens.review(request.token, request.signal);
    }
    if (byCertificate !== undefined) return byCertificate;
    if (p.isAnonymousAllowed) return { ok: true, identity: ANONYMOUS };
    return refuse(
      "no-credentials",
      p.tokens !== undefined ? "no client certificate and no token" : "no client certificate",
    );
  }
}

/**
 * Per-node authorization: a node-bound identity gets node-scoped views (`bgp`, `node-status`) of its own
 * node only; views without node-scoped kinds are open to every authenticated client. Undefined: allowed.
 */
export function authorizeView(
  identity: PeerIdentity,
  view: ViewName,
  node: string | undefined,
): AuthResult | undefined {
  if (!identity.isNodeBound || VIEWS[view].nodeScopedKinds.size === 0) return undefined;
  if (identity.node === undefined) {
    return refuse("no-node-binding", `view ${view} is node-scoped and the token is not bound to a pod`);
  }
  if (node !== identity.node) {
    return refuse(
      "node-mismatch",
      `view ${view} of node ${String(node).slice(0, 253)}: not this client's node`,
    );
  }
  return undefined;
}
