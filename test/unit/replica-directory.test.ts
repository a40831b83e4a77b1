import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import type { ResourceValue } from "../../proto/messages.js";
import { ConfigError, loadServeConfig } from "../../src/server/config.js";
import { convert } from "../../src/server/datastore/index.js";
import type { KubeObject } from "../../src/server/datastore/index.js";
import {
  EndpointSliceMembers,
  ReplicaDirectory,
  ReplicaError,
  ReplicaErrorCode,
  membersOfSlice,
  formatStaticPeers,
  parseStaticPeers,
  replicaDirectoryFor,
} from "../../src/server/replicas/index.js";
import type {
  Member,
  PeerStatus,
  ReplicaDirectoryDeps,
  ServiceSelector,
  StatusFetcher,
} from "../../src/server/replicas/index.js";
import type { UpstreamSink } from "../../src/snapshot/sink.js";

const silent = pino({ level: "silent" });

const selector: ServiceSelector = {
  namespace: "calico-system",
  service: "tabby",
  agentPortName: "tabby",
  statusPortName: "metrics",
  agentScheme: "wss",
  statusScheme: "http",
  self: { podName: "tabby-b" },
};

interface EndpointIn {
  ip: string;
  pod: string;
  node?: string;
  zone?: string;
  ready?: boolean;
  terminating?: boolean;
}

/** An upstream EndpointSlice object (v1 or v1beta1), as the API server serves it. */
function sliceObject(
  name: string,
  endpoints: EndpointIn[],
  opts: { service?: string; namespace?: string; version?: "v1" | "v1beta1"; ports?: object[] } = {},
): KubeObject {
  const isV1 = (opts.version ?? "v1") === "v1";
  const namespace = opts.namespace ?? "calico-system";
  return {
    apiVersion: `discovery.k8s.io/${opts.version ?? "v1"}`,
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace,
      uid: `uid-${name}`,
      resourceVersion: "7",
      labels: { "kubernetes.io/service-name": opts.service ?? "tabby" },
    },
    addressType: "IPv4",
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: {
        ...(e.ready !== undefined && { ready: e.ready }),
        ...(e.terminating !== undefined && { terminating: e.terminating }),
      },
      ...(isV1
        ? { ...(e.node !== undefined && { nodeName: e.node }), ...(e.zone !== undefined && { zone: e.zone }) }
        : {
            topology: {
              ...(e.node !== undefined && { "kubernetes.io/hostname": e.node }),
              ...(e.zone !== undefined && { "topology.kubernetes.io/zone": e.zone }),
            },
          }),
      targetRef: { kind: "Pod", namespace, name: e.pod },
    })),
    ports: opts.ports ?? [
      { name: "tabby", port: 5473, protocol: "TCP" },
      { name: "metrics", port: 9093, protocol: "TCP" },
    ],
  };
}

/** What the datastore writes into its sink for an upstream EndpointSlice: the Calico-model value. */
function converted(obj: KubeObject): { key: string; value: ResourceValue } {
  const result = convert("endpointslices", obj);
  if (result === null || Array.isArray(result)) throw new Error("expected one converted value");
  return result as { key: string; value: ResourceValue };
}

function recordingSink(): UpstreamSink & { upserts: string[]; deletes: string[] } {
  const upserts: string[] = [];
  const deletes: string[] = [];
  return {
    upserts,
    deletes,
    upsert: (key) => void upserts.push(key),
    upsertPrepared: (key) => void upserts.push(key),
    delete: (key) => void deletes.push(key),
    keysOfKind: () => [],
    setKindState: () => undefined,
  };
}

function directory(
  overrides: Partial<ReplicaDirectoryDeps> & { fetchStatus?: StatusFetcher } = {},
): ReplicaDirectory {
  const d = new ReplicaDirectory({
    source: "static",
    readinessFrom: "status",
    serverId: () => "me",
    selfUrl: () => "ws://127.0.0.1:1",
    selfSessions: () => 5,
    isSelfReady: () => true,
    logger: silent,
    pollMs: 0,
    pollTimeoutMs: 1000,
    clock: () => 1000,
    ...overrides,
  });
  onTestFinished(() => d.close());
  return d;
}

describe("EndpointSlice → replicas", () => {
  it("takes each endpoint's address, the named ports, node, zone, readiness and self (v1)", () => {
    const { value } = converted(
      sliceObject("tabby-x1", [
        { ip: "10.0.0.1", pod: "tabby-a", node: "n1", zone: "z1", ready: true },
        { ip: "10.0.0.2", pod: "tabby-b", node: "n2", zone: "z2" }, // no `ready`: ready, as documented
        { ip: "10.0.0.3", pod: "tabby-c", node: "n3", ready: false },
        { ip: "10.0.0.4", pod: "tabby-d", ready: true, terminating: true },
      ]),
    );
    expect(membersOfSlice(value, selector)).toEqual([
      {
        url: "wss://10.0.0.1:5473",
        statusUrl: "http://10.0.0.1:9093/status",
        isReady: true,
        isSelf: false,
        node: "n1",
        zone: "z1",
      },
      {
        url: "wss://10.0.0.2:5473",
        statusUrl: "http://10.0.0.2:9093/status",
        isReady: true,
        isSelf: true,
        node: "n2",
        zone: "z2",
      },
      {
        url: "wss://10.0.0.3:5473",
        statusUrl: "http://10.0.0.3:9093/status",
        isReady: false,
        isSelf: false,
        node: "n3",
      },
      { url: "wss://10.0.0.4:5473", statusUrl: "http://10.0.0.4:9093/status", isReady: false, isSelf: false },
    ]);
  });

  it("reads node and zone from a v1beta1 slice's topology, and finds self by pod IP or URL", () => {
    const { value } = converted(
      sliceObject("tabby-x1", [{ ip: "10.0.0.9", pod: "p", node: "n9", zone: "z9", ready: true }], {
        version: "v1beta1",
      }),
    );
    const byIp = membersOfSlice(value, { ...selector, self: { podIp: "10.0.0.9" } });
    expect(byIp).toMatchObject([{ node: "n9", zone: "z9", isSelf: true, isReady: true }]);
    const byUrl = membersOfSlice(value, { ...selector, self: { url: "wss://10.0.0.9:5473" } });
    expect(byUrl?.[0]?.isSelf).toBe(true);
    expect(membersOfSlice(value, { ...selector, self: {} })?.[0]?.isSelf).toBe(false);
  });

  it("ignores other Services' slices and gives no member for a slice without the agent port", () => {
    const other = converted(sliceObject("web-1", [{ ip: "10.0.1.1", pod: "w" }], { service: "web" }));
    expect(membersOfSlice(other.value, selector)).toBeUndefined();
    const elsewhere = converted(sliceObject("tabby-1", [{ ip: "10.0.1.1", pod: "w" }], { namespace: "x" }));
    expect(membersOfSlice(elsewhere.value, selector)).toBeUndefined();
    const noPort = converted(
      sliceObject("tabby-1", [{ ip: "10.0.1.1", pod: "w" }], { ports: [{ name: "http", port: 80 }] }),
    );
    expect(membersOfSlice(noPort.value, selector)).toEqual([]);
    const unnamed = converted(
      sliceObject("tabby-1", [{ ip: "10.0.1.1", pod: "w" }], { ports: [{ port: 5473 }] }),
    );
    expect(membersOfSlice(unnamed.value, { ...selector, agentPortName: "" })?.[0]?.url).toBe(
      "wss://10.0.1.1:5473",
    );
  });

  it("follows the datastore's sink events: adds, updates, label changes, deletes; everything reaches the inner sink", () => {
    const seen: (readonly Member[])[] = [];
    const members = new EndpointSliceMembers(selector, (list) => seen.push(list));
    const inner = recordingSink();
    const sink = members.tap(inner);
    const a = converted(sliceObject("tabby-a", [{ ip: "10.0.0.1", pod: "tabby-a" }]));
    const b = converted(sliceObject("tabby-b", [{ ip: "10.0.0.2", pod: "tabby-b", ready: false }]));
    const web = converted(sliceObject("web-1", [{ ip: "10.0.9.9", pod: "w" }], { service: "web" }));
    sink.upsert(a.key, a.value);
    sink.upsert(b.key, b.value);
    sink.upsert(web.key, web.value);
    sink.upsert("Node/n1", { kind: "Node" });
    expect(inner.upserts).toEqual([a.key, b.key, web.key, "Node/n1"]);
    expect(seen).toHaveLength(2); // the web slice and the Node changed nothing
    expect(seen.at(-1)?.map((m) => [m.url, m.isReady])).toEqual([
      ["wss://10.0.0.1:5473", true],
      ["wss://10.0.0.2:5473", false],
    ]);
    // b turns ready; the same endpoint also appears in a second slice (a handover), not ready there.
    const bReady = converted(sliceObject("tabby-b", [{ ip: "10.0.0.2", pod: "tabby-b", ready: true }]));
    sink.upsert(bReady.key, bReady.value);
    const dup = converted(sliceObject("tabby-c", [{ ip: "10.0.0.2", pod: "tabby-b", ready: false }]));
    sink.upsert(dup.key, dup.value);
    expect(members.members().map((m) => [m.url, m.isReady])).toEqual([
      ["wss://10.0.0.1:5473", true],
      ["wss://10.0.0.2:5473", true],
    ]);
    // a's slice loses the Service label: it is no longer the Service's.
    const relabeled = converted(
      sliceObject("tabby-a", [{ ip: "10.0.0.1", pod: "tabby-a" }], { service: "old" }),
    );
    sink.upsert(relabeled.key, relabeled.value);
    expect(members.members().map((m) => m.url)).toEqual(["wss://10.0.0.2:5473"]);
    sink.delete(b.key);
    sink.delete(dup.key);
    expect(inner.deletes).toEqual([b.key, dup.key]);
    expect(seen.at(-1)).toEqual([]);
  });
});

describe("ReplicaDirectory", () => {
  it("counts ready replicas from the source, this server always included, and shows its own load", () => {
    const d = directory({ source: "endpoint-slices", readinessFrom: "source" });
    expect(d.readyReplicas()).toBe(1);
    expect(d.peers()).toEqual([
      { url: "ws://127.0.0.1:1", ready: true, self: true, sessions: 5, sessionsReadAtMs: 1000 },
    ]);
    let changes = 0;
    const off = d.onChange(() => changes++);
    d.setMembers([
      { url: "ws://a:1", isReady: true, isSelf: false, node: "n1", zone: "z" },
      { url: "ws://b:1", isReady: false, isSelf: false },
      { url: "ws://c:1", isReady: true, isSelf: true },
    ]);
    expect(changes).toBe(1);
    expect(d.readyReplicas()).toBe(2); // a and this server (c); b is not ready
    expect(d.peers()).toEqual([
      { url: "ws://a:1", ready: true, self: false, node: "n1", zone: "z", readySinceMs: 1000 },
      { url: "ws://b:1", ready: false, self: false },
      { url: "ws://c:1", ready: true, self: true, sessions: 5, sessionsReadAtMs: 1000 },
    ]);
    d.setMembers([
      { url: "ws://a:1", isReady: true, isSelf: false, node: "n1", zone: "z" },
      { url: "ws://b:1", isReady: false, isSelf: false },
      { url: "ws://c:1", isReady: true, isSelf: true },
    ]);
    expect(changes).toBe(1); // the same list: no event
    off();
    d.setMembers([]);
    expect(changes).toBe(1);
    expect(d.readyReplicas()).toBe(1);
  });

  it("reads each peer's load from its /status, keeps the figure when a read fails, and tells listeners once per round", async () => {
    const answers = new Map<string, PeerStatus | Error>([
      ["http://a/status", { server: "A", isReady: true, sessions: 40 }],
      ["http://b/status", { server: "B", isReady: true, sessions: 7 }],
    ]);
    const asked: string[] = [];
    const fetchStatus: StatusFetcher = (url) => {
      asked.push(url);
      const a = answers.get(url);
      return a instanceof Error || a === undefined ? Promise.reject(a ?? new Error("?")) : Promise.resolve(a);
    };
    let now = 1000;
    const d = directory({
      source: "endpoint-slices",
      readinessFrom: "source",
      fetchStatus,
      clock: () => now,
    });
    d.setMembers([
      { url: "ws://a:1", statusUrl: "http://a/status", isReady: true, isSelf: false },
      { url: "ws://b:1", statusUrl: "http://b/status", isReady: true, isSelf: false },
      { url: "ws://n:1", statusUrl: "http://n/status", isReady: false, isSelf: false }, // not polled: not ready
      { url: "ws://me:1", statusUrl: "http://me/status", isReady: true, isSelf: true }, // not polled: self
    ]);
    let changes = 0;
    d.onChange(() => changes++);
    await d.refresh();
    expect(asked.sort()).toEqual(["http://a/status", "http://b/status"]);
    expect(changes).toBe(1);
    expect(d.peers().map((p) => [p.url, p.sessions, p.sessionsReadAtMs])).toEqual([
      ["ws://a:1", 40, 1000],
      ["ws://b:1", 7, 1000],
      ["ws://n:1", undefined, undefined],
      ["ws://me:1", 5, 1000],
    ]);
    now = 6000;
    answers.set("http://a/status", new ReplicaError(ReplicaErrorCode.statusRead, "down"));
    await d.refresh();
    expect(changes).toBe(1); // a's read failed (figure kept), b unchanged: nothing to tell
    expect(d.peers()[0]).toMatchObject({
      url: "ws://a:1",
      ready: true,
      sessions: 40,
      sessionsReadAtMs: 1000,
    });
    expect(d.peers()[1]).toMatchObject({ sessions: 7, sessionsReadAtMs: 6000 });
    expect(d.readyReplicas()).toBe(3); // EndpointSlices decide readiness, not a failed read
  });

  it("says since when each peer has been ready: from the read that first saw it ready, until it is not", async () => {
    let now = 1000;
    let isAReady = false;
    const fetchStatus: StatusFetcher = () => Promise.resolve({ server: "A", isReady: isAReady, sessions: 1 });
    const d = directory({ fetchStatus, clock: () => now });
    d.setMembers([{ url: "ws://a:1", statusUrl: "http://a/status", isReady: true, isSelf: false }]);
    const a = () => d.peers().find((p) => p.url === "ws://a:1");
    await d.refresh();
    expect(a()?.readySinceMs).toBeUndefined();
    now = 2000;
    isAReady = true;
    await d.refresh();
    expect(a()).toMatchObject({ ready: true, readySinceMs: 2000 });
    now = 3000;
    await d.refresh();
    expect(a()?.readySinceMs).toBe(2000); // still the same stretch
    now = 4000;
    isAReady = false;
    await d.refresh();
    expect(a()?.readySinceMs).toBeUndefined();
    now = 5000;
    isAReady = true;
    await d.refresh();
    expect(a()?.readySinceMs).toBe(5000); // a new stretch
  });

  it("static list: a peer is ready when its /status says so, and the one whose id is this server's is self", async () => {
    const answers = new Map<string, PeerStatus | Error>([
      ["http://a/status", { server: "A", isReady: true, sessions: 3 }],
      ["http://b/status", { server: "B", isReady: false, sessions: 0 }],
      ["http://c/status", { server: "me", isReady: true, sessions: 99 }],
      ["http://d/status", new Error("ECONNREFUSED")],
    ]);
    const fetchStatus: StatusFetcher = (url) => {
      const a = answers.get(url);
      return a instanceof Error || a === undefined ? Promise.reject(a ?? new Error("?")) : Promise.resolve(a);
    };
    const d = directory({ fetchStatus });
    d.setMembers(
      ["a", "b", "c", "d"].map((h) => ({
        url: `ws://${h}:1`,
        statusUrl: `http://${h}/status`,
        isReady: true, // ignored: a static list's readiness comes from /status
        isSelf: false,
      })),
    );
    expect(d.readyReplicas()).toBe(1); // nothing read yet
    await d.refresh();
    expect(d.readyReplicas()).toBe(2); // a and this server
    expect(d.peers().map((p) => [p.url, p.ready, p.self, p.sessions])).toEqual([
      ["ws://a:1", true, false, 3],
      ["ws://b:1", false, false, 0],
      ["ws://c:1", true, true, 5], // this server: its own figures, not the polled ones
      ["ws://d:1", false, false, undefined],
    ]);
    answers.set("http://a/status", new Error("gone"));
    await d.refresh();
    expect(d.readyReplicas()).toBe(1);
  });

  it("bounds each read with pollTimeoutMs and aborts reads in flight on close()", async () => {
    const signals: AbortSignal[] = [];
    const fetchStatus: StatusFetcher = (_url, signal) => {
      signals.push(signal);
      return new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted"))));
    };
    const d = directory({ fetchStatus, pollTimeoutMs: 50 });
    d.setMembers([{ url: "ws://a:1", statusUrl: "http://a/status", isReady: false, isSelf: false }]);
    const started = Date.now();
    await d.refresh();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(signals[0]?.aborted).toBe(true);
    const slow = directory({ fetchStatus, pollTimeoutMs: 60_000 });
    slow.setMembers([{ url: "ws://a:1", statusUrl: "http://a/status", isReady: false, isSelf: false }]);
    const round = slow.refresh();
    slow.close();
    await round;
    expect(signals[1]?.aborted).toBe(true);
  });

  it("a listener that throws is logged and does not stop the others", () => {
    const d = directory({ source: "endpoint-slices", readinessFrom: "source" });
    let calls = 0;
    d.onChange(() => {
      throw new Error("boom");
    });
    d.onChange(() => calls++);
    d.setMembers([{ url: "ws://a:1", isReady: true, isSelf: false }]);
    expect(calls).toBe(1);
  });
});

describe("--peers and the replica settings", () => {
  it("parses agent addresses with optional status addresses", () => {
    expect(parseStaticPeers("ws://10.0.0.1:5473, ws://10.0.0.2:5473=http://10.0.0.2:19098", 9098)).toEqual([
      { url: "ws://10.0.0.1:5473", statusUrl: "http://10.0.0.1:9098/status" },
      { url: "ws://10.0.0.2:5473", statusUrl: "http://10.0.0.2:19098/status" },
    ]);
    expect(parseStaticPeers("wss://[::1]:5473", 9093, "https")).toEqual([
      { url: "wss://[::1]:5473", statusUrl: "https://[::1]:9093/status" },
    ]);
    expect(parseStaticPeers("ws://a:1=https://a:2/custom", 0)[0]?.statusUrl).toBe("https://a:2/custom");
    const value = formatStaticPeers([
      { port: 5001, statusPort: 9001 },
      { host: "::1", port: 5002, statusPort: 9002 },
    ]);
    expect(value).toBe("ws://127.0.0.1:5001=http://127.0.0.1:9001,ws://[::1]:5002=http://[::1]:9002");
    expect(parseStaticPeers(value, 0).map((p) => p.statusUrl)).toEqual([
      "http://127.0.0.1:9001/status",
      "http://[::1]:9002/status",
    ]);
  });

  it.each([
    ["http://a:1", "not ws"],
    ["ws://a", "no port"],
    ["ws://a:1,ws://a:1", "twice"],
    ["ws://a:1=ftp://a:2", "bad status scheme"],
    ["ws://a:1", "health port 0 and no status address"],
  ])("refuses %s (%s) with ERR_REPLICA_BAD_PEER", (value) => {
    try {
      parseStaticPeers(value, 0);
      expect.unreachable();
    } catch (err) {
      expect((err as ReplicaError).code).toBe(ReplicaErrorCode.badPeer);
    }
  });

  it("config: --peers is checked at start, and one source of replicas at most", () => {
    const load = (flags: Record<string, string>): unknown => {
      try {
        return loadServeConfig(flags, {});
      } catch (err) {
        return err instanceof ConfigError ? err.field : err;
      }
    };
    expect(load({ peers: "ws://a:1=http://a:2" })).toMatchObject({ peers: "ws://a:1=http://a:2" });
    expect(load({ peers: "ws://a" })).toBe("peers");
    expect(load({ peers: "ws://a:1", serviceName: "tabby", serviceNamespace: "x" })).toBe("peers");
    expect(load({ serviceName: "tabby" })).toBe("serviceNamespace");
    expect(load({ serviceNamespace: "x" })).toBe("serviceName");
    const env = loadServeConfig(
      {},
      { TABBY_SERVICE_NAME: "tabby", TABBY_SERVICE_NAMESPACE: "calico-system", TABBY_POD_NAME: "tabby-0" },
    );
    expect([env.serviceName, env.serviceNamespace, env.podName, env.peerPollMs]).toEqual([
      "tabby",
      "calico-system",
      "tabby-0",
      5000,
    ]);
  });

  it("replicaDirectoryFor: EndpointSlices with --service-name (a tap on the sink), a static list, or this server alone", () => {
    const base = loadServeConfig({ port: "0", healthPort: "0", metricsPort: "0", host: "127.0.0.1" }, {});
    const deps = {
      serverId: () => "me",
      port: () => 4242,
      selfSessions: () => 0,
      isSelfReady: () => true,
      logger: silent,
    };
    const alone = replicaDirectoryFor(base, deps);
    const sink = recordingSink();
    expect(alone.tap(sink)).toBe(sink);
    expect(alone.directory.report()).toEqual({
      source: "none",
      ready: 1,
      peers: [
        {
          url: "ws://127.0.0.1:4242",
          ready: true,
          self: true,
          sessions: 0,
          sessionsReadAtMs: expect.any(Number),
        },
      ],
    });
    const fixed = replicaDirectoryFor({ ...base, peers: "ws://a:1=http://a:2,ws://b:1=http://b:2" }, deps);
    expect(fixed.directory.report().source).toBe("static");
    expect(fixed.directory.peers().map((p) => p.url)).toEqual([
      "ws://a:1",
      "ws://b:1",
      "ws://127.0.0.1:4242",
    ]);
    const slices = replicaDirectoryFor(
      { ...base, serviceName: "tabby", serviceNamespace: "calico-system", podName: "tabby-a" },
      deps,
    );
    const tapped = slices.tap(sink);
    expect(tapped).not.toBe(sink);
    const a = converted(
      sliceObject("tabby-1", [
        { ip: "10.0.0.1", pod: "tabby-a" },
        { ip: "10.0.0.2", pod: "tabby-b" },
      ]),
    );
    tapped.upsert(a.key, a.value);
    expect(sink.upserts).toEqual([a.key]);
    expect(slices.directory.report()).toMatchObject({
      source: "endpoint-slices",
      ready: 2,
      peers: [
        { url: "ws://10.0.0.1:5473", self: true, ready: true },
        { url: "ws://10.0.0.2:5473", self: false, ready: true },
      ],
    });
  });
});

describe("deploy/tabby.yaml and the replica directory", () => {
  it("reads its own Service's EndpointSlices, knows its pod, and the Service names the ports the directory reads", async () => {
    const { readFileSync } = await import("node:fs");
    const { parseAllDocuments } = await import("yaml");
    type Env = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } };
    const docs = parseAllDocuments(
      readFileSync(new URL("../../deploy/tabby.yaml", import.meta.url), "utf8"),
    ).map(
      (d) =>
        d.toJS() as {
          kind: string;
          metadata: { name: string; namespace?: string };
          spec: { template?: { spec: { containers: { env: Env[] }[] } }; ports?: { name: string }[] };
        },
    );
    const deployment = docs.find((d) => d.kind === "Deployment")!;
    const service = docs.find((d) => d.kind === "Service")!;
    const env = deployment.spec.template!.spec.containers[0]!.env;
    const values = Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    const config = loadServeConfig({}, values);
    expect(config.serviceName).toBe(service.metadata.name);
    expect(config.serviceNamespace).toBe(service.metadata.namespace);
    expect(deployment.metadata.namespace).toBe(service.metadata.namespace);
    const ports = service.spec.ports!.map((p) => p.name);
    expect(ports).toContain(config.servicePortName);
    expect(ports).toContain(config.peerStatusPortName);
    const fieldOf = (name: string): string | undefined =>
      env.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
    expect(fieldOf("TABBY_POD_NAME")).toBe("metadata.name");
    expect(fieldOf("TABBY_POD_IP")).toBe("status.podIP");
  });
});
