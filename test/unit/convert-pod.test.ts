import { describe, expect, it } from "vitest";
import { convert, vethNameForPod } from "../../src/server/datastore/index.js";
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

const KEY = "WorkloadEndpoint/default/nginx-7c5ddbdf54-x2xkq";

describe("Pod → WorkloadEndpoint", () => {
  it("converts a running pod the way Calico's Kubernetes datastore does", () => {
    const out = convert("pods", runningPod());
    expect(out).toEqual({
      key: KEY,
      value: {
        kind: "WorkloadEndpoint",
        apiVersion: "projectcalico.org/v3",
        metadata: {
          name: "nginx-7c5ddbdf54-x2xkq",
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
          pod: "nginx-7c5ddbdf54-x2xkq",
          endpoint: "eth0",
          interfaceName: "calic9b4546c172",
          containerID: "3f1c9e0d7a",
          serviceAccountName: "default",
          profiles: ["kns.default", "ksa.default.default"],
          ipNetworks: ["10.244.1.17/32", "fd00:10:244:1::11/128"],
          ports: [
            { name: "http", protocol: "tcp", port: 80 },
            { name: "metrics", protocol: "udp", port: 9113, hostPort: 19113, hostIP: "0.0.0.0" },
            { name: "dns", protocol: "tcp", port: 53 },
          ],
        },
      },
    });
  });

  it("names the host-side veth cali + 11 hex chars of sha1(<ns>.<pod>)", () => {
    expect(vethNameForPod("default", "nginx-7c5ddbdf54-x2xkq")).toBe("calic9b4546c172");
    expect(vethNameForPod("kube-system", "coredns-5d78c9869d-abcde")).toBe("cali4d5f75c480c");
  });

  // IP sources, in Calico's order of preference.
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
      name: "the podIP annotation last",
      status: { podIP: undefined, podIPs: undefined },
      annotations: { "cni.projectcalico.org/podIP": "10.0.0.4/32" },
      want: ["10.0.0.4/32"],
    },
    {
      name: "malformed entries are dropped",
      status: { podIP: undefined, podIPs: [{ ip: "not-an-ip" }, { ip: "10.0.0.5" }] },
      annotations: {},
      want: ["10.0.0.5/32"],
    },
  ];
  it.each(ipCases)("takes IPs from $name", ({ status, annotations, want }) => {
    const out = convert("pods", runningPod({ status, metadata: { annotations } }));
    expect(out?.value).not.toBeNull();
    expect((out?.value?.spec as { ipNetworks: string[] }).ipNetworks).toEqual(want);
  });

  // Pods that must produce no endpoint: the key comes back with a null value (delete it if held).
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
    { name: "an unscheduled pod", pod: runningPod({ spec: { nodeName: undefined } }) },
    {
      name: "a terminating pod whose IP Calico's CNI released",
      pod: runningPod({
        metadata: {
          deletionTimestamp: "2024-05-01T11:00:00Z",
          annotations: { "cni.projectcalico.org/podIP": "" },
        },
      }),
    },
  ];
  it.each(noEndpoint)("gives no endpoint for $name", ({ pod }) => {
    expect(convert("pods", pod)).toEqual({ key: KEY, value: null });
  });

  it("still converts a terminating pod that keeps its IP", () => {
    const out = convert("pods", runningPod({ metadata: { deletionTimestamp: "2024-05-01T11:00:00Z" } }));
    expect(out?.value?.kind).toBe("WorkloadEndpoint");
  });

  it("omits the service account profile and label without a service account", () => {
    const out = convert("pods", runningPod({ spec: { serviceAccountName: undefined } }));
    const value = out?.value as { metadata: { labels: object }; spec: { profiles: string[] } };
    expect(value.spec.profiles).toEqual(["kns.default"]);
    expect(value.metadata.labels).not.toHaveProperty("projectcalico.org/serviceaccount");
  });

  it("ignores a pod without a name", () => {
    expect(convert("pods", { metadata: { namespace: "default" } })).toBeNull();
  });
});
