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
  /** The VXLAN tunnel address and its MAC (calico-node's `projectcalico.org/IPv4VXLANTunnelAddr`, ...MACAddr). */
  readonly vxlanTunnelIp?: string;
  readonly vxlanMac?: string;
  /** The WireGuard interface address (`projectcalico.org/IPv4WireguardInterfaceAddr`). */
  readonly wireguardIp?: string;
  /** The node's podCIDR (what calico-node's USE_POD_CIDR takes the tunnel address from). */
  readonly podCidr?: string;
  /** A BGP route reflector: its own AS number, a cluster ID and a `route-reflector` Calico label. */
  readonly isRouteReflector?: boolean;
}

/** The podCIDR the controller manager would give the n-th node (10.128.0.0/9, one /24 per node). */
export function nodePodCidr(index: number): string {
  return `10.${128 + ((index >> 8) & 127)}.${index & 255}.0/24`;
}

/** A locally administered unicast MAC from 10 hex digits (calico-node picks a random one). */
export function vxlanMac(hex10: string): string {
  return `66:${hex10.match(/../g)!.join(":")}`;
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
/** A cache also gossips over UDP and SCTP (WorkloadEndpoint ports of every protocol Calico spells). */
const CACHE_PORTS = deepFreeze([
  ...POD_PORTS,
  { name: "gossip", containerPort: 7946, protocol: "UDP" },
  { name: "replication", containerPort: 7947, protocol: "SCTP" },
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
        ports: app === "cache" ? CACHE_PORTS : POD_PORTS,
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
  const annotations: Record<string, string> = {
    "projectcalico.org/IPv4Address": `${n.ip}/16`,
    "projectcalico.org/IPv4IPIPTunnelAddr": n.tunnelIp,
    "projectcalico.org/WireguardPublicKey": n.wireguardKey,
    "node.alpha.kubernetes.io/ttl": "0",
    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
  };
  if (n.vxlanTunnelIp !== undefined) annotations["projectcalico.org/IPv4VXLANTunnelAddr"] = n.vxlanTunnelIp;
  if (n.vxlanMac !== undefined) annotations["projectcalico.org/VXLANTunnelMACAddr"] = n.vxlanMac;
  if (n.wireguardIp !== undefined)
    annotations["projectcalico.org/IPv4WireguardInterfaceAddr"] = n.wireguardIp;
  // Labels set through calicoctl live in this annotation (Calico overlays the Kubernetes labels on them).
  const calicoLabels: Record<string, string> = { "calico-rack": n.rack };
  if (n.isRouteReflector === true) {
    calicoLabels["route-reflector"] = "true";
    annotations["projectcalico.org/ASNumber"] = "64512";
    annotations["projectcalico.org/RouteReflectorClusterID"] = "244.0.0.1";
  }
  annotations["projectcalico.org/labels"] = JSON.stringify(calicoLabels);
  const spec: Obj = n.isControlPlane ? { ...CONTROL_PLANE_SPEC } : {};
  if (n.podCidr !== undefined) {
    spec.podCIDR = n.podCidr;
    spec.podCIDRs = [n.podCidr];
  }
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: n.name, labels, annotations },
    spec,
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

/** The floating IP the simulated cluster gives a pod IP of the pool (10.48.0.0/12 → 172.16.0.0/12). */
export function floatingIpFor(podIp: string): string {
  const [, b, c, d] = podIp.split(".").map(Number);
  return `172.${16 + (((b ?? 48) - 48) & 15)}.${c ?? 0}.${d ?? 0}`;
}

/**
 * The Calico-relevant annotations an application's pods carry, as operators set them (the conversion's
 * inputs: floating IPs, spoofable source prefixes, QoS, Multus' network status).
 */
export function appAnnotations(app: string, podIp: string | undefined): Record<string, string> {
  switch (app) {
    case "frontend":
      return podIp === undefined
        ? {}
        : { "cni.projectcalico.org/floatingIPs": JSON.stringify([floatingIpFor(podIp)]) };
    case "api":
      return {
        "kubernetes.io/ingress-bandwidth": "100M",
        "kubernetes.io/egress-bandwidth": "100M",
        "qos.projectcalico.org/egressBurst": "200M",
        "qos.projectcalico.org/egressPeakrate": "150M",
      };
    case "backend":
      return {
        "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
          { name: "k8s-pod-network", ips: podIp === undefined ? [] : [podIp], default: true, dns: {} },
        ]),
      };
    case "cache":
      return {
        "qos.projectcalico.org/ingressPacketRate": "1000",
        "qos.projectcalico.org/ingressPacketBurst": "50",
        "qos.projectcalico.org/ingressMaxConnections": "1k",
        "qos.projectcalico.org/dscp": "AF21",
      };
    case "worker":
      return { "cni.projectcalico.org/allowedSourcePrefixes": '["192.168.100.0/24"]' };
    default:
      return {};
  }
}

/** A pod's annotations with its (new) IP: the CNI plugin's and those that follow the IP (floating IPs). */
export function withPodIp(
  annotations: Readonly<Record<string, string>>,
  podIp: string,
  containerId: string,
): Record<string, string> {
  const out: Record<string, string> = {
    ...annotations,
    "cni.projectcalico.org/podIP": `${podIp}/32`,
    "cni.projectcalico.org/podIPs": `${podIp}/32`,
    "cni.projectcalico.org/containerID": containerId,
  };
  if (out["cni.projectcalico.org/floatingIPs"] !== undefined) {
    out["cni.projectcalico.org/floatingIPs"] = JSON.stringify([floatingIpFor(podIp)]);
  }
  if (out["k8s.v1.cni.cncf.io/network-status"] !== undefined) {
    out["k8s.v1.cni.cncf.io/network-status"] = JSON.stringify([
      { name: "k8s-pod-network", ips: [podIp], default: true, dns: {} },
    ]);
  }
  return out;
}

export function podObject(p: PodSpec, annotations: Record<string, string> = {}): Obj {
  const isReady = p.phase === "Running";
  let podAnnotations: Record<string, string> = {
    ...(p.isHostNetwork ? {} : appAnnotations(p.app, p.podIp)),
    ...annotations,
  };
  if (p.podIp !== undefined && !p.isHostNetwork) {
    podAnnotations = withPodIp(podAnnotations, p.podIp, p.containerId);
  }
  const ownerKind = p.phase === "Succeeded" ? "Job" : p.isHostNetwork ? "DaemonSet" : "ReplicaSet";
  const ownerName = ownerKind === "ReplicaSet" ? `${p.app}-${p.templateHash}` : p.app;
  // The pod's controller names it: generateName + a random suffix.
  const generateName = p.name.slice(0, p.name.lastIndexOf("-") + 1);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: p.name,
      ...(generateName === "" ? {} : { generateName }),
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

/**
 * The seed's ClusterNetworkPolicies (sigs.k8s.io/network-policy-api): an Admin one and a Baseline one that
 * between them carry every subject, peer, protocol and action form Calico converts.
 */
export function clusterNetworkPolicies(): Obj[] {
  const cnp = (name: string, spec: Obj): Obj => ({
    apiVersion: "policy.networking.k8s.io/v1alpha2",
    kind: "ClusterNetworkPolicy",
    metadata: { name },
    spec,
  });
  const monitoring = { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } };
  return [
    cnp("admin-guard", {
      tier: "Admin",
      priority: 10,
      subject: { namespaces: {} },
      ingress: [
        {
          name: "pass-monitoring",
          action: "Pass",
          from: [{ namespaces: monitoring }],
          protocols: [{ destinationNamedPort: "metrics" }],
        },
      ],
      egress: [
        {
          name: "deny-blocklist",
          action: "Deny",
          to: [{ networks: ["198.51.100.0/24", "2001:db8:dead::/48"] }],
        },
        {
          name: "accept-dns",
          action: "Accept",
          to: [
            {
              pods: {
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
                podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
              },
            },
          ],
          protocols: [
            { udp: { destinationPort: { number: 53 } } },
            { tcp: { destinationPort: { number: 53 } } },
          ],
        },
      ],
    }),
    cnp("baseline-privileged-ports", {
      tier: "Baseline",
      priority: 50,
      subject: {
        pods: {
          namespaceSelector: {
            matchExpressions: [
              { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system"] },
            ],
          },
          podSelector: {},
        },
      },
      ingress: [
        {
          action: "Deny",
          from: [{ namespaces: {} }],
          protocols: [
            { tcp: { destinationPort: { range: { start: 1, end: 1023 } } } },
            { sctp: { destinationPort: { number: 9000 } } },
          ],
        },
      ],
    }),
  ];
}

export function denyAllIngressPolicy(namespace: string): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "default-deny-ingress", namespace },
    spec: { podSelector: {}, policyTypes: ["Ingress"] },
  };
}

/**
 * The ingress policy of an application. Each application's policy uses other peer and port forms, so that
 * the seed carries every form Calico converts: numbered, named and ranged (`endPort`) ports, pod and
 * namespace selectors (alone and together, with matchExpressions), and ipBlocks with exceptions.
 */
export function allowAppPolicy(namespace: string, app: string, port: number): Obj {
  const monitoring = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } };
  let ingress: Obj[];
  switch (app) {
    case "frontend":
      // Open to the world except the cluster's own ranges, on the named port.
      ingress = [
        {
          from: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "172.16.0.0/12"] } }],
          ports: [{ protocol: "TCP", port: "http" }],
        },
      ];
      break;
    case "api":
      ingress = [
        {
          from: [
            {
              namespaceSelector: {
                matchExpressions: [{ key: "env", operator: "In", values: ["prod", "staging"] }],
              },
              podSelector: { matchLabels: { tier: "frontend" } },
            },
          ],
          ports: [
            { protocol: "TCP", port },
            { protocol: "TCP", port: port + 1 },
            { protocol: "UDP", port: 9095 },
          ],
        },
      ];
      break;
    case "backend":
      ingress = [
        {
          from: [{ podSelector: { matchLabels: { tier: "frontend" } } }, monitoring],
          ports: [{ protocol: "TCP", port, endPort: port + 99 }],
        },
      ];
      break;
    default:
      ingress = [
        {
          from: [{ podSelector: { matchExpressions: [{ key: "tier", operator: "Exists" }] } }, monitoring],
          ports: [{ protocol: "TCP", port }],
        },
      ];
  }
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: `allow-${app}`, namespace, labels: { app } },
    spec: { podSelector: { matchLabels: { app } }, policyTypes: ["Ingress"], ingress },
  };
}

/** The egress policy of a namespace: DNS to kube-dns, HTTPS out of the cluster (ipBlock with exceptions). */
export function egressPolicy(namespace: string): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "allow-egress", namespace },
    spec: {
      podSelector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["db"] }] },
      policyTypes: ["Egress"],
      egress: [
        {
          to: [
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
              podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
            },
          ],
          ports: [
            { protocol: "UDP", port: 53 },
            { protocol: "TCP", port: 53 },
          ],
        },
        {
          to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "169.254.169.254/32"] } }],
          ports: [{ port: 443 }],
        },
      ],
    },
  };
}

/**
 * A policy written without policyTypes (Calico reads it as ingress only), letting every namespace scrape
 * metrics (an empty namespace selector: all namespaces) and pods without a tier label reach everything.
 */
export function metricsPolicy(namespace: string): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "allow-metrics", namespace },
    spec: {
      podSelector: {},
      ingress: [
        { from: [{ namespaceSelector: {} }], ports: [{ protocol: "TCP", port: "metrics" }] },
        { from: [{ podSelector: { matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] } }] },
      ],
    },
  };
}

/** A pod name as a ReplicaSet makes them. */
export function podName(rng: Prng, app: string, templateHash: string): string {
  return `${app}-${templateHash}-${rng.suffix(5)}`;
}
