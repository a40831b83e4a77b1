import type { PeerCertificate } from "node:tls";
import { refuse } from "./types.js";
import type { AuthRequest, AuthResult } from "./types.js";

/** The identities a client certificate may carry, as Typha's TYPHA_CLIENTCN / TYPHA_CLIENTURISAN. */
export interface AllowedCertificateIdentity {
  /** Allowed subject common names (empty: CN not checked). */
  readonly commonNames: readonly string[];
  /** Allowed URI SANs, e.g. SPIFFE IDs (empty: URI SAN not checked). */
  readonly uriSans: readonly string[];
}

/** The URI entries of a certificate's subjectAltName (`URI:spiffe://a/b, DNS:x` → ["spiffe://a/b"]). */
export function uriSansOf(cert: PeerCertificate): string[] {
  const san = cert.subjectaltname;
  if (typeof san !== "string" || san === "") return [];
  return san
    .split(/,\s*/)
    .filter((part) => part.startsWith("URI:"))
    .map((part) => part.slice(4));
}

function commonNameOf(cert: PeerCertificate): string | undefined {
  const cn = (cert.subject as Record<string, string | string[] | undefined> | undefined)?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

/**
 * Checks a client certificate: it must chain to the client CA, then match an allowed identity. As in
 * Typha: with both CN and URI SAN configured either may match (eases migration); with one, it must.
 * Returns undefined when the request carries no certificate (another method may still authenticate it).
 */
export function checkCertificate(
  request: AuthRequest,
  allowed: AllowedCertificateIdentity,
): AuthResult | undefined {
  const cert = request.certificate;
  if (cert === undefined || Object.keys(cert).length === 0) return undefined;
  if (!request.isCertificateTrusted) {
    return refuse(
      "bad-certificate",
      `client certificate not trusted: ${request.certificateError ?? "unknown"}`,
    );
  }
  const cn = commonNameOf(cert);
  if (cn !== undefined && allowed.commonNames.includes(cn)) {
    return {
      ok: true,
      identity: { method: "certificate", subject: cn, node: undefined, isNodeBound: false },
    };
  }
  const uri = uriSansOf(cert).find((u) => allowed.uriSans.includes(u));
  if (uri !== undefined) {
    return {
      ok: true,
      identity: { method: "certificate", subject: uri, node: undefined, isNodeBound: false },
    };
  }
  return refuse("identity-mismatch", "client certificate CN / URI SAN is not allowed");
}
