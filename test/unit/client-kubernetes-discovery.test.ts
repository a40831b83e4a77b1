import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  ClientDiscoveryError,
  ClientErrorCode,
  ClientOptionsError,
  kubernetesDiscovery,
} from "../../src/client/index.js";
import type { KubernetesDiscoveryOptions } from "../../src/client/index.js";
import { orderEndpoints, readyEndpointsOf } from "../../src/client/discovery.js";
import { createTestPki } from "../support/pki.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A stand-in API server on loopback: `handler` answers; every request is recorded. */
async function fakeApi(
  handler: Handler,
  tls?: { cert: string; key: string },
): Promise<{ url: string; requests: IncomingMessage[]; server: Server; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push(req);
    handler(req, res);
  };
  const server = tls === undefined ? createServer(onRequest) : createHttpsServer(tls, onRequest);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
  onTestFinished(close);
  return { url: `${tls === undefined ? "http" : "https"}://127.0.0.1:${port}`, requests, server, close };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

interface Ep {
  ip: string;
  node?: string;
  zone?: string;
  ready?: boolean;
  terminating?: boolean;
}

function sliceV1(name: string, eps: Ep[], ports: object[] = [{ name: "tabby", port: 5473 }]): object {
  return {
    metadata: { name, labels: { "kubernetes.io/service-name": "tabby" } },
    addressType: "IPv4",
    endpoints: eps.map((e) => ({
      addresses: [e.ip],
      conditions: {
        ...(e.ready !== undefined && { ready: e.ready }),
        ...(e.terminating !== undefined && { terminating: e.terminating }),
      },
      ...(e.node !== undefined && { nodeName: e.node }),
      ...(e.zone !== undefined && { zone: e.zone }),
    })),
    ports,
  };
}

function sliceV1beta1(name: string, eps: Ep[]): object {
  return {
    metadata: { name, labels: { "kubernetes.io/service-name": "tabby" } },
    addressType: "IPv4",
    endpoints: eps.map((e) => ({
      addresses: [e.ip],
      conditions: e.ready === undefined ? {} : { ready: e.ready },
      topology: {
        ...(e.node !== undefined && { "kubernetes.io/hostname": e.node }),
        ...(e.zone !== undefined && { "topology.kubernetes.io/zone": e.zone }),
      },
    })),
    ports: [{ name: "tabby", port: 5473 }],
  };
}

const CLUSTER: Ep[] = [
  { ip: "10.0.0.1", node: "n1", zone: "a" },
  { ip: "10.0.0.2", node: "n2", zone: "a" },
  { ip: "10.0.0.3", node: "n3", zone: "b", ready: true },
  { ip: "10.0.0.4", node: "n4", zone: "b" },
  { ip: "10.0.0.5", node: "n5", zone: "c", ready: false },
  { ip: "10.0.0.6", node: "n6", zone: "c", terminating: true, ready: false },
];

/** An API server that serves `items` (v1) and records the requests. */
async function v1Api(items: () => object[]): Promise<Awaited<ReturnType<typeof fakeApi>>> {
  return fakeApi((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/apis/discovery.k8s.io/v1/namespaces/calico-system/endpointslices") {
      json(res, 404, { kind: "Status", code: 404 });
      return;
    }
    json(res, 200, { kind: "EndpointSliceList", metadata: {}, items: items() });
  });
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tabby-discovery-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function discovery(apiServer: string, extra: Partial<KubernetesDiscoveryOptions> = {}) {
  return kubernetesDiscovery({
    namespace: "calico-system",
    service: "tabby",
    apiServer,
    token: "agent-token",
    scheme: "ws",
    cacheTtlMs: 0,
    ...extra,
  });
}

const signal = (): AbortSignal => new AbortController().signal;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe("kubernetesDiscovery: reading the EndpointSlices", () => {
  it("lists the Service's slices by label with the agent's token; ready endpoints on the named port; own node, then zone, then any", async () => {
    const api = await v1Api(() => [
      sliceV1("tabby-1", CLUSTER.slice(0, 3)),
      sliceV1("tabby-2", CLUSTER.slice(3)),
    ]);
    const discover = discovery(api.url, { node: "n3", zone: "a" });
    for (let i = 0; i < 20; i++) {
      const urls = await discover(signal());
      expect(urls[0]).toBe("ws://10.0.0.3:5473"); // own node
      expect(new Set(urls.slice(1, 3))).toEqual(new Set(["ws://10.0.0.1:5473", "ws://10.0.0.2:5473"])); // zone a
      expect(urls.slice(3)).toEqual(["ws://10.0.0.4:5473"]); // the rest; n5, n6 not ready
    }
    const req = api.requests[0]!;
    expect(req.headers.authorization).toBe("Bearer agent-token");
    expect(new URL(req.url!, "http://x").searchParams.get("labelSelector")).toBe(
      "kubernetes.io/service-name=tabby",
    );
    expect(discover.lastSource()).toBe("api");
  });

  it("shuffles each group: agents with the same list spread over the replicas", () => {
    const eps = readyEndpointsOf([sliceV1("s", CLUSTER)], { portName: "tabby", scheme: "wss" });
    expect(eps.map((e) => e.url)).toEqual([1, 2, 3, 4].map((i) => `wss://10.0.0.${i}:5473`));
    const firsts = new Set<string>();
    let seed = 1;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    for (let i = 0; i < 200; i++) firsts.add(orderEndpoints(eps, {}, random)[0]!);
    expect(firsts.size).toBe(4);
    // Zone only: zone b first, in some order; then the others.
    const byZone = orderEndpoints(eps, { zone: "b" }, random);
    expect(new Set(byZone.slice(0, 2))).toEqual(new Set(["wss://10.0.0.3:5473", "wss://10.0.0.4:5473"]));
  });

  it("takes the named port or a fixed one, skips slices without it, and keeps one entry per address", () => {
    const items = [
      sliceV1(
        "a",
        [{ ip: "10.0.0.1" }],
        [
          { name: "metrics", port: 9093 },
          { name: "tabby", port: 15473 },
        ],
      ),
      sliceV1("b", [{ ip: "10.0.0.2" }], [{ name: "metrics", port: 9093 }]),
      sliceV1("c", [{ ip: "10.0.0.1" }, { ip: "fd00::7" }], [{ name: "tabby", port: 15473 }]),
    ];
    expect(readyEndpointsOf(items, { portName: "tabby", scheme: "ws" }).map((e) => e.url)).toEqual([
      "ws://10.0.0.1:15473",
      "ws://[fd00::7]:15473",
    ]);
    expect(
      readyEndpointsOf(items, { portName: "tabby", port: 6000, scheme: "ws" }).map((e) => e.url),
    ).toEqual(["ws://10.0.0.1:6000", "ws://10.0.0.2:6000", "ws://[fd00::7]:6000"]);
  });

  it("falls back to discovery.k8s.io/v1beta1 on a 404 (kube-apiserver 1.20), reads its topology, and asks v1beta1 first from then on", async () => {
    const api = await fakeApi((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/apis/discovery.k8s.io/v1beta1/namespaces/calico-system/endpointslices") {
        json(res, 200, { items: [sliceV1beta1("tabby-1", CLUSTER)] });
        return;
      }
      json(res, 404, { kind: "Status", code: 404, reason: "NotFound" });
    });
    const discover = discovery(api.url, { node: "n4", zone: "a" });
    const urls = await discover(signal());
    expect(urls[0]).toBe("ws://10.0.0.4:5473");
    expect(new Set(urls.slice(1, 3))).toEqual(new Set(["ws://10.0.0.1:5473", "ws://10.0.0.2:5473"]));
    expect(urls).toHaveLength(4);
    await discover(signal());
    expect(api.requests.map((r) => new URL(r.url!, "http://x").pathname.split("/")[3])).toEqual([
      "v1",
      "v1beta1",
      "v1beta1",
    ]);
  });

  it("follows `continue` pages", async () => {
    const api = await fakeApi((req, res) => {
      const cont = new URL(req.url ?? "/", "http://x").searchParams.get("continue");
      if (cont === null)
        json(res, 200, { metadata: { continue: "p2" }, items: [sliceV1("a", [CLUSTER[0]!])] });
      else json(res, 200, { metadata: {}, items: [sliceV1("b", [CLUSTER[1]!])] });
    });
    expect((await discovery(api.url)(signal())).sort()).toEqual(["ws://10.0.0.1:5473", "ws://10.0.0.2:5473"]);
  });

  it("re-reads the token file before each request (kubelet rotates projected tokens), and reuses a fresh list within cacheTtlMs", async () => {
    const dir = await tempDir();
    const tokenFile = join(dir, "token");
    await writeFile(tokenFile, "first\n");
    const api = await v1Api(() => [sliceV1("tabby-1", CLUSTER)]);
    let now = 0;
    const discover = kubernetesDiscovery({
      namespace: "calico-system",
      service: "tabby",
      apiServer: api.url,
      tokenFile,
      scheme: "ws",
      cacheTtlMs: 1000,
      clock: () => now,
    });
    await discover(signal());
    await writeFile(tokenFile, "second\n");
    now = 500;
    await discover(signal()); // within the TTL: no request
    expect(discover.lastSource()).toBe("memory");
    expect(api.requests).toHaveLength(1);
    now = 1500;
    await discover(signal());
    expect(api.requests.map((r) => r.headers.authorization)).toEqual(["Bearer first", "Bearer second"]);
  });

  it("speaks HTTPS to the API server, checking its certificate against the given CA", async () => {
    const pki = await createTestPki();
    const cert = await pki.issue("apiserver", {
      cn: "kube-apiserver",
      san: ["IP:127.0.0.1"],
      usage: "server",
    });
    const api = await fakeApi(
      (_req, res) => json(res, 200, { items: [sliceV1("tabby-1", CLUSTER.slice(0, 1))] }),
      { cert: cert.cert, key: cert.key },
    );
    expect(await discovery(api.url, { ca: pki.ca.cert })(signal())).toEqual(["ws://10.0.0.1:5473"]);
    // Another CA: the certificate is refused (and with no last good list, discovery fails).
    const other = await createTestPki("other-ca");
    expect(await codeOf(discovery(api.url, { ca: other.ca.cert })(signal()))).toBe(ClientErrorCode.discovery);
  });
});

describe("kubernetesDiscovery: the last good list", () => {
  it("returns the last good list from memory when the API server errors, times out or is gone", async () => {
    let mode: "ok" | "500" | "hang" = "ok";
    const api = await fakeApi((_req, res) => {
      if (mode === "ok") json(res, 200, { items: [sliceV1("tabby-1", CLUSTER.slice(0, 2))] });
      else if (mode === "500") json(res, 500, { kind: "Status", code: 500 });
      // "hang": never answers
    });
    const discover = discovery(api.url, { requestTimeoutMs: 200 });
    const good = (await discover(signal())).sort();
    mode = "500";
    expect((await discover(signal())).sort()).toEqual(good);
    expect(discover.lastSource()).toBe("memory");
    mode = "hang";
    const started = Date.now();
    expect((await discover(signal())).sort()).toEqual(good);
    expect(Date.now() - started).toBeLessThan(5000);
    await api.close();
    expect((await discover(signal())).sort()).toEqual(good);
  });

  it("persists the list atomically to cacheFile; a new discovery with the API down reads it", async () => {
    const dir = await tempDir();
    const cacheFile = join(dir, "tabby-servers.json");
    const api = await v1Api(() => [sliceV1("tabby-1", CLUSTER)]);
    const first = discovery(api.url, { cacheFile, node: "n2" });
    await first(signal());
    expect(await readdir(dir)).toEqual(["tabby-servers.json"]); // no temporary file left
    const saved = JSON.parse(await readFile(cacheFile, "utf8")) as { service: string; endpoints: unknown[] };
    expect(saved.service).toBe("calico-system/tabby");
    expect(saved.endpoints).toHaveLength(4);
    await api.close();
    // The agent restarts (a new discovery, nothing in memory) while the API server is down.
    const restarted = discovery(api.url, { cacheFile, node: "n2", zone: "b" });
    const urls = await restarted(signal());
    expect(restarted.lastSource()).toBe("file");
    expect(urls[0]).toBe("ws://10.0.0.2:5473"); // the order is computed again: own node first
    expect(new Set(urls.slice(1, 3))).toEqual(new Set(["ws://10.0.0.3:5473", "ws://10.0.0.4:5473"]));
  });

  it("ignores a cache file of another Service or a broken one, and then fails with ERR_CLIENT_DISCOVERY", async () => {
    const dir = await tempDir();
    const cacheFile = join(dir, "cache.json");
    const api = await v1Api(() => [sliceV1("tabby-1", CLUSTER)]);
    await discovery(api.url, { cacheFile })(signal());
    await api.close();
    const other = kubernetesDiscovery({
      namespace: "other",
      service: "tabby",
      apiServer: api.url,
      token: "t",
      cacheFile,
    });
    const err = await other(signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientDiscoveryError);
    expect((err as ClientDiscoveryError).code).toBe(ClientErrorCode.discovery);
    await writeFile(cacheFile, "{not json");
    expect(await codeOf(discovery(api.url, { cacheFile })(signal()))).toBe(ClientErrorCode.discovery);
  });

  it("a Service with no ready endpoint: the last good list if there is one, else ERR_CLIENT_DISCOVERY", async () => {
    let items: object[] = [sliceV1("tabby-1", [{ ip: "10.0.0.1", ready: false }])];
    const api = await v1Api(() => items);
    const discover = discovery(api.url);
    expect(await codeOf(discover(signal()))).toBe(ClientErrorCode.discovery);
    items = [sliceV1("tabby-1", [{ ip: "10.0.0.1" }])];
    expect(await discover(signal())).toEqual(["ws://10.0.0.1:5473"]);
    items = [];
    expect(await discover(signal())).toEqual(["ws://10.0.0.1:5473"]);
  });

  it("an aborted call fails at once, without falling back", async () => {
    const api = await fakeApi(() => undefined); // never answers
    const discover = discovery(api.url);
    const controller = new AbortController();
    const pending = discover(controller.signal);
    controller.abort(new Error("closing"));
    expect(await codeOf(pending)).toBe(ClientErrorCode.discovery);
  });
});

describe("kubernetesDiscovery: options", () => {
  it.each([
    [{ namespace: "Bad_NS" }, "namespace"],
    [{ service: "" }, "service"],
    [{ port: 70000 }, "port"],
    [{ scheme: "http" }, "scheme"],
    [{ cacheTtlMs: -1 }, "cacheTtlMs"],
    [{ apiServer: "ftp://x" }, "apiServer"],
    [{ token: "" }, "token"],
  ])("refuses %o (field %s)", (bad, field) => {
    try {
      kubernetesDiscovery({
        namespace: "ns",
        service: "tabby",
        apiServer: "http://127.0.0.1:1",
        ...(bad as object),
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ClientOptionsError);
      expect((err as ClientOptionsError).field).toBe(field);
    }
  });

  it("in a pod: the API server comes from KUBERNETES_SERVICE_HOST/PORT; outside one, apiServer is required", async () => {
    expect(() => kubernetesDiscovery({ namespace: "ns", service: "tabby", env: {} })).toThrow(
      ClientOptionsError,
    );
    const api = await fakeApi(() => undefined);
    const port = new URL(api.url).port;
    await api.close(); // nothing listens there now: a quick connection error
    const discover = kubernetesDiscovery({
      namespace: "ns",
      service: "tabby",
      env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port },
      token: "t",
    });
    const err = (await discover(signal()).catch((e: unknown) => e)) as ClientDiscoveryError;
    expect(err.code).toBe(ClientErrorCode.discovery);
    expect(String((err.cause as Error).message)).toContain(
      "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices",
    );
  });
});

describe("the simulator's labelSelector (what the discovery e2e relies on)", () => {
  it("matches equality, inequality and existence requirements, and refuses what it cannot parse", async () => {
    const { parseLabelSelector } = await import("../../src/sim/label-selector.js");
    const obj = (labels: Record<string, string>) => ({
      apiVersion: "v1",
      kind: "X",
      metadata: { name: "x", uid: "u", resourceVersion: "1", creationTimestamp: "", labels },
    });
    const tabby = obj({ "kubernetes.io/service-name": "tabby", tier: "a" });
    const web = obj({ "kubernetes.io/service-name": "web" });
    const match = (selector: string) => [tabby, web].map((o) => parseLabelSelector(selector)!(o));
    expect(match("kubernetes.io/service-name=tabby")).toEqual([true, false]);
    expect(match("kubernetes.io/service-name==web")).toEqual([false, true]);
    expect(match("kubernetes.io/service-name!=tabby")).toEqual([false, true]);
    expect(match("tier")).toEqual([true, false]);
    expect(match("!tier,kubernetes.io/service-name")).toEqual([false, true]);
    expect(parseLabelSelector("")).toBeUndefined();
    expect(() => parseLabelSelector("tier in (a,b)")).toThrow();
  });
});
