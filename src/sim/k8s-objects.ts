import { deepFreeze } from "./objects.js";
import type { Prng } from "./prng.js";

/** Builders of realistic core Kubernetes objects for the seed and the churn generator. */

export const CHANGED_AT_ANNOTATION = "tabby.dev/changed-at";
export type Obj = { [field: string]: unknown };

export interface NodeSpec {
  readonly name: string;
  readonly ip: string;
  readonly zone: string;
  readonly rack: string;
  readonly tunnelIp: string;
  readonly wireguardKey: string;
  readonly isControlPlane: boolean;
}

// Stored objects are frozen, so builders share constant parts between objects (less memory, less GC).
const NODE_CAPACITY = deepFreeze({
  cpu: "16",
  memory: "65842052Ki",
  pods: "110",
  "ephemeral-storage": "203056560Ki",
});
const NODE_ALLOCATABLE = deepFreeze({
  cpu: "15800m",
  memory: "64690052Ki",
  pods: "110",
  "ephemeral-storage": "187136925936",
});
const NODE_CONDITIONS = deepFreeze([
  { type: "MemoryPressure", status: "False", reason: "KubeletHasSufficientMemory" },
  { type: "DiskPressure", status: "False", reason: "KubeletHasNoDiskPressure" },
  { type: "PIDPressure", status: "False", reason: "KubeletHasSufficientPID" },
  { type: "Ready", status: "True", reason: "KubeletReady", message: "kubelet is posting ready status" },
]);
const NODE_INFO = deepFreeze({
  architecture: "amd64",
  operatingSystem: "linux",
  osImage: "Ubuntu 24.04.1 LTS",
  kernelVersion: "6.8.0-45-generic",
  containerRuntimeVersion: "containerd://1.7.22",
  kubeletVersion: "v1.31.1",
  kubeProxyVersion: "v1.31.1",
  machineID: "",
  systemUUID: "",
  bootID: "",
});
const CONTROL_PLANE_SPEC = deepFreeze({
  taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
});

function podConditions(isReady: boolean): readonly object[] {
  const s = isReady ? "True" : "False";
  return [
    { type: "PodScheduled", status: "True" },
    { type: "Initialized", status: "True" },
    { type: "ContainersReady", status: s },
    { type: "Ready", status: s },
  ];
}
const READY_CONDITIONS = deepFreeze(podConditions(true));
const NOT_READY_CONDITIONS = deepFreeze(podConditions(false));
const POD_PORTS = deepFreeze([
  { name: "http", containerPort: 8080, protocol: "TCP" },
  { name: "metrics", containerPort: 9090, protocol: "TCP" },
]);
const POD_RESOURCES = deepFreeze({ requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } });
const containersCache = new Map<string, readonly object[]>();

function containersOf(app: string, version: string): readonly object[] {
  const key = `${app}:${version}`;
  let c = containersCache.get(key);
  if (c === undefined) {
    c = deepFreeze([
      {
        name: app,
        image: `registry.example.com/${app}:1.${version.slice(1)}`,
        imagePullPolicy: "IfNotPresent",
        ports: POD_PORTS,
        resources: POD_RESOURCES,
      },
    ]);
    if (containersCache.size < 10_000) containersCache.set(key, c);
  }
  return c;
}

export function nodeObject(n: NodeSpec): Obj {
  const labels: Record<string, string> = {
    "kubernetes.io/hostname": n.name,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "beta.kubernetes.io/os": "linux",
    "beta.kubernetes.io/arch": "amd64",
    "topology.kubernetes.io/region": "region-1",
    "topology.kubernetes.io/zone": n.zone,
    rack: n.rack,
  };
  if (n.isControlPlane) labels["node-role.kubernetes.io/control-plane"] = "";
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: n.name,
      labels,
      annotations: {
        "projectcalico.org/IPv4Address": `${n.ip}/16`,
        "projectcalico.org/IPv4IPIPTunnelAddr": n.tunnelIp,
        "projectcalico.org/WireguardPublicKey": n.wireguardKey,
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
      },
    },
    spec: n.isControlPlane ? CONTROL_PLANE_SPEC : {},
    status: {
      addresses: [
        { type: "InternalIP", address: n.ip },
        { type: "Hostname", address: n.name },
      ],
      capacity: NODE_CAPACITY,
      allocatable: NODE_ALLOCATABLE,
      conditions: NODE_CONDITIONS,
      nodeInfo: NODE_INFO,
    },
  };
}

export function namespaceObject(name: string, labels: Record<string, string> = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, labels: { "kubernetes.io/metadata.name": name, ...labels } },
    spec: { finalizers: ["kubernetes"] },
    status: { phase: "Active" },
  };
}

export function serviceAccountObject(namespace: string, name: string): Obj {
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name, namespace, labels: name === "default" ? {} : { "app.kubernetes.io/name": name } },
  };
}

export type PodPhase = "Running" | "Pending" | "Succeeded";

export interface PodSpec {
  readonly namespace: string;
  readonly name: string;
  readonly app: string;
  readonly templateHash: string;
  readonly tier: string;
  readonly serviceAccount: string;
  readonly nodeName: string;
  readonly nodeIp: string;
  /** Undefined for a pod with no IP yet. */
  readonly podIp: string | undefined;
  readonly phase: PodPhase;
  readonly isHostNetwork: boolean;
  readonly containerId: string;
  readonly ownerUid: string;
  readonly startTime: string;
  readonly version: string;
}

export function podObject(p: PodSpec, annotations: Record<string, string> = {}): Obj {
  const isReady = p.phase === "Running";
  const podAnnotations: Record<string, string> = { ...annotations };
  if (p.podIp !== undefined && !p.isHostNetwork) {
    podAnnotations["cni.projectcalico.org/podIP"] = `${p.podIp}/32`;
    podAnnotations["cni.projectcalico.org/podIPs"] = `${p.podIp}/32`;
    podAnnotations["cni.projectcalico.org/containerID"] = p.containerId;
  }
  const ownerKind = p.phase === "Succeeded" ? "Job" : p.isHostNetwork ? "DaemonSet" : "ReplicaSet";
  const ownerName = ownerKind === "ReplicaSet" ? `${p.app}-${p.templateHash}` : p.app;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: p.name,
      namespace: p.namespace,
      labels: {
        app: p.app,
        "app.kubernetes.io/name": p.app,
        tier: p.tier,
        version: p.version,
        ...(ownerKind === "ReplicaSet" ? { "pod-template-hash": p.templateHash } : {}),
      },
      annotations: podAnnotations,
      ownerReferences: [
        {
          apiVersion: ownerKind === "Job" ? "batch/v1" : "apps/v1",
          kind: ownerKind,
          name: ownerName,
          uid: p.ownerUid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      nodeName: p.nodeName,
      serviceAccountName: p.serviceAccount,
      serviceAccount: p.serviceAccount,
      ...(p.isHostNetwork ? { hostNetwork: true } : {}),
      restartPolicy: p.phase === "Succeeded" ? "Never" : "Always",
      dnsPolicy: p.isHostNetwork ? "ClusterFirstWithHostNet" : "ClusterFirst",
      schedulerName: "default-scheduler",
      terminationGracePeriodSeconds: 30,
      containers: containersOf(p.app, p.version),
    },
    status: {
      phase: p.phase,
      hostIP: p.nodeIp,
      hostIPs: [{ ip: p.nodeIp }],
      ...(p.podIp === undefined ? {} : { podIP: p.podIp, podIPs: [{ ip: p.podIp }] }),
      startTime: p.startTime,
      qosClass: "Burstable",
      conditions: isReady ? READY_CONDITIONS : NOT_READY_CONDITIONS,
    },
  };
}

export function serviceObject(
  namespace: string,
  name: string,
  clusterIp: string,
  selector: Record<string, string>,
): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      type: "ClusterIP",
      selector,
      clusterIP: clusterIp,
      clusterIPs: [clusterIp],
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      sessionAffinity: "None",
      internalTrafficPolicy: "Cluster",
      ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }],
    },
    status: { loadBalancer: {} },
  };
}

export interface SliceEndpoint {
  readonly ip: string;
  readonly nodeName: string;
  readonly podName: string;
  readonly podUid: string;
  readonly isReady: boolean;
}

export function endpointSliceObject(
  apiVersion: string,
  namespace: string,
  name: string,
  service: string,
  endpoints: readonly SliceEndpoint[],
): Obj {
  return {
    apiVersion,
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace,
      labels: {
        "kubernetes.io/service-name": service,
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      },
      ownerReferences: [
        {
          apiVersion: "v1",
          kind: "Service",
          name: service,
          uid: "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    addressType: "IPv4",
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.isReady, serving: e.isReady, terminating: false },
      nodeName: e.nodeName,
      targetRef: { kind: "Pod", namespace, name: e.podName, uid: e.podUid },
    })),
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  };
}

export function denyAllIngressPolicy(namespace: string): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "default-deny-ingress", namespace },
    spec: { podSelector: {}, policyTypes: ["Ingress"] },
  };
}

export function allowAppPolicy(namespace: string, app: string, port: number): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: `allow-${app}`, namespace, labels: { app } },
    spec: {
      podSelector: { matchLabels: { app } },
      policyTypes: ["Ingress"],
      ingress: [
        {
          from: [
            { podSelector: { matchLabels: { tier: "frontend" } } },
            { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
          ],
          ports: [{ protocol: "TCP", port }],
        },
      ],
    },
  };
}

/** A pod name as a ReplicaSet makes them. */
export function podName(rng: Prng, app: string, templateHash: string): string {
  return `${app}-${templateHash}-${rng.suffix(5)}`;
}
