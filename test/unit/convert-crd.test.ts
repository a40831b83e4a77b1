import { describe, expect, it } from "vitest";
import { convert } from "../../src/server/datastore/index.js";
import type { KubeObject } from "../../src/server/datastore/index.js";

function crd(kind: string, name: string, spec: object, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: "crd.projectcalico.org/v1",
    kind,
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: "777",
      generation: 2,
      creationTimestamp: "2024-04-03T10:00:00Z",
      annotations: {
        "projectcalico.org/metadata": '{"creationTimestamp":null}',
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "example.com/other": "dropped",
        "tabby.dev/changed-at": "1714557600777",
      },
      managedFields: [{ manager: "calicoctl" }],
      ...((extra.metadata as object | undefined) ?? {}),
    },
    spec,
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== "metadata")),
  };
}

const keptAnnotations = {
  "projectcalico.org/metadata": '{"creationTimestamp":null}',
  "tabby.dev/changed-at": "1714557600777",
};

function want(kind: string, name: string, spec: object, extra: { namespace?: string; status?: object } = {}) {
  return {
    kind,
    apiVersion: "projectcalico.org/v3",
    metadata: {
      name,
      ...(extra.namespace === undefined ? {} : { namespace: extra.namespace }),
      uid: `uid-${name}`,
      resourceVersion: "777",
      creationTimestamp: "2024-04-03T10:00:00Z",
      annotations: keptAnnotations,
    },
    spec,
    ...(extra.status === undefined ? {} : { status: extra.status }),
  };
}

const ippoolSpec = {
  cidr: "10.244.0.0/16",
  blockSize: 26,
  ipipMode: "Never",
  vxlanMode: "CrossSubnet",
  natOutgoing: true,
  nodeSelector: "all()",
};
const gnpSpec = {
  tier: "default",
  order: 100,
  selector: "role == 'db'",
  types: ["Ingress"],
  ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [5432] } }],
};
const npSpec = {
  tier: "default",
  selector: "app == 'api'",
  types: ["Egress"],
  egress: [{ action: "Allow" }],
};
const blockSpec = {
  cidr: "10.244.1.0/26",
  affinity: "host:worker-1",
  allocations: [0, null],
  unallocated: [1],
  attributes: [{ handle_id: "k8s-pod-network.abc" }],
  strictAffinity: false,
};
const cnsSpec = { node: "worker-1", classes: ["Agent", "BGP"], updatePeriodSeconds: 10 };
const cnsStatus = { agent: { birdV4: { state: "Ready" } }, bgp: { numberEstablishedV4: 2 } };

const cases: { name: string; resource: string; obj: KubeObject; want: unknown }[] = [
  {
    name: "IPPool (cluster-scoped)",
    resource: "ippools",
    obj: crd("IPPool", "default-ipv4-ippool", ippoolSpec),
    want: { key: "IPPool/default-ipv4-ippool", value: want("IPPool", "default-ipv4-ippool", ippoolSpec) },
  },
  {
    name: "GlobalNetworkPolicy",
    resource: "globalnetworkpolicies",
    obj: crd("GlobalNetworkPolicy", "default.db-ingress", gnpSpec),
    want: {
      key: "GlobalNetworkPolicy/default.db-ingress",
      value: want("GlobalNetworkPolicy", "default.db-ingress", gnpSpec),
    },
  },
  {
    name: "Calico NetworkPolicy (namespaced, named by plural.group)",
    resource: "networkpolicies.crd.projectcalico.org",
    obj: crd("NetworkPolicy", "default.api-egress", npSpec, { metadata: { namespace: "payments" } }),
    want: {
      key: "NetworkPolicy/payments/default.api-egress",
      value: want("NetworkPolicy", "default.api-egress", npSpec, { namespace: "payments" }),
    },
  },
  {
    name: "IPAMBlock (status-less, big spec kept whole)",
    resource: "ipamblocks",
    obj: crd("IPAMBlock", "10-244-1-0-26", blockSpec),
    want: { key: "IPAMBlock/10-244-1-0-26", value: want("IPAMBlock", "10-244-1-0-26", blockSpec) },
  },
  {
    name: "CalicoNodeStatus keeps its status",
    resource: "caliconodestatuses",
    obj: crd("CalicoNodeStatus", "worker-1", cnsSpec, { status: cnsStatus }),
    want: {
      key: "CalicoNodeStatus/worker-1",
      value: want("CalicoNodeStatus", "worker-1", cnsSpec, { status: cnsStatus }),
    },
  },
  {
    name: "any other kind drops its status",
    resource: "bgppeers",
    obj: crd("BGPPeer", "rr-1", { peerIP: "172.18.0.10", asNumber: 64512 }, { status: { x: 1 } }),
    want: { key: "BGPPeer/rr-1", value: want("BGPPeer", "rr-1", { peerIP: "172.18.0.10", asNumber: 64512 }) },
  },
  {
    name: "a CR without spec gets an empty spec",
    resource: "clusterinformations",
    obj: { metadata: { name: "default", uid: "u", resourceVersion: "1" } },
    want: {
      key: "ClusterInformation/default",
      value: {
        kind: "ClusterInformation",
        apiVersion: "projectcalico.org/v3",
        metadata: { name: "default", uid: "u", resourceVersion: "1" },
        spec: {},
      },
    },
  },
  {
    name: "a namespaced CR without namespace is ignored",
    resource: "networksets",
    obj: crd("NetworkSet", "x", {}),
    want: null,
  },
];

describe("Calico CRDs → Kind/name, trimmed", () => {
  it.each(cases)("$name", ({ resource, obj, want }) => {
    expect(convert(resource, obj)).toEqual(want);
  });

  it("throws RangeError for an unknown resource", () => {
    expect(() => convert("widgets", { metadata: { name: "x" } })).toThrow(RangeError);
  });
});
