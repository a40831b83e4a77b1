/**
 * ServiceAccount tokens end to end on real sockets: the fan-out server reviews the hello's token with a
 * fake Kubernetes API (TokenReview and pods on a loopback HTTP server, reached through a KubeConfig as in
 * production), checks the allow-list, binds node-scoped views to the token's pod's node, caches answers,
 * and keeps accepting known tokens (only) while the API is down.
 */
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it, onTestFinished } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { KubeConfigApi, PolicyAuthenticator, TokenReviewer } from "../../src/server/auth/index.js";
import {
  RawClient,
  expectStillReceiving,
  hello,
  metricValue,
  silentLogger,
  startFanout,
} from "./fanout-harness.js";

interface FakeToken {
  readonly sa: string;
  readonly pod?: { readonly name: string; readonly uid: string };
  readonly audiences?: readonly string[];
}

class FakeKubeApi {
  readonly tokens = new Map<string, FakeToken>();
  readonly pods = new Map<string, { uid: string; nodeName: string }>();
  reviews = 0;
  isDown = false;
  url = "";

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    onTestFinished(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: this.url, skipTLSVerify: true }],
      users: [{ name: "tabby", token: "tabby-sa-token" }],
      contexts: [{ name: "fake", cluster: "fake", user: "tabby" }],
      currentContext: "fake",
    });
    return kc;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.isDown) {
      res.writeHead(503).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (req.headers.authorization !== "Bearer tabby-sa-token") return send(401, {});
    if (req.method === "POST" && req.url === "/apis/authentication.k8s.io/v1/tokenreviews") {
      this.reviews++;
      const review = JSON.parse(Buffer.concat(chunks).toString()) as {
        spec: { token: string; audiences: string[] };
      };
      const t = this.tokens.get(review.spec.token);
      const audiences = t?.audiences ?? ["tabby"];
      const isOk = t !== undefined && review.spec.audiences.every((a) => audiences.includes(a));
      const [ns, name] = (t?.sa ?? "/").split("/");
      return send(201, {
        kind: "TokenReview",
        status: isOk
          ? {
              authenticated: true,
              audiences: review.spec.audiences,
              user: {
                username: `system:serviceaccount:${ns}:${name}`,
                extra:
                  t.pod === undefined
                    ? {}
                    : {
                        "authentication.kubernetes.io/pod-name": [t.pod.name],
                        "authentication.kubernetes.io/pod-uid": [t.pod.uid],
                      },
              },
            }
          : { authenticated: false, error: "invalid bearer token" },
      });
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(req.url ?? "");
    if (req.method === "GET" && m !== null) {
      const pod = this.pods.get(`${m[1]}/${m[2]}`);
      if (pod === undefined) return send(404, { kind: "Status", code: 404 });
      return send(200, { kind: "Pod", metadata: { uid: pod.uid }, spec: { nodeName: pod.nodeName } });
    }
    send(404, {});
  }
}

async function tokenServer(api: FakeKubeApi, clock: () => number) {
  const kubeApi = new KubeConfigApi(api.kubeConfig(), 2000);
  onTestFinished(() => kubeApi.close());
  const reviewer = new TokenReviewer({
    api: kubeApi,
    logger: silentLogger,
    clock,
    options: {
      audience: "tabby",
      allowedServiceAccounts: ["calico-system/calico-node"],
      cacheTtlMs: 1000,
      graceMs: 60_000,
    },
  });
  const h = await startFanout({
    authenticator: new PolicyAuthenticator({ tokens: reviewer, isAnonymousAllowed: false }),
  });
  return { h, reviewer };
}

describe("ServiceAccount tokens", () => {
  it("accepts an allowed ServiceAccount's token and refuses another's, a bad one and none with 4004", async () => {
    const api = new FakeKubeApi();
    await api.start();
    api.tokens.set("good", { sa: "calico-system/calico-node" });
    api.tokens.set("other-sa", { sa: "default/default" });
    api.tokens.set("wrong-aud", {
      sa: "calico-system/calico-node",
      audiences: ["https://kubernetes.default.svc"],
    });
    const { h } = await tokenServer(api, Date.now);

    const ok = await RawClient.live(h.url, hello({ token: "good" }));
    await expectStillReceiving(h, ok);
    for (const token of ["other-sa", "wrong-aud", "garbage", undefined]) {
      const c = await RawClient.connect(h.url, hello(token === undefined ? {} : { token }));
      expect(await c.closed).toBe(CloseCode.unauthorized);
    }
    const refused = (reason: string) => metricValue(h.registry, "tabby_auth_refused_total", { reason });
    expect(await refused("service-account-not-allowed")).toBe(1);
    expect(await refused("token-invalid")).toBe(2);
    expect(await refused("no-credentials")).toBe(1);
    expect(await metricValue(h.registry, "tabby_auth_accepted_total", { method: "token" })).toBe(1);
  });

  it("gives node-scoped views only for the node of the token's pod", async () => {
    const api = new FakeKubeApi();
    await api.start();
    api.tokens.set("node-a", { sa: "calico-system/calico-node", pod: { name: "calico-node-a", uid: "u-a" } });
    api.tokens.set("stale-pod", {
      sa: "calico-system/calico-node",
      pod: { name: "calico-node-x", uid: "old" },
    });
    api.tokens.set("unbound", { sa: "calico-system/calico-node" });
    api.pods.set("calico-system/calico-node-a", { uid: "u-a", nodeName: "node-a" });
    api.pods.set("calico-system/calico-node-x", { uid: "new", nodeName: "node-x" });
    const { h } = await tokenServer(api, Date.now);

    await RawClient.live(h.url, hello({ token: "node-a", view: "bgp", node: "node-a" }));
    await RawClient.live(h.url, hello({ token: "node-a", view: "node-status", node: "node-a" }));
    await RawClient.live(h.url, hello({ token: "unbound", view: "felix" }));
    const cases = [
      { token: "node-a", view: "bgp", node: "node-b", reason: "node-mismatch" },
      { token: "unbound", view: "bgp", node: "node-a", reason: "no-node-binding" },
      { token: "stale-pod", view: "felix", node: "node-x", reason: "pod-unknown" },
    ] as const;
    for (const c of cases) {
      const client = await RawClient.connect(h.url, hello({ token: c.token, view: c.view, node: c.node }));
      expect(await client.closed, c.reason).toBe(CloseCode.unauthorized);
      expect(await metricValue(h.registry, "tabby_auth_refused_total", { reason: c.reason })).toBe(1);
    }
  });

  it("reviews a token once while its answer is fresh", async () => {
    const api = new FakeKubeApi();
    await api.start();
    api.tokens.set("good", { sa: "calico-system/calico-node" });
    let now = 1_000_000;
    const { h } = await tokenServer(api, () => now);
    await Promise.all([1, 2, 3].map(() => RawClient.live(h.url, hello({ token: "good" }))));
    expect(api.reviews).toBe(1);
    now += 1001; // past cacheTtlMs
    await RawClient.live(h.url, hello({ token: "good" }));
    expect(api.reviews).toBe(2);
  });

  it("while the API is down: open sessions stay, known tokens reconnect (grace), new tokens get 4012 until it is back", async () => {
    const api = new FakeKubeApi();
    await api.start();
    api.tokens.set("known", { sa: "calico-system/calico-node" });
    api.tokens.set("new", { sa: "calico-system/calico-node" });
    let now = 1_000_000;
    const { h, reviewer } = await tokenServer(api, () => now);
    const open = await RawClient.live(h.url, hello({ token: "known" }));

    api.isDown = true;
    now += 5000; // the answer is stale: the server asks the API again, which fails
    await expectStillReceiving(h, open);
    const again = await RawClient.live(h.url, hello({ token: "known" }));
    await expectStillReceiving(h, again);
    expect(reviewer.counts.graceAccepted).toBe(1);
    const fresh = await RawClient.connect(h.url, hello({ token: "new" }));
    expect(await fresh.closed).toBe(CloseCode.authUnavailable);
    expect(await metricValue(h.registry, "tabby_auth_refused_total", { reason: "review-unavailable" })).toBe(
      1,
    );

    now += 60_000; // past the grace: a known token is refused too
    const late = await RawClient.connect(h.url, hello({ token: "known" }));
    expect(await late.closed).toBe(CloseCode.authUnavailable);

    api.isDown = false;
    await RawClient.live(h.url, hello({ token: "new" }));
    await expectStillReceiving(h, open);
  });
});
