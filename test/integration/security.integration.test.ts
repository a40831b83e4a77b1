/**
 * Agent authentication against a real kube-apiserver 1.20.2: a tabby server with TLS and ServiceAccount
 * tokens (TokenReview with its audience, an allow-list, per-node authorization from the token's pod)
 * watches the cluster; agents connect over wss with tokens the API server issued through the TokenRequest
 * subresource, bound to pod objects on nodes. Covered: an accepted token, a token of another
 * ServiceAccount, of another audience, an expired one (signed with the API server's own key, so only its
 * expiry is wrong), none; the bgp view of another node; and the API server stopped after a successful
 * review (the session goes on, the same token reconnects within the grace, a new token is refused with
 * 4012 until the API is back).
 */
import { createPrivateKey, createSign } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { dumpView } from "../../src/cli/dump.js";
import { checkAuthSettings } from "../../src/server/config.js";
import { runServer } from "../../src/server/main.js";
import type { RunningServer } from "../../src/server/main.js";
import { RawClient, hello } from "../e2e/fanout-harness.js";
import { createPkiIn } from "../support/pki.js";
import type { TestPki } from "../support/pki.js";
import { startCluster } from "./cluster.js";
import type { Cluster } from "./cluster.js";
import { loopbackServeConfig } from "../support/serve-config.js";

const NS = "calico-system";
const AUDIENCE = "tabby";

let cluster: Cluster;
let pki: TestPki;
let pkiDir: string;
let server: RunningServer;
let url: string;
const uids = new Map<string, string>();

async function create(apiPath: string, body: Record<string, unknown>): Promise<string> {
  const made = await cluster.request<{ metadata: { uid: string } }>("POST", apiPath, body);
  return made.metadata.uid;
}

async function makePod(name: string, serviceAccount: string, node: string): Promise<void> {
  uids.set(
    name,
    await create(`/api/v1/namespaces/${NS}/pods`, {
      metadata: { name, namespace: NS },
      spec: {
        nodeName: node,
        serviceAccountName: serviceAccount,
        hostNetwork: true,
        containers: [{ name: "agent", image: "registry.example.com/calico-node:1" }],
      },
    }),
  );
}

/** A token from the TokenRequest subresource, bound to `pod` when given. */
async function requestToken(
  serviceAccount: string,
  options: { pod?: string; audience?: string; expirationSeconds?: number } = {},
): Promise<string> {
  const review = await cluster.request<{ status: { token: string } }>(
    "POST",
    `/api/v1/namespaces/${NS}/serviceaccounts/${serviceAccount}/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        audiences: [options.audience ?? AUDIENCE],
        expirationSeconds: options.expirationSeconds ?? 3600,
        ...(options.pod !== undefined && {
          boundObjectRef: { kind: "Pod", apiVersion: "v1", name: options.pod, uid: uids.get(options.pod) },
        }),
      },
    },
  );
  return review.status.token;
}

/** The same token with its expiry (and issue times) an hour in the past, signed again with the API server's key. */
async function expired(token: string): Promise<string> {
  const [head, body] = token.split(".");
  const claims = JSON.parse(Buffer.from(body!, "base64url").toString()) as Record<string, number>;
  const past = Math.floor(Date.now() / 1000) - 3600;
  const payload = Buffer.from(
    JSON.stringify({ ...claims, iat: past - 600, nbf: past - 600, exp: past }),
  ).toString("base64url");
  const key = createPrivateKey(await readFile(cluster.serviceAccountKeyPath));
  const signature = createSign("RSA-SHA256").update(`${head!}.${payload}`).sign(key).toString("base64url");
  return `${head!}.${payload}.${signature}`;
}

/** The close code a connection with this hello gets (rejects if it is not closed within 20 s). */
async function closeCodeOf(helloOverrides: Parameters<typeof hello>[0]): Promise<number> {
  const c = await RawClient.connect(url, hello(helloOverrides), { ca: pki.ca.cert });
  await c.until(() => c.closeCode !== undefined, 20_000);
  return c.closed;
}

beforeAll(async () => {
  cluster = await startCluster();
  pkiDir = await mkdtemp(path.join(os.tmpdir(), "tabby-it-pki-"));
  pki = await createPkiIn(pkiDir);
  const cert = await pki.issue("server", {
    cn: "tabby",
    san: ["IP:127.0.0.1", "DNS:localhost"],
    usage: "server",
  });
  await create("/api/v1/namespaces", { metadata: { name: NS } });
  for (const sa of ["calico-node", "intruder"]) {
    await create(`/api/v1/namespaces/${NS}/serviceaccounts`, { metadata: { name: sa } });
  }
  for (const node of ["worker-1", "worker-2"]) {
    await create("/api/v1/nodes", { metadata: { name: node, labels: { "kubernetes.io/hostname": node } } });
  }
  await makePod("calico-node-w1", "calico-node", "worker-1");
  await makePod("intruder-w2", "intruder", "worker-2");
  const config = loopbackServeConfig({
    tlsCertFile: cert.certPath,
    tlsKeyFile: cert.keyPath,
    tokenAudience: AUDIENCE,
    allowedServiceAccounts: `${NS}/calico-node`,
    tokenCacheMs: "500",
    tokenGraceMs: "600000",
    drainMs: "0",
  });
  checkAuthSettings(config);
  server = await runServer(config, {
    logger: pino({ level: "silent" }),
    kubeConfig: cluster.kubeConfig(),
    registry: new Registry(),
  });
  url = `wss://127.0.0.1:${server.port}/`;
}, 180_000);

afterAll(async () => {
  await server?.destroy();
  await cluster?.stop();
  if (pkiDir !== undefined) await rm(pkiDir, { recursive: true, force: true });
});

describe("ServiceAccount tokens against kube-apiserver 1.20", () => {
  it("accepts a bound token of the allowed ServiceAccount (tabby dump over wss with the token file)", async () => {
    const token = await requestToken("calico-node", { pod: "calico-node-w1" });
    const lines = await dumpView({
      servers: [url],
      view: "felix",
      timeoutMs: 30_000,
      tls: { ca: pki.ca.cert },
      token,
    });
    expect(lines.some((l) => l.includes('"Node/worker-1"'))).toBe(true);
  }, 60_000);

  it("refuses another ServiceAccount's token, another audience, an expired token and none with 4004", async () => {
    const good = await requestToken("calico-node", { pod: "calico-node-w1" });
    const cases = {
      otherAccount: await requestToken("intruder", { pod: "intruder-w2" }),
      otherAudience: await requestToken("calico-node", {
        pod: "calico-node-w1",
        audience: "https://kubernetes.default.svc",
      }),
      expired: await expired(good),
    };
    for (const [what, token] of Object.entries(cases)) {
      expect(await closeCodeOf({ token }), what).toBe(CloseCode.unauthorized);
    }
    expect(await closeCodeOf({}), "no token").toBe(CloseCode.unauthorized);
  }, 60_000);

  it("gives the bgp view of the token's pod's node, and refuses another node's", async () => {
    const token = await requestToken("calico-node", { pod: "calico-node-w1" });
    const own = await RawClient.live(url, hello({ token, view: "bgp", node: "worker-1" }), {
      ca: pki.ca.cert,
    });
    expect(own.welcome?.view).toBe("bgp");
    expect(await closeCodeOf({ token, view: "bgp", node: "worker-2" })).toBe(CloseCode.unauthorized);
    expect(
      await closeCodeOf({ token: await requestToken("calico-node"), view: "bgp", node: "worker-1" }),
    ).toBe(CloseCode.unauthorized);
  }, 60_000);

  it("while the API server is stopped: the session goes on, its token reconnects, a new token waits for the API", async () => {
    const token = await requestToken("calico-node", { pod: "calico-node-w1" });
    // Another expiry: two requests within one second would otherwise give the very same JWT.
    const fresh = await requestToken("calico-node", { pod: "calico-node-w1", expirationSeconds: 3700 });
    expect(fresh).not.toBe(token);
    const session = await RawClient.live(url, hello({ token }), { ca: pki.ca.cert });
    await cluster.restartApiServer({
      signal: "SIGKILL",
      whileDown: async () => {
        await new Promise((resolve) => setTimeout(resolve, 600)); // past tokenCacheMs: the server asks again
        const again = await RawClient.live(url, hello({ token }), { ca: pki.ca.cert });
        expect(again.closeCode).toBeUndefined();
        expect(await closeCodeOf({ token: fresh })).toBe(CloseCode.authUnavailable);
        expect(session.closeCode).toBeUndefined();
      },
    });
    const back = await RawClient.live(url, hello({ token: fresh }), { ca: pki.ca.cert });
    expect(back.closeCode).toBeUndefined();
    expect(session.closeCode).toBeUndefined();
  }, 300_000);
});
