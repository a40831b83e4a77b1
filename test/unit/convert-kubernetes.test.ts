import { describe, expect, it } from "vitest";
import { convert } from "../../src/server/datastore/index.js";
import type { KubeObject } from "../../src/server/datastore/index.js";

const managed = [{ manager: "kubectl-client-side-apply", operation: "Update" }];
const lastApplied = { "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"x"}' };

const serviceSpec = {
  type: "ClusterIP",
  selector: { app: "db" },
  clusterIP: "10.96.12.34",
  clusterIPs: ["10.96.12.34"],
  ipFamilies: ["IPv4"],
  ports: [{ name: "pg", protocol: "TCP", port: 5432, targetPort: 5432 }],
  sessionAffinity: "None",
};

const endpointsV1 = [
  {
    addresses: ["10.244.1.17"],
    conditions: { ready: true, serving: true, terminating: false },
    nodeName: "worker-1",
    zone: "zone-a",
    targetRef: { kind: "Pod", namespace: "payments", name: "db-0", uid: "p1" },
  },
];

const cases: { name: string; resource: string; obj: KubeObject; want: unknown }[] = [
  {
    name: "Service → KubernetesService (status dropped)",
    resource: "services",
    obj: {
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: "db",
        namespace: "payments",
        uid: "svc-1",
        resourceVersion: "610",
        creationTimestamp: "2024-04-02T10:00:00Z",
        labels: { app: "db" },
        annotations: lastApplied,
        managedFields: managed,
      },
      spec: serviceSpec,
      status: { loadBalancer: {} },
    },
    want: {
      key: "KubernetesService/payments/db",
      value: {
        kind: "KubernetesService",
        apiVersion: "projectcalico.org/v3",
        metadata: {
          name: "db",
          namespace: "payments",
          uid: "svc-1",
          resourceVersion: "610",
          creationTimestamp: "2024-04-02T10:00:00Z",
          labels: { app: "db" },
        },
        spec: serviceSpec,
      },
    },
  },
  {
    name: "EndpointSlice v1 → KubernetesEndpointSlice",
    resource: "endpointslices",
    obj: {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: "db-x7k2p",
        namespace: "payments",
        uid: "eps-1",
        resourceVersion: "711",
        generateName: "db-",
        labels: { "kubernetes.io/service-name": "db", "endpointslice.kubernetes.io/managed-by": "x" },
        ownerReferences: [{ kind: "Service", name: "db", uid: "svc-1" }],
        managedFields: managed,
      },
      addressType: "IPv4",
      endpoints: endpointsV1,
      ports: [{ name: "pg", protocol: "TCP", port: 5432 }],
    },
    want: {
      key: "KubernetesEndpointSlice/payments/db-x7k2p",
      value: {
        kind: "KubernetesEndpointSlice",
        apiVersion: "projectcalico.org/v3",
        metadata: {
          name: "db-x7k2p",
          namespace: "payments",
          uid: "eps-1",
          resourceVersion: "711",
          labels: { "kubernetes.io/service-name": "db", "endpointslice.kubernetes.io/managed-by": "x" },
        },
        spec: {
          addressType: "IPv4",
          endpoints: endpointsV1,
          ports: [{ name: "pg", protocol: "TCP", port: 5432 }],
        },
      },
    },
  },
  {
    name: "EndpointSlice v1beta1 (topology) → the v1 shape",
    resource: "endpointslices",
    obj: {
      apiVersion: "discovery.k8s.io/v1beta1",
      kind: "EndpointSlice",
      metadata: { name: "db-x7k2p", namespace: "payments", uid: "eps-1", resourceVersion: "711" },
      addressType: "IPv4",
      endpoints: [
        {
          addresses: ["10.244.1.17"],
          conditions: { ready: true },
          topology: { "kubernetes.io/hostname": "worker-1", "topology.kubernetes.io/zone": "zone-a" },
        },
      ],
    },
    want: {
      key: "KubernetesEndpointSlice/payments/db-x7k2p",
      value: {
        kind: "KubernetesEndpointSlice",
        apiVersion: "projectcalico.org/v3",
        metadata: { name: "db-x7k2p", namespace: "payments", uid: "eps-1", resourceVersion: "711" },
        spec: {
          addressType: "IPv4",
          endpoints: [
            { addresses: ["10.244.1.17"], conditions: { ready: true }, nodeName: "worker-1", zone: "zone-a" },
          ],
        },
      },
    },
  },
];

describe("Kubernetes Service, EndpointSlice", () => {
  it.each(cases)("$name", ({ resource, obj, want }) => {
    expect(convert(resource, obj)).toEqual(want);
  });

  it("does not share structure with the source object", () => {
    const obj = structuredClone(cases[0]!.obj) as { spec: { selector: { app: string } } };
    const out = convert("services", obj);
    obj.spec.selector.app = "changed";
    expect((out?.value?.spec as typeof serviceSpec).selector.app).toBe("db");
  });

  it("ignores objects without a namespace", () => {
    expect(convert("services", { metadata: { name: "db" }, spec: {} })).toBeNull();
  });
});
