/** A small, realistic cluster for datastore tests: every converted kind, including pods without endpoint. */
import type { Simulator } from "../../src/sim/index.js";
import { workloadEndpointName } from "../../src/server/datastore/index.js";

export function nodeObject(name: string, i: number): object {
  return {
    metadata: {
      name,
      labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux" },
      annotations: {
        "projectcalico.org/IPv4Address": `172.18.0.${10 + i}/16`,
        "projectcalico.org/IPv4IPIPTunnelAddr": `10.244.${i}.1`,
        "projectcalico.org/ASNumber": "64512",
      },
    },
    spec: { podCIDR: `10.244.${i}.0/24` },
    status: { addresses: [{ type: "InternalIP", address: `172.18.0.${10 + i}` }] },
  };
}

export function podObject(
  ns: string,
  name: string,
  opts: {
    node?: string;
    ip?: string;
    labels?: Record<string, string>;
    phase?: string;
    hostNetwork?: boolean;
  } = {},
): object {
  return {
    metadata: { name, namespace: ns, labels: opts.labels ?? { app: name.split("-")[0] ?? name } },
    spec: {
      nodeName: opts.node ?? "node-0",
      serviceAccountName: "default",
      hostNetwork: opts.hostNetwork ?? false,
      containers: [{ name: "main", image: "nginx", ports: [{ name: "http", containerPort: 80 }] }],
    },
    status: {
      phase: opts.phase ?? "Running",
      ...(opts.ip === undefined ? {} : { podIP: opts.ip, podIPs: [{ ip: opts.ip }] }),
    },
  };
}

/** Seeds nodes, namespaces, service accounts, pods (some without endpoint), policies, services, slices, CRs. */
export function seedSmallCluster(sim: Simulator, opts: { pods?: number; hasCrds?: boolean } = {}): void {
  const pods = opts.pods ?? 12;
  for (let i = 0; i < 3; i++) sim.create("nodes", nodeObject(`node-${i}`, i));
  for (const ns of ["default", "payments", "kube-system"]) {
    if (sim.get("namespaces", undefined, ns) === undefined) {
      sim.create("namespaces", { metadata: { name: ns, labels: { "kubernetes.io/metadata.name": ns } } });
    }
    sim.create("serviceaccounts", { metadata: { name: "default", namespace: ns } });
  }
  sim.create("serviceaccounts", {
    metadata: { name: "api", namespace: "payments", labels: { role: "api" } },
  });
  for (let i = 0; i < pods; i++) {
    sim.create(
      "pods",
      podObject("payments", `api-${i}`, { node: `node-${i % 3}`, ip: `10.244.${i % 3}.${10 + i}` }),
    );
  }
  sim.create("pods", podObject("kube-system", "kube-proxy-a", { hostNetwork: true, ip: "172.18.0.10" }));
  sim.create("pods", podObject("payments", "pending-0"));
  sim.create("pods", podObject("payments", "job-0", { phase: "Succeeded", ip: "10.244.0.99" }));
  sim.create("networkpolicies", {
    metadata: { name: "allow-api", namespace: "payments" },
    spec: { podSelector: { matchLabels: { app: "api" } }, policyTypes: ["Ingress"], ingress: [{}] },
  });
  sim.create("services", {
    metadata: { name: "api", namespace: "payments" },
    spec: { selector: { app: "api" }, ports: [{ port: 80, protocol: "TCP" }], clusterIP: "10.96.0.20" },
  });
  sim.create("endpointslices", {
    metadata: { name: "api-abc12", namespace: "payments", labels: { "kubernetes.io/service-name": "api" } },
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.244.0.10"], conditions: { ready: true }, nodeName: "node-0" }],
    ports: [{ port: 80, protocol: "TCP" }],
  });
  if (opts.hasCrds === false) return;
  sim.create("ippools", {
    metadata: { name: "default-ipv4-ippool" },
    spec: { cidr: "10.244.0.0/16", blockSize: 26, ipipMode: "Always", natOutgoing: true },
  });
  sim.create("globalnetworkpolicies", {
    metadata: { name: "default.deny-all" },
    spec: { tier: "default", order: 1000, selector: "all()", types: ["Ingress"] },
  });
  sim.create("networkpolicies.crd.projectcalico.org", {
    metadata: { name: "default.db", namespace: "payments" },
    spec: { tier: "default", selector: "app == 'db'", types: ["Ingress"] },
  });
  sim.create("caliconodestatuses", {
    metadata: { name: "node-0" },
    spec: { node: "node-0", classes: ["Agent"], updatePeriodSeconds: 10 },
    status: { agent: { birdV4: { state: "Ready" } } },
  });
}

/** The snapshot key of a pod's WorkloadEndpoint: Calico's name `<node>-k8s-<pod>-eth0`, dashes doubled. */
export function wepKey(ns: string, pod: string, node = "node-0"): string {
  return `WorkloadEndpoint/${ns}/${workloadEndpointName(node, pod)}`;
}
