import { describe, expect, it } from "vitest";
import { convert } from "../../src/server/datastore/index.js";
import type { KubeObject } from "../../src/server/datastore/index.js";

function node(
  annotations: Record<string, string>,
  extra: { labels?: Record<string, string> } = {},
): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: "worker-1",
      uid: "c0ffee00-1234-4abc-9def-000000000001",
      resourceVersion: "90210",
      creationTimestamp: "2024-03-01T08:00:00Z",
      labels: extra.labels ?? { "kubernetes.io/hostname": "worker-1", "kubernetes.io/os": "linux" },
      annotations: {
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        ...annotations,
      },
      managedFields: [{ manager: "kubelet" }],
    },
    spec: { podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"], providerID: "kind://worker-1" },
    status: {
      addresses: [
        { type: "InternalIP", address: "172.18.0.3" },
        { type: "Hostname", address: "worker-1" },
        { type: "ExternalIP", address: "203.0.113.7" },
      ],
      conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: "2024-05-01T10:00:00Z" }],
      nodeInfo: { kubeletVersion: "v1.30.0" },
    },
  };
}

const calico = {
  "projectcalico.org/IPv4Address": "172.18.0.3/16",
  "projectcalico.org/IPv6Address": "fc00:f853:ccd:e793::3/64",
  "projectcalico.org/ASNumber": "64512",
  "projectcalico.org/IPv4IPIPTunnelAddr": "10.244.1.1",
  "projectcalico.org/IPv4VXLANTunnelAddr": "10.244.1.2",
  "projectcalico.org/WireguardPublicKey": "jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY=",
  "tabby.dev/changed-at": "1714557600999",
};

const meta = {
  name: "worker-1",
  uid: "c0ffee00-1234-4abc-9def-000000000001",
  resourceVersion: "90210",
  creationTimestamp: "2024-03-01T08:00:00Z",
  labels: { "kubernetes.io/hostname": "worker-1", "kubernetes.io/os": "linux" },
};

const cases: { name: string; obj: KubeObject; want: unknown }[] = [
  {
    name: "a node with every Calico annotation",
    obj: node(calico),
    want: {
      key: "Node/worker-1",
      value: {
        kind: "Node",
        apiVersion: "projectcalico.org/v3",
        metadata: { ...meta, annotations: { "tabby.dev/changed-at": "1714557600999" } },
        spec: {
          bgp: {
            ipv4Address: "172.18.0.3/16",
            ipv6Address: "fc00:f853:ccd:e793::3/64",
            asNumber: 64512,
            ipv4IPIPTunnelAddr: "10.244.1.1",
          },
          ipv4VXLANTunnelAddr: "10.244.1.2",
          wireguardPublicKey: "jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY=",
          orchRefs: [{ nodeName: "worker-1", orchestrator: "k8s" }],
          addresses: [
            { address: "172.18.0.3/16", type: "CalicoNodeIP" },
            { address: "fc00:f853:ccd:e793::3/64", type: "CalicoNodeIP" },
            { address: "172.18.0.3", type: "InternalIP" },
            { address: "203.0.113.7", type: "ExternalIP" },
          ],
        },
      },
    },
  },
  {
    name: "a node Calico has not annotated yet",
    obj: node({}),
    want: {
      key: "Node/worker-1",
      value: {
        kind: "Node",
        apiVersion: "projectcalico.org/v3",
        metadata: meta,
        spec: {
          orchRefs: [{ nodeName: "worker-1", orchestrator: "k8s" }],
          addresses: [
            { address: "172.18.0.3", type: "InternalIP" },
            { address: "203.0.113.7", type: "ExternalIP" },
          ],
        },
      },
    },
  },
  {
    name: "a dotted AS number and malformed addresses",
    obj: node({
      "projectcalico.org/ASNumber": "1.10",
      "projectcalico.org/IPv4Address": "bogus",
      "projectcalico.org/IPv4VXLANTunnelAddr": "fd00::1",
    }),
    want: {
      key: "Node/worker-1",
      value: {
        kind: "Node",
        apiVersion: "projectcalico.org/v3",
        metadata: meta,
        spec: {
          bgp: { asNumber: 65546 },
          orchRefs: [{ nodeName: "worker-1", orchestrator: "k8s" }],
          addresses: [
            { address: "172.18.0.3", type: "InternalIP" },
            { address: "203.0.113.7", type: "ExternalIP" },
          ],
        },
      },
    },
  },
];

describe("Node → Node", () => {
  it.each(cases)("converts $name", ({ obj, want }) => {
    expect(convert("nodes", obj)).toEqual(want);
  });

  it("ignores status-only changes (heartbeats) and keeps labels", () => {
    const a = node(calico);
    const b = structuredClone(a) as { status: { conditions: { lastHeartbeatTime: string }[] } } & KubeObject;
    b.status.conditions[0]!.lastHeartbeatTime = "2024-05-01T10:05:00Z";
    expect(convert("nodes", b)).toEqual(convert("nodes", a));
  });
});
