import { BLOCK_ADDRESSES, POOL_CIDR, POOL_V6_CIDR, SERVICE_CIDR, blockCidr, cidrName } from "./ipam.js";
import type { Obj } from "./k8s-objects.js";

/** Builders of Calico custom resources (crd.projectcalico.org/v1), following the CRD schemas. */

const API = "crd.projectcalico.org/v1";

/**
 * A Calico CR built by this module, with the apiVersion the simulator serves its resource with (the
 * builders write crd.projectcalico.org/v1; a simulator in projectcalico.org/v3 mode serves the same kinds
 * there). Other objects are returned as they are.
 */
export function servedAs(obj: Obj, apiVersionOf: () => string): Obj {
  return obj.apiVersion === API ? { ...obj, apiVersion: apiVersionOf() } : obj;
}

function cr(kind: string, name: string, spec: Obj, extra: Obj = {}): Obj {
  const { namespace, labels, ...rest } = extra as { namespace?: string; labels?: Record<string, string> };
  const metadata: Obj = { name };
  if (namespace !== undefined) metadata.namespace = namespace;
  if (labels !== undefined) metadata.labels = labels;
  return { apiVersion: API, kind, metadata, spec, ...rest };
}

export function ipPools(): Obj[] {
  return [
    cr("IPPool", "default-ipv4-ippool", {
      cidr: POOL_CIDR,
      blockSize: 26,
      ipipMode: "CrossSubnet",
      vxlanMode: "Never",
      natOutgoing: true,
      nodeSelector: "all()",
      allowedUses: ["Workload", "Tunnel"],
      assignmentMode: "Automatic",
    }),
    cr("IPPool", "default-ipv6-ippool", {
      cidr: POOL_V6_CIDR,
      blockSize: 122,
      ipipMode: "Never",
      vxlanMode: "Never",
      natOutgoing: false,
      nodeSelector: "all()",
      allowedUses: ["Workload"],
    }),
    cr("IPPool", "loadbalancer-ippool", {
      cidr: "10.200.0.0/24",
      blockSize: 29,
      ipipMode: "Never",
      vxlanMode: "Never",
      natOutgoing: false,
      disabled: false,
      nodeSelector: "!all()",
      allowedUses: ["LoadBalancer"],
      assignmentMode: "Manual",
    }),
  ];
}

export function felixConfiguration(name: string, spec: Obj): Obj {
  return cr("FelixConfiguration", name, spec);
}

export function defaultFelixConfiguration(): Obj {
  return felixConfiguration("default", {
    logSeverityScreen: "Info",
    reportingInterval: "0s",
    bpfEnabled: false,
    ipipEnabled: true,
    vxlanEnabled: false,
    wireguardEnabled: true,
    prometheusMetricsEnabled: true,
    healthEnabled: true,
    floatingIPs: "Disabled",
  });
}

export function clusterInformation(guid: string): Obj {
  return cr("ClusterInformation", "default", {
    calicoVersion: "v3.29.1",
    clusterGUID: guid,
    clusterType: "k8s,bgp,kubeadm,kdd,typha",
    datastoreReady: true,
  });
}

export function tiers(): Obj[] {
  return [
    cr("Tier", "security", { order: 100, defaultAction: "Deny" }),
    cr("Tier", "platform", { order: 200, defaultAction: "Pass" }),
    cr("Tier", "default", { order: 1_000_000, defaultAction: "Deny" }),
    // The tiers calico-node creates for ClusterNetworkPolicies (clientv3 ensureTierExists).
    cr("Tier", "kube-admin", { order: 1_000, defaultAction: "Pass" }),
    cr("Tier", "kube-baseline", { order: 10_000_000, defaultAction: "Pass" }),
  ];
}

export function globalNetworkPolicies(): Obj[] {
  return [
    cr("GlobalNetworkPolicy", "allow-dns-egress", {
      tier: "default",
      order: 100,
      selector: "all()",
      types: ["Egress"],
      egress: [
        { action: "Allow", protocol: "UDP", destination: { selector: 'k8s-app == "kube-dns"', ports: [53] } },
      ],
    }),
    cr("GlobalNetworkPolicy", "security.block-blocklists", {
      tier: "security",
      order: 10,
      selector: "all()",
      types: ["Ingress", "Egress"],
      ingress: [{ action: "Deny", source: { selector: 'role == "blocklist"' } }, { action: "Pass" }],
      egress: [{ action: "Deny", destination: { selector: 'role == "blocklist"' } }, { action: "Pass" }],
    }),
    cr("GlobalNetworkPolicy", "platform.allow-monitoring", {
      tier: "platform",
      order: 20,
      selector: "all()",
      namespaceSelector: "",
      types: ["Ingress"],
      ingress: [
        {
          action: "Allow",
          protocol: "TCP",
          source: { namespaceSelector: 'kubernetes.io/metadata.name == "monitoring"' },
          destination: { ports: [9090] },
        },
        { action: "Pass" },
      ],
    }),
    cr("GlobalNetworkPolicy", "platform.host-ingress", {
      tier: "platform",
      order: 30,
      selector: 'role == "ingress"',
      types: ["Ingress"],
      applyOnForward: false,
      preDNAT: false,
      ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80, 443] } }, { action: "Pass" }],
    }),
  ];
}

export function stagedPolicies(namespace: string): Obj[] {
  return [
    cr("StagedGlobalNetworkPolicy", "default.staged-deny-egress", {
      stagedAction: "Set",
      tier: "default",
      order: 500,
      selector: "all()",
      types: ["Egress"],
      egress: [{ action: "Deny", destination: { nets: ["198.51.100.0/24"] } }],
    }),
    cr(
      "StagedNetworkPolicy",
      "default.staged-allow-frontend",
      {
        stagedAction: "Set",
        tier: "default",
        order: 50,
        selector: 'tier == "backend"',
        types: ["Ingress"],
        ingress: [{ action: "Allow", source: { selector: 'tier == "frontend"' } }],
      },
      { namespace },
    ),
    cr(
      "StagedKubernetesNetworkPolicy",
      "staged-deny-all",
      { stagedAction: "Set", podSelector: {}, policyTypes: ["Ingress"] },
      { namespace },
    ),
  ];
}

export function calicoNetworkPolicy(namespace: string, name: string, order: number, port: number): Obj {
  return cr(
    "NetworkPolicy",
    name,
    {
      tier: "default",
      order,
      selector: 'tier == "backend"',
      types: ["Ingress"],
      ingress: [
        {
          action: "Allow",
          protocol: "TCP",
          source: { selector: 'tier == "frontend"' },
          destination: { ports: [port] },
        },
      ],
    },
    { namespace },
  );
}

export function globalNetworkSet(name: string, nets: string[]): Obj {
  return cr("GlobalNetworkSet", name, { nets }, { labels: { role: "blocklist" } });
}

export function networkSet(namespace: string, name: string, nets: string[]): Obj {
  return cr("NetworkSet", name, { nets }, { namespace, labels: { role: "partners" } });
}

export function hostEndpoint(node: string, ip: string): Obj {
  return cr(
    "HostEndpoint",
    `${node}-eth0`,
    {
      node,
      interfaceName: "eth0",
      expectedIPs: [ip],
      profiles: ["projectcalico-default-allow"],
      ports: [{ name: "https", port: 443, protocol: "TCP" }],
    },
    { labels: { role: "ingress", "kubernetes.io/hostname": node } },
  );
}

export function bgpConfiguration(isMeshEnabled: boolean): Obj {
  return cr("BGPConfiguration", "default", {
    logSeverityScreen: "Info",
    nodeToNodeMeshEnabled: isMeshEnabled,
    asNumber: 64512,
    serviceClusterIPs: [{ cidr: SERVICE_CIDR }],
    listenPort: 179,
  });
}

export function bgpPeer(rack: string, peerIp: string, asNumber: number): Obj {
  return cr("BGPPeer", `${rack}-tor`, {
    peerIP: peerIp,
    asNumber,
    nodeSelector: `rack == "${rack}"`,
    keepOriginalNextHop: false,
  });
}

export function bgpFilter(): Obj {
  return cr("BGPFilter", "export-pod-routes", {
    exportV4: [{ action: "Accept", matchOperator: "In", cidr: POOL_CIDR }],
    importV4: [{ action: "Reject", matchOperator: "NotIn", cidr: "10.0.0.0/8" }],
  });
}

export interface BlockAllocation {
  readonly ordinal: number;
  readonly handleId: string;
  readonly secondary: Record<string, string>;
}

/** An IPAMBlock of the pool with the given allocations (affine to `node`). */
export function ipamBlock(
  index: number,
  node: string,
  allocs: readonly BlockAllocation[],
  claimTime: string,
): Obj {
  const cidr = blockCidr(index);
  const allocations: (number | null)[] = new Array<number | null>(BLOCK_ADDRESSES).fill(null);
  allocs.forEach((a, i) => (allocations[a.ordinal] = i));
  const unallocated: number[] = [];
  for (let o = 0; o < BLOCK_ADDRESSES; o++) if (allocations[o] === null) unallocated.push(o);
  return cr("IPAMBlock", cidrName(cidr), {
    cidr,
    affinity: `host:${node}`,
    affinityClaimTime: claimTime,
    strictAffinity: false,
    allocations,
    unallocated,
    attributes: allocs.map((a) => ({ handle_id: a.handleId, secondary: a.secondary })),
    sequenceNumber: allocs.length,
    sequenceNumberForAllocation: Object.fromEntries(allocs.map((a) => [String(a.ordinal), allocs.length])),
    deleted: false,
  });
}

export function blockAffinityName(node: string, index: number): string {
  return `${node}-${cidrName(blockCidr(index))}`;
}

export function blockAffinity(node: string, index: number): Obj {
  return cr("BlockAffinity", blockAffinityName(node, index), {
    cidr: blockCidr(index),
    node,
    state: "confirmed",
    deleted: "false",
    type: "host",
  });
}

export function ipamHandle(handleId: string, blockIndex: number): Obj {
  return cr("IPAMHandle", handleId.toLowerCase(), {
    handleID: handleId,
    block: { [blockCidr(blockIndex)]: 1 },
    deleted: false,
  });
}

export function ipamConfig(): Obj {
  return cr("IPAMConfig", "default", {
    strictAffinity: false,
    autoAllocateBlocks: true,
    maxBlocksPerHost: 0,
  });
}

export function ipReservation(): Obj {
  return cr("IPReservation", "reserved-gateways", { reservedCIDRs: ["10.48.0.1/32"] });
}

export function kubeControllersConfiguration(): Obj {
  return cr("KubeControllersConfiguration", "default", {
    logSeverityScreen: "Info",
    healthChecks: "Enabled",
    controllers: {
      node: { reconcilerPeriod: "5m", syncLabels: "Enabled", hostEndpoint: { autoCreate: "Disabled" } },
      policy: { reconcilerPeriod: "5m" },
      workloadEndpoint: { reconcilerPeriod: "5m" },
      serviceAccount: { reconcilerPeriod: "5m" },
      namespace: { reconcilerPeriod: "5m" },
    },
  });
}

export function calicoNodeStatus(node: string, nowIso: string): Obj {
  return cr(
    "CalicoNodeStatus",
    node,
    { node, classes: ["Agent", "BGP", "Routes"], updatePeriodSeconds: 10 },
    {
      status: {
        lastUpdated: nowIso,
        agent: {
          birdV4: {
            state: "Ready",
            version: "v0.3.3+2",
            routerID: "",
            lastBootTime: nowIso,
            lastReconfigurationTime: nowIso,
          },
        },
        bgp: {
          numberEstablishedV4: 1,
          numberNotEstablishedV4: 0,
          numberEstablishedV6: 0,
          numberNotEstablishedV6: 0,
          peersV4: [],
        },
        routes: { routesV4: [] },
      },
    },
  );
}
