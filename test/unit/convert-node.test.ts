import { describe, expect, it } from "vitest";
import { convert, createResources } from "../../src/server/datastore/index.js";
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
  "projectcalico.org/RouteReflectorClusterID": "224.0.0.1",
  "projectcalico.org/IPv4IPIPTunnelAddr": "10.244.1.1",
  "projectcalico.org/IPv4VXLANTunnelAddr": "10.244.1.2",
  "projectcalico.org/VXLANTunnelMACAddr": "66:d3:b4:4e:7a:01",
  "projectcalico.org/IPv6VXLANTunnelAddr": "fd00:10:244:1::2",
  "projectcalico.org/VXLANTunnelMACAddrV6": "66-d3-b4-4e-7a-02",
  "projectcalico.org/IPv4WireguardInterfaceAddr": "10.244.1.3",
  "projectcalico.org/IPv6WireguardInterfaceAddr": "fd00:10:244:1::3",
  "projectcalico.org/WireguardPublicKey": "jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY=",
  "projectcalico.org/WireguardPublicKeyV6": "mNk1Lk2CjYxJ4sIx3lH3Pj8JzqkT8Yw7jvCj9n0zZ1o=",
  "projectcalico.org/Interfaces":
    '[{"name":"eth0","addresses":["172.18.0.3","bogus","fc00:f853:ccd:e793::3"]}]',
  "projectcalico.org/labels": '{"rack":"r1","kubernetes.io/os":"shadowed"}',
  "projectcalico.org/annotations": '{"note":"from calicoctl"}',
  "tabby.dev/changed-at": "1714557600999",
};

const KUBE_LABELS = '{"kubernetes.io/hostname":"worker-1","kubernetes.io/os":"linux"}';
const meta = {
  name: "worker-1",
  uid: "c0ffee00-1234-4abc-9def-000000000001",
  resourceVersion: "90210",
  creationTimestamp: "2024-03-01T08:00:00Z",
  labels: { "kubernetes.io/hostname": "worker-1", "kubernetes.io/os": "linux" },
  annotations: { "projectcalico.org/kube-labels": KUBE_LABELS },
};
const orchRefs = [{ nodeName: "worker-1", orchestrator: "k8s" }];
const kubeAddresses = [
  { address: "172.18.0.3", type: "InternalIP" },
  { address: "203.0.113.7", type: "ExternalIP" },
];

const cases: { name: string; obj: KubeObject; want: unknown }[] = [
  {
    name: "a node with every Calico annotation",
    obj: node(calico),
    want: {
      key: "Node/worker-1",
      value: {
        kind: "Node",
        apiVersion: "projectcalico.org/v3",
        metadata: {
          ...meta,
          // Calico's labels annotation, overlaid by the Kubernetes labels.
          labels: { rack: "r1", "kubernetes.io/hostname": "worker-1", "kubernetes.io/os": "linux" },
          annotations: {
            note: "from calicoctl",
            "projectcalico.org/kube-labels": KUBE_LABELS,
            "tabby.dev/changed-at": "1714557600999",
          },
        },
        spec: {
          bgp: {
            asNumber: 64512,
            ipv4Address: "172.18.0.3/16",
            ipv6Address: "fc00:f853:ccd:e793::3/64",
            ipv4IPIPTunnelAddr: "10.244.1.1",
            routeReflectorClusterID: "224.0.0.1",
          },
          ipv4VXLANTunnelAddr: "10.244.1.2",
          vxlanTunnelMACAddr: "66:d3:b4:4e:7a:01",
          ipv6VXLANTunnelAddr: "fd00:10:244:1::2",
          vxlanTunnelMACAddrV6: "66-d3-b4-4e-7a-02",
          orchRefs,
          wireguard: { interfaceIPv4Address: "10.244.1.3", interfaceIPv6Address: "fd00:10:244:1::3" },
          addresses: [
            { address: "172.18.0.3/16", type: "CalicoNodeIP" },
            { address: "fc00:f853:ccd:e793::3/64", type: "CalicoNodeIP" },
            ...kubeAddresses,
          ],
          interfaces: [{ name: "eth0", addresses: ["172.18.0.3", "fc00:f853:ccd:e793::3"] }],
        },
        status: {
          wireguardPublicKey: "jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY=",
          wireguardPublicKeyV6: "mNk1Lk2CjYxJ4sIx3lH3Pj8JzqkT8Yw7jvCj9n0zZ1o=",
          podCIDRs: ["10.244.1.0/24"],
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
        spec: { orchRefs, addresses: kubeAddresses },
        status: { podCIDRs: ["10.244.1.0/24"] },
      },
    },
  },
  {
    name: "a dotted AS number and invalid annotations, each ignored as Calico ignores it",
    obj: node({
      "projectcalico.org/ASNumber": "1.10",
      "projectcalico.org/IPv4Address": "bogus",
      "projectcalico.org/IPv6Address": "10.0.0.1/8", // wrong family
      "projectcalico.org/IPv4VXLANTunnelAddr": "fd00::1",
      "projectcalico.org/IPv4IPIPTunnelAddr": "10.244.1.1/24", // not masked: not a network
      "projectcalico.org/VXLANTunnelMACAddr": "66:d3:b4",
      "projectcalico.org/RouteReflectorClusterID": "not-an-ip",
      "projectcalico.org/labels": "{not json",
      "projectcalico.org/Interfaces": "[broken",
    }),
    want: {
      key: "Node/worker-1",
      value: {
        kind: "Node",
        apiVersion: "projectcalico.org/v3",
        metadata: meta,
        spec: { bgp: { asNumber: 65546 }, orchRefs, addresses: kubeAddresses },
        status: { podCIDRs: ["10.244.1.0/24"] },
      },
    },
  },
];

describe("Node → Node", () => {
  it.each(cases)("converts $name", ({ obj, want }) => {
    expect(convert("nodes", obj)).toEqual(want);
  });

  it("keeps addresses as written, not normalised to a prefix length", () => {
    const out = convert("nodes", node({ "projectcalico.org/IPv4Address": "172.18.0.3" }));
    expect((out?.value?.spec as { bgp: object }).bgp).toEqual({ ipv4Address: "172.18.0.3" });
  });

  it("with host-local IPAM takes the tunnel address from the podCIDR (WireGuard too, given a key)", () => {
    const nodes = createResources({ usePodCidr: true }).find((r) => r.plural === "nodes");
    const out = nodes?.convert(
      node({
        "projectcalico.org/IPv4IPIPTunnelAddr": "10.9.9.9",
        "projectcalico.org/WireguardPublicKey": "jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY=",
      }),
    );
    const spec = out?.value?.spec as { bgp: object; wireguard: object };
    expect(spec.bgp).toEqual({ ipv4IPIPTunnelAddr: "10.244.1.1" });
    expect(spec.wireguard).toEqual({ interfaceIPv4Address: "10.244.1.1" });
    const bad = structuredClone(node({})) as KubeObject & { spec: { podCIDR: string } };
    bad.spec.podCIDR = "10.244.1.0";
    expect(nodes?.convert(bad)).toMatchObject({
      key: "Node/worker-1",
      value: null,
      rejected: { code: "ERR_CONVERT_REJECTED" },
    });
  });

  // resources/node.go K8sNodeToCalico and getStaticTunnelAddress: only with a podCIDR; its address part's
  // last byte + 1 (a byte: 255 wraps to 0); an IPv6 podCIDR gives no tunnel address and the annotations
  // are not read either; without a podCIDR the annotations are read as without host-local IPAM.
  it("host-local IPAM edge cases: IPv6 podCIDR, the last byte wrapping, no podCIDR, no WireGuard key", () => {
    const nodes = createResources({ usePodCidr: true }).find((r) => r.plural === "nodes")!;
    const withCidr = (podCIDR: string | undefined, annotations: Record<string, string>): KubeObject => {
      const n = structuredClone(node(annotations)) as KubeObject & { spec: { podCIDR?: string } };
      if (podCIDR === undefined) delete n.spec.podCIDR;
      else n.spec.podCIDR = podCIDR;
      return n;
    };
    const spec = (obj: KubeObject): { bgp?: object; wireguard?: object } =>
      nodes.convert(obj)?.value?.spec as { bgp?: object; wireguard?: object };
    const tunnels = {
      "projectcalico.org/IPv4IPIPTunnelAddr": "10.9.9.9",
      "projectcalico.org/IPv4WireguardInterfaceAddr": "10.9.9.8",
    };
    expect(spec(withCidr("fd00:10:244:1::/64", tunnels))).not.toHaveProperty("bgp");
    expect(spec(withCidr("fd00:10:244:1::/64", tunnels))).not.toHaveProperty("wireguard");
    expect(spec(withCidr("10.244.1.255/24", {})).bgp).toEqual({ ipv4IPIPTunnelAddr: "10.244.1.0" });
    expect(spec(withCidr("10.244.1.7/24", {})).bgp).toEqual({ ipv4IPIPTunnelAddr: "10.244.1.8" });
    expect(spec(withCidr(undefined, tunnels))).toMatchObject({
      bgp: { ipv4IPIPTunnelAddr: "10.9.9.9" },
      wireguard: { interfaceIPv4Address: "10.9.9.8" },
    });
    // No WireGuard key: no WireGuard address, and the annotation is not read.
    expect(spec(withCidr("10.244.1.0/24", tunnels))).not.toHaveProperty("wireguard");
  });

  it("writes kube-labels as Go's json.Marshal does: sorted keys, null without labels", () => {
    const out = convert("nodes", node({}, { labels: { b: "2", a: "1" } }));
    expect((out?.value?.metadata as { annotations: object }).annotations).toEqual({
      "projectcalico.org/kube-labels": '{"a":"1","b":"2"}',
    });
    const bare = structuredClone(node({})) as KubeObject & { metadata: { labels?: object } };
    delete bare.metadata.labels;
    const outBare = convert("nodes", bare);
    expect((outBare?.value?.metadata as { annotations: object }).annotations).toEqual({
      "projectcalico.org/kube-labels": "null",
    });
    expect(outBare?.value?.metadata).not.toHaveProperty("labels");
  });

  // resources.go SetCalicoMetadataFromK8sAnnotations and node.go fillAllInterfaces unmarshal with
  // encoding/json: null is the zero value, keys match struct fields case-insensitively, and any other type
  // mismatch fails the annotation (the node keeps no labels from it, or no interfaces).
  it("reads the labels and Interfaces annotations as Go's json.Unmarshal does", () => {
    const spec = (annotations: Record<string, string>): { interfaces?: unknown } =>
      convert("nodes", node(annotations))?.value?.spec as { interfaces?: unknown };
    const iface = (text: string): unknown => spec({ "projectcalico.org/Interfaces": text }).interfaces;
    expect(iface('[{"NAME":"eth0","Addresses":["10.0.0.1"]}]')).toEqual([
      { name: "eth0", addresses: ["10.0.0.1"] },
    ]);
    // ſ (U+017F) folds to s, as bytes.EqualFold has it; the last matching key wins.
    expect(iface('[{"addre\u017f\u017fes":["10.0.0.1"],"name":"a","Name":"b"}]')).toEqual([
      { name: "b", addresses: ["10.0.0.1"] },
    ]);
    expect(iface('[null,{"name":"eth1","addresses":[null,"10.0.0.2"]}]')).toEqual([
      {},
      { name: "eth1", addresses: ["10.0.0.2"] },
    ]);
    expect(iface('[{"name":"eth0","addresses":["10.0.0.1",7]}]')).toBeUndefined();
    expect(iface('[{"name":"eth0"},"eth1"]')).toBeUndefined();
    expect(iface("null")).toBeUndefined();

    const labels = (text: string): unknown =>
      convert("nodes", node({ "projectcalico.org/labels": text }, { labels: { k: "v" } }))?.value?.metadata;
    expect(labels('{"rack":null,"zone":"z1"}')).toMatchObject({ labels: { rack: "", zone: "z1", k: "v" } });
    expect((labels('{"rack":1,"zone":"z1"}') as { labels: object }).labels).toEqual({ k: "v" });
  });

  it('copies InternalIP and ExternalIP addresses unchecked, an absent one as ""', () => {
    const n = structuredClone(node({})) as KubeObject & { status: { addresses: object[] } };
    n.status.addresses = [{ type: "InternalIP" }, { type: "ExternalIP", address: "not-an-ip" }];
    expect((convert("nodes", n)?.value?.spec as { addresses: unknown }).addresses).toEqual([
      { address: "", type: "InternalIP" },
      { address: "not-an-ip", type: "ExternalIP" },
    ]);
  });

  it("leaves an empty status out (Calico's JSON has `status: {}`)", () => {
    const n = structuredClone(node({})) as KubeObject & { spec: { podCIDRs?: string[] } };
    delete n.spec.podCIDRs;
    expect(convert("nodes", n)?.value).not.toHaveProperty("status");
    expect(convert("nodes", node({}))?.value).toHaveProperty("status", { podCIDRs: ["10.244.1.0/24"] });
  });

  it("ignores status-only changes (heartbeats)", () => {
    const a = node(calico);
    const b = structuredClone(a) as { status: { conditions: { lastHeartbeatTime: string }[] } } & KubeObject;
    b.status.conditions[0]!.lastHeartbeatTime = "2024-05-01T10:05:00Z";
    expect(convert("nodes", b)).toEqual(convert("nodes", a));
  });
});
