import type { PeerCertificate } from "node:tls";
import { describe, expect, it } from "vitest";
import { PolicyAuthenticator, authorizeView, jwtExpiryMs, uriSansOf } from "../../src/server/auth/index.js";
import type { AuthRequest, AuthResult, PeerIdentity } from "../../src/server/auth/index.js";

const cert = (cn: string, san?: string): PeerCertificate =>
  ({ subject: { CN: cn }, ...(san !== undefined && { subjectaltname: san }) }) as unknown as PeerCertificate;

const request = (over: Partial<AuthRequest> = {}): AuthRequest => ({
  certificate: undefined,
  isCertificateTrusted: false,
  certificateError: undefined,
  token: undefined,
  signal: new AbortController().signal,
  ...over,
});

const tokenOk: AuthResult = {
  ok: true,
  identity: { method: "token", subject: "calico-system/calico-node", node: "n1", isNodeBound: true },
};
const tokens = {
  review: (token: string) =>
    Promise.resolve(
      token === "good" ? tokenOk : { ok: false as const, reason: "token-invalid" as const, detail: "" },
    ),
};
const reasonOf = (r: AuthResult): string => (r.ok ? `ok:${r.identity.method}` : r.reason);

describe("PolicyAuthenticator", () => {
  const both = new PolicyAuthenticator({
    certificate: { commonNames: ["typha-client"], uriSans: ["spiffe://c/ns/x/sa/y"] },
    tokens,
    isAnonymousAllowed: false,
  });

  it("with both methods, either one lets a client in", async () => {
    const trusted = { isCertificateTrusted: true };
    expect(
      reasonOf(await both.authenticate(request({ ...trusted, certificate: cert("typha-client") }))),
    ).toBe("ok:certificate");
    expect(
      reasonOf(
        await both.authenticate(
          request({ ...trusted, certificate: cert("x", "DNS:a, URI:spiffe://c/ns/x/sa/y") }),
        ),
      ),
    ).toBe("ok:certificate");
    expect(
      reasonOf(
        await both.authenticate(request({ ...trusted, certificate: cert("intruder"), token: "good" })),
      ),
    ).toBe("ok:token");
    expect(reasonOf(await both.authenticate(request({ ...trusted, certificate: cert("intruder") })))).toBe(
      "identity-mismatch",
    );
    expect(
      reasonOf(
        await both.authenticate(
          request({ certificate: cert("typha-client"), certificateError: "SELF_SIGNED" }),
        ),
      ),
    ).toBe("bad-certificate");
    expect(reasonOf(await both.authenticate(request({ token: "bad" })))).toBe("token-invalid");
    expect(reasonOf(await both.authenticate(request()))).toBe("no-credentials");
  });

  it("checks credentials that are presented even when anonymous clients are allowed", async () => {
    const open = new PolicyAuthenticator({ tokens, isAnonymousAllowed: true });
    expect(reasonOf(await open.authenticate(request()))).toBe("ok:anonymous");
    expect(reasonOf(await open.authenticate(request({ token: "bad" })))).toBe("token-invalid");
  });
});

describe("authorizeView", () => {
  const bound: PeerIdentity = { method: "token", subject: "s", node: "n1", isNodeBound: true };
  const unbound: PeerIdentity = { method: "token", subject: "s", node: undefined, isNodeBound: true };
  const certificate: PeerIdentity = {
    method: "certificate",
    subject: "c",
    node: undefined,
    isNodeBound: false,
  };

  it("keeps node-scoped views to the identity's node; other views are open", () => {
    expect(authorizeView(bound, "bgp", "n1")).toBeUndefined();
    expect(authorizeView(bound, "node-status", "n1")).toBeUndefined();
    expect(authorizeView(bound, "felix", "n2")).toBeUndefined();
    expect(reasonOf(authorizeView(bound, "bgp", "n2")!)).toBe("node-mismatch");
    expect(reasonOf(authorizeView(unbound, "bgp", "n1")!)).toBe("no-node-binding");
    expect(authorizeView(certificate, "bgp", "any")).toBeUndefined();
  });
});

describe("helpers", () => {
  it("reads URI SANs and a JWT's expiry", () => {
    expect(uriSansOf(cert("x", "DNS:a, URI:spiffe://a/b, IP Address:1.2.3.4, URI:urn:x"))).toEqual([
      "spiffe://a/b",
      "urn:x",
    ]);
    expect(uriSansOf(cert("x"))).toEqual([]);
    const payload = Buffer.from(JSON.stringify({ exp: 1700000000 })).toString("base64url");
    expect(jwtExpiryMs(`h.${payload}.s`)).toBe(1_700_000_000_000);
    expect(jwtExpiryMs("not-a-jwt")).toBeUndefined();
  });
});
