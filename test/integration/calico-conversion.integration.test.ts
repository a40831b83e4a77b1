/**
 * Calico's conversion through a real kube-apiserver 1.20.2: namespaces, service accounts, a node, pods and
 * Kubernetes NetworkPolicies with every Calico-relevant annotation and form are written through the API
 * (so the API server's validation and defaulting apply), a tabby server watches it, and `tabby dump`'s
 * own function (dumpView) reads the felix view. The values must be those libcalico-go's conversion gives
 * (the rules are in docs/CALICO-CONFORMANCE.md, and the expected values below are written from them, not
 * computed by tabby's converters).
 *
 * kube-apiserver 1.20 does not know NetworkPolicyPort.endPort (alpha in 1.21, beta in 1.22) and drops it
 * on write: a range written here arrives as its first port, and so the expected rule has that port only.
 */
import { createHash } from "node:crypto";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResourceValue } from "../../proto/messages.js";
import { dumpView } from "../../src/cli/dump.js";
import { convertUid } from "../../src/server/datastore/convert/names.js";
import { runServer } from "../../src/server/main.js";
import { startCluster } from "./cluster.js";
import type { Cluster } from "./cluster.js";
import { loopbackServeConfig } from "../support/serve-config.js";

const NS = "calico-it";
const MERGE_PATCH = "application/merge-patch+json";
const K8S = "projectcalico.org/orchestrator == 'k8s'";

type Json = Record<string, unknown>;

let cluster: Cluster;
let view: Map<string, ResourceValue>;
let invalidByKind: Map<string, number>;
/** uids the API server gave, by `resource/name`. */
const uids = new Map<string, string>();

async function create(path: string, body: Json, id: string): Promise<void> {
  const made = await cluster.request<{ metadata: { uid: string } }>("POST", path, body);
  uids.set(id, made.metadata.uid);
}

async function setStatus(path: string, status: Json): Promise<void> {
  await cluster.request("PATCH", `${path}/status`, { status }, MERGE_PATCH);
}

function pod(name: string, extra: { annotations?: Record<string, string>; spec?: Json } = {}): Json {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      generateName: `${name.slice(0, name.lastIndexOf("-"))}-`,
      namespace: NS,
      labels: { app: name.slice(0, name.lastIndexOf("-")) },
      annotations: extra.annotations ?? {},
    },
    spec: {
      nodeName: "worker-1",
      containers: [{ name: "main", image: "registry.example.com/app:1" }],
      ...extra.spec,
    },
  };
}

const podsPath = `/api/v1/namespaces/${NS}/pods`;

/** Writes the cluster: everything Calico converts, with each annotation and form it reads. */
async function writeCluster(): Promise<void> {
  await create("/api/v1/namespaces", { metadata: { name: NS, labels: { team: "net" } } }, "ns");
  await create(
    `/api/v1/namespaces/${NS}/serviceaccounts`,
    { metadata: { name: "web", labels: { app: "web" } } },
    "sa",
  );
  await create(
    "/api/v1/nodes",
    {
      metadata: {
        name: "worker-1",
        labels: { "kubernetes.io/hostname": "worker-1", rack: "r1" },
        annotations: {
          "projectcalico.org/IPv4Address": "192.168.1.10/24",
          "projectcalico.org/IPv6Address": "fd00:1::10/64",
          "projectcalico.org/ASNumber": "1.10",
          "projectcalico.org/RouteReflectorClusterID": "244.0.0.1",
          "projectcalico.org/IPv4IPIPTunnelAddr": "10.244.1.1",
          "projectcalico.org/IPv4VXLANTunnelAddr": "10.244.1.2",
          "projectcalico.org/VXLANTunnelMACAddr": "66:aa:bb:cc:dd:ee",
          "projectcalico.org/IPv6VXLANTunnelAddr": "fd00:244::2",
          "projectcalico.org/VXLANTunnelMACAddrV6": "66:aa:bb:cc:dd:ef",
          "projectcalico.org/IPv4WireguardInterfaceAddr": "10.244.1.3",
          "projectcalico.org/IPv6WireguardInterfaceAddr": "fd00:244::3",
          "projectcalico.org/WireguardPublicKey": "jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY=",
          "projectcalico.org/WireguardPublicKeyV6": "5P4jS1vM8W1N6kQx2w9Y7q3y0xkQkCwz8bq1cJpZb2s=",
          "projectcalico.org/labels": '{"calico-only":"yes","rack":"from-calico"}',
          "projectcalico.org/annotations": '{"note":"calico"}',
          "projectcalico.org/Interfaces": '[{"name":"eth0","addresses":["192.168.1.10","fd00:1::10"]}]',
          "node.alpha.kubernetes.io/ttl": "0",
        },
      },
      spec: { podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"] },
    },
    "node",
  );
  await setStatus("/api/v1/nodes/worker-1", {
    addresses: [
      { type: "InternalIP", address: "192.168.1.10" },
      { type: "ExternalIP", address: "203.0.113.10" },
      { type: "Hostname", address: "worker-1" },
    ],
  });

  // A running pod with every WorkloadEndpoint input: dual-stack IPs, floating IPs of both families,
  // spoofable source prefixes, QoS (Kubernetes and Calico annotations), Multus, ports of every kind.
  await create(
    podsPath,
    pod("web-abcde", {
      annotations: {
        "cni.projectcalico.org/containerID": "abc123",
        "cni.projectcalico.org/floatingIPs": '["172.16.0.5","2001:db8::5"]',
        "cni.projectcalico.org/allowedSourcePrefixes": '["192.168.10.5/24","fd00:99::/64"]',
        "kubernetes.io/ingress-bandwidth": "10M",
        "kubernetes.io/egress-bandwidth": "20M",
        "qos.projectcalico.org/ingressBandwidth": "15M",
        "qos.projectcalico.org/ingressBurst": "30M",
        "qos.projectcalico.org/egressPacketRate": "2k",
        "qos.projectcalico.org/egressMaxConnections": "100",
        "qos.projectcalico.org/dscp": "40",
        "k8s.v1.cni.cncf.io/network-status":
          '[{"name":"k8s-pod-network","ips":["10.244.1.5"],"default":true}]',
        "example.com/other": "dropped",
      },
      spec: {
        serviceAccountName: "web",
        containers: [
          {
            name: "main",
            image: "registry.example.com/web:1",
            ports: [
              { name: "http", containerPort: 8080 },
              { name: "dns", containerPort: 53, protocol: "UDP" },
              { name: "sig", containerPort: 9000, protocol: "SCTP" },
              { containerPort: 8443, hostPort: 30443, hostIP: "192.168.1.10" },
              { containerPort: 7000 },
            ],
          },
        ],
        initContainers: [
          {
            name: "init",
            image: "registry.example.com/init:1",
            ports: [{ name: "init-metrics", containerPort: 9100 }],
          },
        ],
      },
    }),
    "web",
  );
  await setStatus(`${podsPath}/web-abcde`, {
    phase: "Running",
    podIP: "10.244.1.5",
    podIPs: [{ ip: "10.244.1.5" }, { ip: "fd00:244::5" }],
  });
  // IPs only in annotations (Calico's CNI plugin's, and the AWS VPC CNI's): the pod is still Pending.
  await create(
    podsPath,
    pod("legacy-00001", { annotations: { "cni.projectcalico.org/podIP": "10.244.1.6/32" } }),
    "legacy",
  );
  await create(
    podsPath,
    pod("aws-00001", { annotations: { "vpc.amazonaws.com/pod-ips": "10.244.1.7" } }),
    "aws",
  );
  // No endpoint: finished, host-networked, and one Calico rejects (a source prefix that is no CIDR).
  await create(podsPath, pod("done-00001"), "done");
  await setStatus(`${podsPath}/done-00001`, {
    phase: "Succeeded",
    podIP: "10.244.1.8",
    podIPs: [{ ip: "10.244.1.8" }],
  });
  await create(podsPath, pod("host-00001", { spec: { hostNetwork: true } }), "host");
  await setStatus(`${podsPath}/host-00001`, {
    phase: "Running",
    podIP: "192.168.1.10",
    podIPs: [{ ip: "192.168.1.10" }],
  });
  await create(
    podsPath,
    pod("bad-00001", { annotations: { "cni.projectcalico.org/allowedSourcePrefixes": '["not-a-cidr"]' } }),
    "bad",
  );
  await setStatus(`${podsPath}/bad-00001`, {
    phase: "Running",
    podIP: "10.244.1.9",
    podIPs: [{ ip: "10.244.1.9" }],
  });

  const policies = `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`;
  await create(
    policies,
    {
      metadata: { name: "every-form" },
      spec: {
        podSelector: {
          matchLabels: { app: "web" },
          matchExpressions: [{ key: "tier", operator: "In", values: ["a", "b"] }],
        },
        policyTypes: ["Ingress", "Egress"],
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { role: "client" } } },
              { namespaceSelector: {} },
              {
                namespaceSelector: { matchLabels: { team: "net" } },
                podSelector: { matchExpressions: [{ key: "role", operator: "NotIn", values: ["x"] }] },
              },
              { ipBlock: { cidr: "10.1.2.3/16", except: ["10.1.5.0/24"] } },
            ],
            ports: [
              { protocol: "TCP", port: 80 },
              { port: "http" },
              { protocol: "UDP", port: "dns" },
              { protocol: "SCTP", port: 9000 },
              { protocol: "TCP", port: 8000, endPort: 8100 },
            ],
          },
          { ports: [{ protocol: "UDP" }] },
        ],
        egress: [{ to: [{ ipBlock: { cidr: "fd00::/8" } }] }, {}],
      },
    },
    "every-form",
  );
  // No policyTypes: the API server defaults them (Ingress, plus Egress as there are egress rules).
  await create(
    policies,
    {
      metadata: { name: "untyped" },
      spec: { podSelector: {}, egress: [{ ports: [{ protocol: "UDP", port: 53 }] }] },
    },
    "untyped",
  );

  // A ClusterNetworkPolicy (sigs.k8s.io/network-policy-api; its CRD is installed with Calico's).
  await create(
    "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies",
    {
      apiVersion: "policy.networking.k8s.io/v1alpha2",
      kind: "ClusterNetworkPolicy",
      metadata: { name: "admin-guard" },
      spec: {
        tier: "Admin",
        priority: 20,
        subject: {
          pods: {
            namespaceSelector: { matchLabels: { team: "net" } },
            podSelector: { matchLabels: { app: "web" } },
          },
        },
        ingress: [
          {
            name: "allow-clients",
            action: "Accept",
            from: [{ namespaces: { matchLabels: { team: "net" } } }],
            protocols: [
              { tcp: { destinationPort: { number: 80 } } },
              { tcp: { destinationPort: { range: { start: 8000, end: 8100 } } } },
            ],
          },
        ],
        egress: [{ action: "Deny", to: [{ networks: ["10.9.8.7/8"] }] }],
      },
    },
    "cnp",
  );

  // A Tier without order or default action (Calico's Tier client fills both in).
  await create(
    "/apis/crd.projectcalico.org/v1/tiers",
    { apiVersion: "crd.projectcalico.org/v1", kind: "Tier", metadata: { name: "app" }, spec: {} },
    "tier",
  );
  // A Calico CR as calicoctl writes it on the v1 CRDs: `default.` name, v3 metadata packed.
  await create(
    "/apis/crd.projectcalico.org/v1/globalnetworkpolicies",
    {
      apiVersion: "crd.projectcalico.org/v1",
      kind: "GlobalNetworkPolicy",
      metadata: {
        name: "default.deny-egress",
        annotations: {
          "projectcalico.org/metadata":
            '{"labels":{"owner":"sec"},"annotations":{"note":"v3"},"creationTimestamp":"2025-01-02T03:04:05Z"}',
        },
      },
      spec: { tier: "default", order: 10, selector: "all()", types: ["Egress"] },
    },
    "gnp",
  );
}

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCalicoCrds();
  await writeCluster();
  const config = loopbackServeConfig({
    flushWindowMs: "1",
  });
  const registry = new Registry();
  const server = await runServer(config, {
    logger: pino({ level: "silent" }),
    kubeConfig: cluster.kubeConfig(),
    registry,
  });
  try {
    const lines = await dumpView({
      servers: [`ws://127.0.0.1:${server.port}`],
      view: "felix",
      timeoutMs: 30_000,
    });
    view = new Map(
      lines.map((l) => {
        const { key, value } = JSON.parse(l) as { key: string; value: ResourceValue };
        return [key, value];
      }),
    );
    const metric = await registry.getSingleMetric("tabby_upstream_invalid_objects_total")?.get();
    invalidByKind = new Map((metric?.values ?? []).map((v) => [String(v.labels.kind), v.value]));
  } finally {
    await server.close();
  }
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

const valueOf = (key: string): Json => {
  const v = view.get(key);
  if (v === undefined) throw new Error(`${key} is not in the felix view`);
  return v;
};

describe("Calico's conversion of objects written through kube-apiserver 1.20", () => {
  it("Pod → WorkloadEndpoint: IPs, floating IPs, source prefixes, QoS, ports, profiles, metadata", () => {
    const wep = valueOf(`WorkloadEndpoint/${NS}/worker--1-k8s-web--abcde-eth0`);
    const iface = `cali${createHash("sha1").update(`${NS}.web-abcde`).digest("hex").slice(0, 11)}`;
    expect(wep.metadata).toMatchObject({
      name: "worker--1-k8s-web--abcde-eth0",
      generateName: "web-",
      namespace: NS,
      uid: uids.get("web"),
      labels: {
        app: "web",
        "projectcalico.org/namespace": NS,
        "projectcalico.org/orchestrator": "k8s",
        "projectcalico.org/serviceaccount": "web",
      },
      annotations: {
        "k8s.v1.cni.cncf.io/network-status":
          '[{"name":"k8s-pod-network","ips":["10.244.1.5"],"default":true}]',
      },
    });
    expect(wep.spec).toEqual({
      orchestrator: "k8s",
      node: "worker-1",
      containerID: "abc123",
      pod: "web-abcde",
      endpoint: "eth0",
      serviceAccountName: "web",
      ipNetworks: ["10.244.1.5/32", "fd00:244::5/128"],
      ipNATs: [
        { internalIP: "10.244.1.5", externalIP: "172.16.0.5" },
        { internalIP: "fd00:244::5", externalIP: "2001:db8::5" },
      ],
      profiles: [`kns.${NS}`, `ksa.${NS}.web`],
      interfaceName: iface,
      ports: [
        { name: "http", protocol: "TCP", port: 8080, hostPort: 0, hostIP: "" },
        { name: "dns", protocol: "UDP", port: 53, hostPort: 0, hostIP: "" },
        { name: "sig", protocol: "SCTP", port: 9000, hostPort: 0, hostIP: "" },
        { name: "", protocol: "TCP", port: 8443, hostPort: 30443, hostIP: "192.168.1.10" },
        { name: "init-metrics", protocol: "TCP", port: 9100, hostPort: 0, hostIP: "" },
      ],
      allowSpoofedSourcePrefixes: ["192.168.10.0/24", "fd00:99::/64"],
      qosControls: {
        ingressBandwidth: 15_000_000,
        ingressBurst: 30_000_000,
        egressBandwidth: 20_000_000,
        egressBurst: 4 * 1024 ** 3,
        egressPacketRate: 2000,
        egressPacketBurst: 5,
        egressMaxConnections: 100,
        dscp: 40,
      },
    });
    expect(specOf(`WorkloadEndpoint/${NS}/worker--1-k8s-legacy--00001-eth0`).ipNetworks).toEqual([
      "10.244.1.6/32",
    ]);
    expect(specOf(`WorkloadEndpoint/${NS}/worker--1-k8s-aws--00001-eth0`).ipNetworks).toEqual([
      "10.244.1.7/32",
    ]);
  });

  it("gives no endpoint to finished, host-network and rejected pods, and counts the rejected one", () => {
    for (const p of ["done--00001", "host--00001", "bad--00001"]) {
      expect(view.has(`WorkloadEndpoint/${NS}/worker--1-k8s-${p}-eth0`), p).toBe(false);
    }
    expect(invalidByKind.get("WorkloadEndpoint")).toBe(1);
  });

  it("Node → Node: BGP, VXLAN, WireGuard, addresses, interfaces, Calico labels and annotations", () => {
    const node = valueOf("Node/worker-1");
    expect(node.metadata).toMatchObject({
      name: "worker-1",
      uid: uids.get("node"),
      labels: { "calico-only": "yes", rack: "r1", "kubernetes.io/hostname": "worker-1" },
      annotations: {
        note: "calico",
        "projectcalico.org/kube-labels": '{"kubernetes.io/hostname":"worker-1","rack":"r1"}',
      },
    });
    expect(node.spec).toEqual({
      bgp: {
        asNumber: 65546,
        ipv4Address: "192.168.1.10/24",
        ipv6Address: "fd00:1::10/64",
        ipv4IPIPTunnelAddr: "10.244.1.1",
        routeReflectorClusterID: "244.0.0.1",
      },
      ipv4VXLANTunnelAddr: "10.244.1.2",
      vxlanTunnelMACAddr: "66:aa:bb:cc:dd:ee",
      ipv6VXLANTunnelAddr: "fd00:244::2",
      vxlanTunnelMACAddrV6: "66:aa:bb:cc:dd:ef",
      orchRefs: [{ nodeName: "worker-1", orchestrator: "k8s" }],
      wireguard: { interfaceIPv4Address: "10.244.1.3", interfaceIPv6Address: "fd00:244::3" },
      addresses: [
        { address: "192.168.1.10/24", type: "CalicoNodeIP" },
        { address: "fd00:1::10/64", type: "CalicoNodeIP" },
        { address: "192.168.1.10", type: "InternalIP" },
        { address: "203.0.113.10", type: "ExternalIP" },
      ],
      interfaces: [{ name: "eth0", addresses: ["192.168.1.10", "fd00:1::10"] }],
    });
    expect(node.status).toEqual({
      wireguardPublicKey: "jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY=",
      wireguardPublicKeyV6: "5P4jS1vM8W1N6kQx2w9Y7q3y0xkQkCwz8bq1cJpZb2s=",
      podCIDRs: ["10.244.1.0/24"],
    });
  });

  it("Namespace and ServiceAccount → Profiles with derived uids", () => {
    const ns = valueOf(`Profile/kns.${NS}`);
    expect(ns.metadata).toMatchObject({ name: `kns.${NS}`, uid: convertUid(uids.get("ns")!) });
    expect(ns.spec).toMatchObject({
      ingress: [{ action: "Allow" }],
      egress: [{ action: "Allow" }],
      labelsToApply: { "pcns.team": "net", "pcns.projectcalico.org/name": NS },
    });
    const sa = valueOf(`Profile/ksa.${NS}.web`);
    expect(sa.metadata).toMatchObject({ name: `ksa.${NS}.web`, uid: convertUid(uids.get("sa")!) });
    expect(sa.spec).toEqual({
      labelsToApply: { "pcsa.app": "web", "pcsa.projectcalico.org/name": "web" },
    });
  });

  it("NetworkPolicy → Calico NetworkPolicy: every peer and port form (1.20 drops endPort)", async () => {
    const stored = await cluster.request<{ spec: { ingress: { ports: Json[] }[] } }>(
      "GET",
      `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/every-form`,
    );
    expect(stored.spec.ingress[0]?.ports[4]).toEqual({ protocol: "TCP", port: 8000 });
    const policy = valueOf(`KubernetesNetworkPolicy/${NS}/every-form`);
    expect(policy.kind).toBe("NetworkPolicy");
    expect(policy.metadata).toMatchObject({
      name: "every-form",
      namespace: NS,
      uid: convertUid(uids.get("every-form")!),
    });
    const peers: Json[] = [
      { selector: `${K8S} && role == 'client'` },
      { selector: K8S, namespaceSelector: "all()" },
      { selector: `${K8S} && role not in { 'x' }`, namespaceSelector: "team == 'net'" },
      { nets: ["10.1.0.0/16"], notNets: ["10.1.5.0/24"] },
    ];
    // Protocols sorted; per protocol the ports simplified (names first); one rule per peer.
    const byProtocol: [string, (number | string)[]][] = [
      ["SCTP", [9000]],
      ["TCP", ["http", 80, 8000]],
      ["UDP", ["dns"]],
    ];
    expect(policy.spec).toEqual({
      tier: "default",
      order: 1000,
      ingress: [
        ...byProtocol.flatMap(([protocol, ports]) =>
          peers.map((source) => ({ action: "Allow", protocol, source, destination: { ports } })),
        ),
        { action: "Allow", protocol: "UDP" },
      ],
      egress: [{ action: "Allow", destination: { nets: ["fd00::/8"] } }, { action: "Allow" }],
      selector: `${K8S} && app == 'web' && tier in { 'a', 'b' }`,
      types: ["Ingress", "Egress"],
    });
    expect(specOf(`KubernetesNetworkPolicy/${NS}/untyped`)).toEqual({
      tier: "default",
      order: 1000,
      egress: [{ action: "Allow", protocol: "UDP", destination: { ports: [53] } }],
      selector: K8S,
      types: ["Ingress", "Egress"],
    });
  });

  it("ClusterNetworkPolicy → Calico GlobalNetworkPolicy in the kube-admin tier", () => {
    const policy = valueOf("KubernetesClusterNetworkPolicy/admin-guard");
    expect(policy.kind).toBe("GlobalNetworkPolicy");
    expect(policy.metadata).toMatchObject({ name: "admin-guard", uid: convertUid(uids.get("cnp")!) });
    expect(policy.spec).toEqual({
      tier: "kube-admin",
      order: 20,
      ingress: [
        {
          action: "Allow",
          protocol: "TCP",
          source: { namespaceSelector: "team == 'net'" },
          destination: { ports: [80, "8000:8100"] },
          metadata: { annotations: { name: "allow-clients" } },
        },
      ],
      egress: [{ action: "Deny", destination: { nets: ["10.0.0.0/8"] } }],
      selector: `${K8S} && app == 'web'`,
      types: ["Ingress", "Egress"],
      namespaceSelector: "team == 'net'",
    });
  });

  it("Calico's own values: the default-allow profile, Tier defaults", () => {
    expect(valueOf("Profile/projectcalico-default-allow").spec).toEqual({
      ingress: [{ action: "Allow" }],
      egress: [{ action: "Allow" }],
    });
    expect(valueOf("Tier/app")).toMatchObject({
      metadata: { name: "app", uid: convertUid(uids.get("tier")!) },
      spec: { order: 1_000_000, defaultAction: "Deny" },
    });
  });

  it("a v1 Calico CR: v3 name, derived uid, metadata unpacked from projectcalico.org/metadata", () => {
    expect(view.has("GlobalNetworkPolicy/default.deny-egress")).toBe(false);
    const gnp = valueOf("GlobalNetworkPolicy/deny-egress");
    expect(gnp.metadata).toEqual({
      name: "deny-egress",
      uid: convertUid(uids.get("gnp")!),
      resourceVersion: expect.any(String) as unknown,
      creationTimestamp: "2025-01-02T03:04:05Z",
      labels: { owner: "sec" },
      annotations: { note: "v3" },
    });
    expect(gnp.spec).toEqual({ tier: "default", order: 10, selector: "all()", types: ["Egress"] });
  });
});

function specOf(key: string): Json {
  return valueOf(key).spec as Json;
}
