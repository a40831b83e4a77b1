import { describe, expect, it } from "vitest";
import { convert, createResources, resourceId, vethNameForPod } from "../../src/server/datastore/index.js";
import type { KubeObject } from "../../src/server/datastore/index.js";

/** A pod as `kubectl get pod -o json` shows it, trimmed of nothing. */
function runningPod(overrides: { metadata?: object; spec?: object; status?: object } = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "nginx-7c5ddbdf54-x2xkq",
      generateName: "nginx-7c5ddbdf54-",
      namespace: "default",
      uid: "5a0f6c1e-2f5b-4c1d-9d47-3b1e8f3c2a11",
      resourceVersion: "48213",
      creationTimestamp: "2024-05-01T10:00:00Z",
      labels: { app: "nginx", "pod-template-hash": "7c5ddbdf54" },
      annotations: {
        "cni.projectcalico.org/containerID": "3f1c9e0d7a",
        "cni.projectcalico.org/podIP": "10.244.1.17/32",
        "cni.projectcalico.org/podIPs": "10.244.1.17/32",
        "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v1"}',
        "tabby.dev/changed-at": "1714557600000",
      },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "nginx-7c5ddbdf54", uid: "x" }],
      managedFields: [{ manager: "kube-controller-manager", operation: "Update", apiVersion: "v1" }],
      ...overrides.metadata,
    },
    spec: {
      nodeName: "worker-1",
      serviceAccountName: "default",
      containers: [
        {
          name: "nginx",
          image: "nginx:1.25",
          ports: [
            { name: "http", containerPort: 80, protocol: "TCP" },
            { name: "metrics", containerPort: 9113, protocol: "UDP", hostPort: 19113, hostIP: "0.0.0.0" },
            { containerPort: 8443, protocol: "TCP" },
            { name: "quic", containerPort: 443, protocol: "SCTP" },
            { name: "weird", containerPort: 7, protocol: "ICMP" },
          ],
        },
      ],
      initContainers: [{ name: "init", image: "busybox", ports: [{ name: "dns", containerPort: 53 }] }],
      ...overrides.spec,
    },
    status: {
      phase: "Running",
      podIP: "10.244.1.17",
      podIPs: [{ ip: "10.244.1.17" }, { ip: "fd00:10:244:1::11" }],
      conditions: [{ type: "Ready", status: "True" }],
      ...overrides.status,
    },
  };
}

/** Calico's name: `<node>-k8s-<pod>-eth0`, every dash of node and pod doubled. */
const WEP_NAME = "worker--1-k8s-nginx--7c5ddbdf54--x2xkq-eth0";
const KEY = `WorkloadEndpoint/default/${WEP_NAME}`;

function specOf(pod: KubeObject): Record<string, unknown> {
  const out = convert("pods", pod);
  expect(out?.value, JSON.stringify(out)).toBeTruthy();
  return out?.value?.spec as Record<string, unknown>;
}

function withAnnotations(annotations: Record<string, string>): KubeObject {
  return runningPod({ metadata: { annotations } });
}

describe("Pod → WorkloadEndpoint", () => {
  it("converts a running pod the way Calico's Kubernetes datastore does", () => {
    const out = convert("pods", runningPod());
    expect(out).toEqual({
      key: KEY,
      value: {
        kind: "WorkloadEndpoint",
        apiVersion: "projectcalico.org/v3",
        metadata: {
          name: WEP_NAME,
          generateName: "nginx-7c5ddbdf54-",
          namespace: "default",
          uid: "5a0f6c1e-2f5b-4c1d-9d47-3b1e8f3c2a11",
          resourceVersion: "48213",
          creationTimestamp: "2024-05-01T10:00:00Z",
          labels: {
            app: "nginx",
            "pod-template-hash": "7c5ddbdf54",
            "projectcalico.org/namespace": "default",
            "projectcalico.org/orchestrator": "k8s",
            "projectcalico.org/serviceaccount": "default",
          },
          annotations: { "tabby.dev/changed-at": "1714557600000" },
        },
        spec: {
          orchestrator: "k8s",
          node: "worker-1",
          containerID: "3f1c9e0d7a",
          pod: "nginx-7c5ddbdf54-x2xkq",
          endpoint: "eth0",
          serviceAccountName: "default",
          ipNetworks: ["10.244.1.17/32", "fd00:10:244:1::11/128"],
          profiles: ["kns.default", "ksa.default.default"],
          interfaceName: "calic9b4546c172",
          // Calico: named or host-mapped ports only, protocol via ProtocolFromString (TCP/UDP/SCTP),
          // hostPort and hostIP always written, unknown protocols skipped, init containers after.
          ports: [
            { name: "http", protocol: "TCP", port: 80, hostPort: 0, hostIP: "" },
            { name: "metrics", protocol: "UDP", port: 9113, hostPort: 19113, hostIP: "0.0.0.0" },
            { name: "quic", protocol: "SCTP", port: 443, hostPort: 0, hostIP: "" },
            { name: "dns", protocol: "TCP", port: 53, hostPort: 0, hostIP: "" },
          ],
        },
      },
    });
  });

  it("escapes dashes in the WorkloadEndpoint name and refuses a name part that starts or ends with one", () => {
    const pod = runningPod({ spec: { nodeName: "node-a-1" }, metadata: { name: "web-0" } });
    expect(convert("pods", pod)?.key).toBe("WorkloadEndpoint/default/node--a--1-k8s-web--0-eth0");
    const bad = convert("pods", runningPod({ spec: { nodeName: "-edge" } }));
    expect(bad).toMatchObject({ key: null, value: null, rejected: { code: "ERR_CONVERT_REJECTED" } });
  });

  it("names the host-side veth <prefix> + 11 hex chars of sha1(<ns>.<pod>), the prefix configurable", () => {
    expect(vethNameForPod("default", "nginx-7c5ddbdf54-x2xkq")).toBe("calic9b4546c172");
    expect(vethNameForPod("kube-system", "coredns-5d78c9869d-abcde")).toBe("cali4d5f75c480c");
    // Felix's FELIX_INTERFACEPREFIX may be a list: the first entry names the veth.
    expect(vethNameForPod("default", "nginx-7c5ddbdf54-x2xkq", "tap,cali")).toBe("tapc9b4546c172");
    const pods = createResources({ interfacePrefix: "azv" }).find((r) => resourceId(r) === "pods");
    expect((pods?.convert(runningPod())?.value?.spec as { interfaceName: string }).interfaceName).toBe(
      "azvc9b4546c172",
    );
  });

  // IP sources, in Calico's order of preference (conversion.getPodIPs).
  const ipCases: { name: string; status: object; annotations: object; want: string[] }[] = [
    {
      name: "status.podIPs wins",
      status: { podIP: "10.0.0.1", podIPs: [{ ip: "10.0.0.1" }, { ip: "fd00::1" }] },
      annotations: { "cni.projectcalico.org/podIPs": "10.9.9.9/32" },
      want: ["10.0.0.1/32", "fd00::1/128"],
    },
    {
      name: "status.podIP when podIPs is absent",
      status: { podIP: "10.0.0.2", podIPs: undefined },
      annotations: {},
      want: ["10.0.0.2/32"],
    },
    {
      name: "the podIPs annotation when status has none",
      status: { podIP: undefined, podIPs: undefined },
      annotations: { "cni.projectcalico.org/podIPs": "10.0.0.3/32,fd00::3/128" },
      want: ["10.0.0.3/32", "fd00::3/128"],
    },
    {
      name: "the podIP annotation next",
      status: { podIP: undefined, podIPs: undefined },
      annotations: { "cni.projectcalico.org/podIP": "10.0.0.4/32" },
      want: ["10.0.0.4/32"],
    },
    {
      name: "the AWS VPC CNI annotation last",
      status: { podIP: undefined, podIPs: undefined },
      annotations: { "vpc.amazonaws.com/pod-ips": "10.0.0.6,2600:1f18::6" },
      want: ["10.0.0.6/32", "2600:1f18::6/128"],
    },
    {
      name: "a CIDR, kept masked as Go prints it",
      status: { podIP: undefined, podIPs: undefined },
      annotations: { "cni.projectcalico.org/podIPs": "10.0.0.7/24,FD00:0:0:0:0:0:0:7/64" },
      want: ["10.0.0.0/24", "fd00::/64"],
    },
  ];
  it.each(ipCases)("takes IPs from $name", ({ status, annotations, want }) => {
    expect(specOf(runningPod({ status, metadata: { annotations } })).ipNetworks).toEqual(want);
  });

  it("maps floating IPs to the pod IP of the same family (ipNATs)", () => {
    const spec = specOf(
      withAnnotations({ "cni.projectcalico.org/floatingIPs": '["1.1.1.1", "2001:db8::1", "1.1.1.2"]' }),
    );
    expect(spec.ipNATs).toEqual([
      { internalIP: "10.244.1.17", externalIP: "1.1.1.1" },
      { internalIP: "fd00:10:244:1::11", externalIP: "2001:db8::1" },
      { internalIP: "10.244.1.17", externalIP: "1.1.1.2" },
    ]);
    // A family the pod lacks is skipped.
    const v4only = runningPod({
      status: { podIPs: [{ ip: "10.0.0.9" }] },
      metadata: { annotations: { "cni.projectcalico.org/floatingIPs": '["2001:db8::1"]' } },
    });
    expect(specOf(v4only)).not.toHaveProperty("ipNATs");
  });

  it("normalises allowed source prefixes to masked CIDRs (allowSpoofedSourcePrefixes)", () => {
    const spec = specOf(
      withAnnotations({ "cni.projectcalico.org/allowedSourcePrefixes": '["10.1.2.3/16", "2001:db8::7/48"]' }),
    );
    expect(spec.allowSpoofedSourcePrefixes).toEqual(["10.1.0.0/16", "2001:db8::/48"]);
    expect(specOf(withAnnotations({ "cni.projectcalico.org/allowedSourcePrefixes": "" }))).not.toHaveProperty(
      "allowSpoofedSourcePrefixes",
    );
  });

  // Calico refuses these pods (PodToWorkloadEndpoints returns an error): no endpoint, a counted rejection.
  const rejected: { name: string; pod: KubeObject }[] = [
    {
      name: "a malformed pod IP",
      pod: runningPod({ status: { podIPs: [{ ip: "not-an-ip" }, { ip: "10.0.0.5" }] } }),
    },
    {
      name: "a malformed podIPs annotation",
      pod: runningPod({
        status: { podIP: undefined, podIPs: undefined },
        metadata: { annotations: { "cni.projectcalico.org/podIPs": "10.0.0.1/32,10.0.0.300" } },
      }),
    },
    {
      name: "floating IPs that are not JSON",
      pod: withAnnotations({ "cni.projectcalico.org/floatingIPs": "1.1.1.1" }),
    },
    {
      name: "floating IPs for a pod whose IP is a /24",
      pod: runningPod({
        status: { podIP: undefined, podIPs: undefined },
        metadata: {
          annotations: {
            "cni.projectcalico.org/podIP": "10.0.0.7/24",
            "cni.projectcalico.org/floatingIPs": '["1.1.1.1"]',
          },
        },
      }),
    },
    {
      name: "source prefixes that are not JSON",
      pod: withAnnotations({ "cni.projectcalico.org/allowedSourcePrefixes": "10.0.0.0/8" }),
    },
    {
      name: "a source prefix that is not a CIDR",
      pod: withAnnotations({ "cni.projectcalico.org/allowedSourcePrefixes": '["10.0.0.1"]' }),
    },
    {
      name: "an empty source prefix",
      pod: withAnnotations({ "cni.projectcalico.org/allowedSourcePrefixes": '[""]' }),
    },
  ];
  it.each(rejected)("rejects $name, as Calico does", ({ pod }) => {
    expect(convert("pods", pod)).toMatchObject({
      key: KEY,
      value: null,
      rejected: { code: "ERR_CONVERT_REJECTED", reason: expect.any(String) as string },
    });
  });

  it("reads the QoS annotations into qosControls with Calico's parsing, caps and defaults", () => {
    const spec = specOf(
      withAnnotations({
        "kubernetes.io/ingress-bandwidth": "10M",
        "qos.projectcalico.org/ingressBandwidth": "1M", // overrides the Kubernetes annotation
        "kubernetes.io/egress-bandwidth": "2M",
        "qos.projectcalico.org/ingressPeakrate": "5M",
        "qos.projectcalico.org/ingressMinburst": "1500",
        "qos.projectcalico.org/egressPacketRate": "100",
        "qos.projectcalico.org/ingressMaxConnections": "1.5k",
        "qos.projectcalico.org/dscp": "cs5",
      }),
    );
    expect(spec.qosControls).toEqual({
      ingressBandwidth: 1_000_000,
      ingressBurst: 4 * 1024 ** 3, // the default burst
      ingressPeakrate: 5_000_000,
      ingressMinburst: 1500,
      egressBandwidth: 2_000_000,
      egressBurst: 4 * 1024 ** 3,
      egressPacketRate: 100,
      egressPacketBurst: 5, // the default packet burst
      ingressMaxConnections: 1500,
      dscp: "CS5",
    });
    expect(specOf(runningPod())).not.toHaveProperty("qosControls");
  });

  it("keeps a pod whose QoS annotations are bad, as Calico only logs them", () => {
    const spec = specOf(
      withAnnotations({
        "qos.projectcalico.org/ingressBandwidth": "lots",
        "qos.projectcalico.org/dscp": "64",
      }),
    );
    expect(spec).not.toHaveProperty("qosControls");
  });

  it("copies Multus' network-status annotation, and no other", () => {
    const status = '[{"name":"k8s-pod-network","ips":["10.244.1.17"],"default":true}]';
    const out = convert(
      "pods",
      withAnnotations({ "k8s.v1.cni.cncf.io/network-status": status, "example.com/other": "x" }),
    );
    expect((out?.value?.metadata as { annotations: object }).annotations).toEqual({
      "k8s.v1.cni.cncf.io/network-status": status,
    });
  });

  // Pods that must produce no endpoint: the key comes back with a null value (delete it if held).
  // Calico keeps an address-less WorkloadEndpoint for these; Typha's felix syncer drops it, so tabby does.
  const noEndpoint: { name: string; pod: KubeObject }[] = [
    { name: "a host-network pod", pod: runningPod({ spec: { hostNetwork: true } }) },
    {
      name: "a pod with no IP yet",
      pod: runningPod({
        status: { phase: "Pending", podIP: undefined, podIPs: undefined },
        metadata: { annotations: {} },
      }),
    },
    { name: "a Succeeded pod", pod: runningPod({ status: { phase: "Succeeded" } }) },
    { name: "a Failed pod", pod: runningPod({ status: { phase: "Failed" } }) },
    { name: "a Completed pod", pod: runningPod({ status: { phase: "Completed" } }) },
    {
      name: "a terminating pod whose IP Calico's CNI released",
      pod: runningPod({
        metadata: {
          deletionTimestamp: "2024-05-01T11:00:00Z",
          annotations: { "cni.projectcalico.org/podIP": "" },
        },
      }),
    },
    {
      name: "a terminating pod whose IP the AWS VPC CNI released",
      pod: runningPod({
        metadata: {
          deletionTimestamp: "2024-05-01T11:00:00Z",
          annotations: { "vpc.amazonaws.com/pod-ips": "" },
        },
      }),
    },
  ];
  it.each(noEndpoint)("gives no endpoint for $name", ({ pod }) => {
    expect(convert("pods", pod)).toEqual({ key: KEY, value: null });
  });

  it("maps an unscheduled pod to nothing (its endpoint name needs the node)", () => {
    expect(convert("pods", runningPod({ spec: { nodeName: undefined } }))).toEqual({
      key: null,
      value: null,
    });
  });

  it("still converts a terminating pod that keeps its IP", () => {
    const out = convert("pods", runningPod({ metadata: { deletionTimestamp: "2024-05-01T11:00:00Z" } }));
    expect(out?.value?.kind).toBe("WorkloadEndpoint");
  });

  it("omits the service account profile and label without a service account, and the label past 62 chars", () => {
    const out = convert("pods", runningPod({ spec: { serviceAccountName: undefined } }));
    const value = out?.value as { metadata: { labels: object }; spec: { profiles: string[] } };
    expect(value.spec.profiles).toEqual(["kns.default"]);
    expect(value.metadata.labels).not.toHaveProperty("projectcalico.org/serviceaccount");
    const long = "a".repeat(63);
    const longOut = convert("pods", runningPod({ spec: { serviceAccountName: long } }));
    const lv = longOut?.value as { metadata: { labels: object }; spec: { profiles: string[] } };
    expect(lv.spec.profiles).toEqual(["kns.default", `ksa.default.${long}`]);
    expect(lv.metadata.labels).not.toHaveProperty("projectcalico.org/serviceaccount");
  });

  it("ignores a pod without a name", () => {
    expect(convert("pods", { metadata: { namespace: "default" } })).toBeNull();
  });
});
