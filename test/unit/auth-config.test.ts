import { describe, expect, it } from "vitest";
import { checkAuthSettings, listOf, loadServeConfig } from "../../src/server/config.js";

const err = (field: string) => expect.objectContaining({ code: "ERR_CONFIG_INVALID", field }) as Error;
const check = (flags: Record<string, string>) => checkAuthSettings(loadServeConfig(flags, {}));

describe("security settings", () => {
  it("refuses to serve without client authentication unless --insecure-allow-anonymous", () => {
    expect(() => check({})).toThrow(err("insecureAllowAnonymous"));
    expect(check({ insecureAllowAnonymous: "true" })).toMatchObject({ isAnonymousOnly: true, isTls: false });
  });

  it("accepts mTLS (CA plus CN or URI SAN) and tokens (audience plus allow-list), from flags or TABBY_* variables", () => {
    const tls = { tlsCertFile: "/c", tlsKeyFile: "/k" };
    expect(check({ ...tls, clientCaFile: "/ca", clientCn: "typha-client" })).toMatchObject({ isMtls: true });
    expect(check({ ...tls, clientCaFile: "/ca", clientUriSan: "spiffe://x/y" })).toMatchObject({
      isMtls: true,
    });
    expect(
      check({ ...tls, tokenAudience: "tabby", allowedServiceAccounts: "calico-system/calico-node" }),
    ).toMatchObject({ isTokenReview: true, isMtls: false });
    const fromEnv = loadServeConfig(
      {},
      {
        TABBY_TLS_CERT_FILE: "/c",
        TABBY_TLS_KEY_FILE: "/k",
        TABBY_TOKEN_AUDIENCE: "tabby",
        TABBY_ALLOWED_SERVICE_ACCOUNTS: "calico-system/calico-node,kube-system/calico-node",
      },
    );
    expect(checkAuthSettings(fromEnv).isTokenReview).toBe(true);
    expect(listOf(fromEnv.allowedServiceAccounts)).toEqual([
      "calico-system/calico-node",
      "kube-system/calico-node",
    ]);
  });

  it("names the setting that is missing its partner", () => {
    const tls = { tlsCertFile: "/c", tlsKeyFile: "/k" };
    expect(() => check({ tlsCertFile: "/c", insecureAllowAnonymous: "true" })).toThrow(err("tlsKeyFile"));
    expect(() => check({ ...tls, clientCaFile: "/ca" })).toThrow(err("clientCn"));
    expect(() => check({ ...tls, clientCn: "x" })).toThrow(err("clientCaFile"));
    expect(() => check({ clientCaFile: "/ca", clientCn: "x" })).toThrow(err("tlsCertFile"));
    expect(() => check({ ...tls, tokenAudience: "tabby" })).toThrow(err("allowedServiceAccounts"));
    expect(() => check({ tokenAudience: "tabby", allowedServiceAccounts: "a/b" })).toThrow(
      err("tlsCertFile"),
    );
    expect(() => check({ httpTls: "true", insecureAllowAnonymous: "true" })).toThrow(err("httpTls"));
    expect(() => loadServeConfig({ allowedServiceAccounts: "calico-node" }, {})).toThrow(
      err("allowedServiceAccounts"),
    );
    expect(() => loadServeConfig({ clientUriSan: "not a uri" }, {})).toThrow(err("clientUriSan"));
  });
});
