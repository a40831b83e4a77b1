/**
 * A valid object for every upstream resource the datastore watches, valid against kube-apiserver 1.20 and
 * the Calico CRDs for 1.20, plus a modification per resource that changes the converted Calico value.
 * `gen` (a small integer) varies the content between creations and modifications.
 */

type Body = Record<string, unknown>;

export interface ResourceFixture {
  /** `<plural>` for the core group, `<plural>.<group>` otherwise (ids of these fixtures only). */
  readonly id: string;
  readonly group: string;
  /** The version served by kube-apiserver 1.20 (EndpointSlice: v1beta1). */
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** The body to create `name` (in `namespace` when namespaced). */
  make(name: string, namespace: string | undefined, gen: number): Body;
  /** A JSON merge patch that changes what the object converts to. */
  patch(gen: number): Body;
  /** A status to write through the `/status` subresource after creating (pods: IPs; node status). */
  status?(name: string, gen: number): Body;
  /** The status is rewritten on every modification too (pod IPs are not: they are set once). */
  readonly isStatusModified?: boolean;
}

const CALICO = "crd.projectcalico.org";
const genLabels = (gen: number): Record<string, string> => ({ "tabby.dev/gen": String(gen) });

function calico(
  kind: string,
  plural: string,
  namespaced: boolean,
  spec: (gen: number, name: string) => Body,
  status?: (name: string, gen: number) => Body,
): ResourceFixture {
  return {
    id: `${plural}.${CALICO}`,
    group: CALICO,
    version: "v1",
    plural,
    kind,
    namespaced,
    make: (name, namespace, gen) => ({
      apiVersion: `${CALICO}/v1`,
      kind,
      metadata: {
        name,
        ...(namespace === undefined ? {} : { namespace }),
        labels: genLabels(gen),
        annotations: { "projectcalico.org/metadata": `{"gen":${gen}}`, "example.com/dropped": "x" },
      },
      spec: spec(gen, name),
    }),
    patch: (gen) => ({ metadata: { labels: genLabels(gen) }, spec: spec(gen, "") }),
    ...(status === undefined ? {} : { status, isStatusModified: true }),
  };
}

const node = (gen: number): string => `node-${gen % 3}`;
const octet = (gen: number): number => gen % 250;

/** Every Calico CRD kind (22). */
export const CALICO_FIXTURES: readonly ResourceFixture[] = [
  calico("IPPool", "ippools", false, (g) => ({
    cidr: `10.${octet(g)}.0.0/16`,
    blockSize: 26,
    ipipMode: g % 2 === 0 ? "Always" : "Never",
    vxlanMode: "Never",
    natOutgoing: true,
    nodeSelector: "all()",
  })),
  calico("IPReservation", "ipreservations", false, (g) => ({ reservedCIDRs: [`10.1.${octet(g)}.0/24`] })),
  calico("BGPConfiguration", "bgpconfigurations", false, (g) => ({
    asNumber: 64512 + g,
    nodeToNodeMeshEnabled: g % 2 === 0,
  })),
  calico("BGPPeer", "bgppeers", false, (g) => ({ peerIP: `192.168.0.${octet(g) + 1}`, asNumber: 64600 + g })),
  calico("BGPFilter", "bgpfilters", false, (g) => ({
    exportV4: [{ action: "Accept", matchOperator: "In", cidr: `10.${octet(g)}.0.0/16` }],
  })),
  calico("FelixConfiguration", "felixconfigurations", false, (g) => ({
    ipipMTU: 1400 + g,
    bpfEnabled: false,
  })),
  calico("ClusterInformation", "clusterinformations", false, (g) => ({
    calicoVersion: `v3.${g}.0`,
    clusterType: "k8s,bgp",
    datastoreReady: true,
  })),
  calico("GlobalNetworkPolicy", "globalnetworkpolicies", false, (g) => ({
    order: g,
    selector: `app == 'g${g}'`,
    types: ["Ingress"],
    ingress: [{ action: "Allow", source: { selector: "all()" } }],
  })),
  calico("StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies", false, (g) => ({
    stagedAction: "Set",
    order: g,
    selector: `app == 's${g}'`,
    types: ["Egress"],
    egress: [{ action: "Deny" }],
  })),
  calico("GlobalNetworkSet", "globalnetworksets", false, (g) => ({ nets: [`192.168.${octet(g)}.0/24`] })),
  calico("NetworkPolicy", "networkpolicies", true, (g) => ({
    order: 100 + g,
    selector: `role == 'r${g}'`,
    types: ["Ingress"],
    ingress: [{ action: "Allow" }],
  })),
  calico("StagedNetworkPolicy", "stagednetworkpolicies", true, (g) => ({
    stagedAction: "Set",
    order: 200 + g,
    selector: "all()",
    types: ["Ingress"],
    ingress: [{ action: "Pass" }],
  })),
  calico("StagedKubernetesNetworkPolicy", "stagedkubernetesnetworkpolicies", true, (g) => ({
    stagedAction: "Set",
    podSelector: { matchLabels: { app: `k${g}` } },
    policyTypes: ["Ingress"],
  })),
  calico("NetworkSet", "networksets", true, (g) => ({ nets: [`172.16.${octet(g)}.0/24`] })),
  calico("Tier", "tiers", false, (g) => ({ order: 1000 + g })),
  calico("HostEndpoint", "hostendpoints", false, (g) => ({
    node: node(g),
    interfaceName: "eth0",
    expectedIPs: [`10.240.0.${octet(g) + 1}`],
  })),
  calico("KubeControllersConfiguration", "kubecontrollersconfigurations", false, (g) => ({
    controllers: { namespace: { reconcilerPeriod: `${g + 1}m` } },
  })),
  calico(
    "CalicoNodeStatus",
    "caliconodestatuses",
    false,
    (g) => ({ node: node(g), classes: ["Agent", "BGP"], updatePeriodSeconds: 10 + g }),
    (_name, g) => ({ status: { agent: { birdV4: { state: g % 2 === 0 ? "Ready" : "NotReady" } } } }),
  ),
  calico("IPAMBlock", "ipamblocks", false, (g) => ({
    cidr: `10.${octet(g)}.0.0/26`,
    affinity: `host:${node(g)}`,
    allocations: [0, null, 1],
    attributes: [{ handle_id: `h-${g}`, secondary: { node: node(g) } }],
    strictAffinity: false,
    unallocated: [3, 4],
  })),
  calico("BlockAffinity", "blockaffinities", false, (g) => ({
    cidr: `10.${octet(g)}.0.0/26`,
    deleted: "false",
    node: node(g),
    state: "confirmed",
  })),
  calico("IPAMConfig", "ipamconfigs", false, (g) => ({
    autoAllocateBlocks: true,
    strictAffinity: g % 2 === 0,
    maxBlocksPerHost: g + 1,
  })),
  calico("IPAMHandle", "ipamhandles", false, (g) => ({
    handleID: `h-${g}`,
    block: { "10-0-0-0-26": g + 1 },
  })),
];

/** The core Kubernetes resources tabby converts (6). */
export const KUBERNETES_FIXTURES: readonly ResourceFixture[] = [
  {
    id: "namespaces",
    group: "",
    version: "v1",
    plural: "namespaces",
    kind: "Namespace",
    namespaced: false,
    make: (name, _ns, gen) => ({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name, labels: genLabels(gen) },
    }),
    patch: (gen) => ({ metadata: { labels: genLabels(gen) } }),
  },
  {
    id: "serviceaccounts",
    group: "",
    version: "v1",
    plural: "serviceaccounts",
    kind: "ServiceAccount",
    namespaced: true,
    make: (name, namespace, gen) => ({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name, namespace, labels: genLabels(gen) },
    }),
    patch: (gen) => ({ metadata: { labels: genLabels(gen) } }),
  },
  {
    id: "nodes",
    group: "",
    version: "v1",
    plural: "nodes",
    kind: "Node",
    namespaced: false,
    make: (name, _ns, gen) => ({
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name,
        labels: { ...genLabels(gen), "kubernetes.io/hostname": name },
        annotations: {
          "projectcalico.org/IPv4Address": `10.240.0.${octet(gen) + 1}/24`,
          "projectcalico.org/ASNumber": String(64512 + gen),
          "projectcalico.org/IPv4IPIPTunnelAddr": `10.${octet(gen)}.0.1`,
        },
      },
      spec: { podCIDR: `10.${octet(gen)}.0.0/24` },
      status: { addresses: [{ type: "InternalIP", address: `10.240.0.${octet(gen) + 1}` }] },
    }),
    patch: (gen) => ({
      metadata: {
        labels: genLabels(gen),
        annotations: { "projectcalico.org/IPv4Address": `10.240.1.${octet(gen) + 1}/24` },
      },
    }),
  },
  {
    id: "pods",
    group: "",
    version: "v1",
    plural: "pods",
    kind: "Pod",
    namespaced: true,
    make: (name, namespace, gen) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace,
        labels: { ...genLabels(gen), app: `app-${gen % 4}` },
        annotations: { "cni.projectcalico.org/containerID": `c-${gen}` },
      },
      spec: {
        nodeName: node(gen),
        serviceAccountName: "workers",
        automountServiceAccountToken: false,
        containers: [
          { name: "main", image: "registry.invalid/app:1", ports: [{ name: "http", containerPort: 8080 }] },
        ],
      },
    }),
    patch: (gen) => ({ metadata: { labels: { ...genLabels(gen), app: `app-${gen % 4}` } } }),
    status: (_name, gen) => ({
      status: {
        phase: "Running",
        podIP: `10.${octet(gen)}.0.${(gen % 200) + 2}`,
        podIPs: [{ ip: `10.${octet(gen)}.0.${(gen % 200) + 2}` }],
      },
    }),
  },
  {
    id: "networkpolicies.networking.k8s.io",
    group: "networking.k8s.io",
    version: "v1",
    plural: "networkpolicies",
    kind: "NetworkPolicy",
    namespaced: true,
    make: (name, namespace, gen) => ({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name, namespace, labels: genLabels(gen) },
      spec: {
        podSelector: { matchLabels: { app: `app-${gen}` } },
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 8000 + gen, protocol: "TCP" }] }],
      },
    }),
    patch: (gen) => ({ spec: { podSelector: { matchLabels: { app: `app-${gen}` } } } }),
  },
  {
    id: "services",
    group: "",
    version: "v1",
    plural: "services",
    kind: "Service",
    namespaced: true,
    make: (name, namespace, gen) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace, labels: genLabels(gen) },
      spec: {
        selector: { app: `app-${gen % 4}` },
        ports: [{ name: "http", port: 80 + gen, targetPort: 8080 }],
      },
    }),
    patch: (gen) => ({ spec: { ports: [{ name: "http", port: 80 + gen, targetPort: 8080 }] } }),
  },
  {
    id: "endpointslices.discovery.k8s.io",
    group: "discovery.k8s.io",
    version: "v1beta1",
    plural: "endpointslices",
    kind: "EndpointSlice",
    namespaced: true,
    make: (name, namespace, gen) => ({
      apiVersion: "discovery.k8s.io/v1beta1",
      kind: "EndpointSlice",
      metadata: { name, namespace, labels: { ...genLabels(gen), "kubernetes.io/service-name": "web" } },
      addressType: "IPv4",
      endpoints: [
        {
          addresses: [`10.${octet(gen)}.0.${(gen % 200) + 2}`],
          conditions: { ready: true },
          topology: { "kubernetes.io/hostname": node(gen) },
        },
      ],
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    }),
    patch: (gen) => ({
      endpoints: [
        { addresses: [`10.${octet(gen)}.1.${(gen % 200) + 2}`], conditions: { ready: gen % 2 === 0 } },
      ],
    }),
  },
];

/** sigs.k8s.io/network-policy-api's kind (its CRD: harness/calico-crds.ts). */
const NETWORK_POLICY_API = "policy.networking.k8s.io";
const CLUSTER_NETWORK_POLICY_FIXTURE: ResourceFixture = {
  id: `clusternetworkpolicies.${NETWORK_POLICY_API}`,
  group: NETWORK_POLICY_API,
  version: "v1alpha2",
  plural: "clusternetworkpolicies",
  kind: "ClusterNetworkPolicy",
  namespaced: false,
  make: (name, _namespace, gen) => ({
    apiVersion: `${NETWORK_POLICY_API}/v1alpha2`,
    kind: "ClusterNetworkPolicy",
    metadata: { name, labels: genLabels(gen) },
    spec: {
      tier: "Admin",
      priority: gen % 1000,
      subject: { namespaces: { matchLabels: { team: `t-${gen}` } } },
      ingress: [
        {
          action: "Accept",
          from: [{ namespaces: {} }],
          protocols: [{ tcp: { destinationPort: { number: 8000 + gen } } }],
        },
      ],
    },
  }),
  patch: (gen) => ({ spec: { priority: gen % 1000 } }),
};

export const ALL_FIXTURES: readonly ResourceFixture[] = [
  ...CALICO_FIXTURES,
  ...KUBERNETES_FIXTURES,
  CLUSTER_NETWORK_POLICY_FIXTURE,
];

/** The collection path of a fixture's resource. */
export function collectionPath(f: ResourceFixture, namespace: string | undefined): string {
  const prefix = f.group === "" ? `/api/${f.version}` : `/apis/${f.group}/${f.version}`;
  return f.namespaced
    ? `${prefix}/namespaces/${namespace ?? "default"}/${f.plural}`
    : `${prefix}/${f.plural}`;
}

/** The path of one object. */
export function objectPath(f: ResourceFixture, name: string, namespace: string | undefined): string {
  return `${collectionPath(f, namespace)}/${name}`;
}

/** Where kube-apiserver 1.20 stores an object in etcd (Nodes live under `minions`). */
export function etcdKey(f: ResourceFixture, name: string, namespace: string | undefined): string {
  // Custom resources live under their group.
  const base =
    f.group === CALICO || f.group === NETWORK_POLICY_API
      ? `/registry/${f.group}/${f.plural}`
      : f.plural === "nodes"
        ? "/registry/minions"
        : f.plural === "services"
          ? "/registry/services/specs"
          : `/registry/${f.plural}`;
  return f.namespaced ? `${base}/${namespace ?? "default"}/${name}` : `${base}/${name}`;
}
