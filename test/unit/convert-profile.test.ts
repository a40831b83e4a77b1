import { describe, expect, it } from "vitest";
import { convert, createResources, staticEntries } from "../../src/server/datastore/index.js";
import type { KubeObject } from "../../src/server/datastore/index.js";

const namespace: KubeObject = {
  apiVersion: "v1",
  kind: "Namespace",
  metadata: {
    name: "payments",
    uid: "0b6f3a5e-6a43-4d4e-a5c9-0d7d3f4e1b22",
    resourceVersion: "1200",
    creationTimestamp: "2024-04-01T09:00:00Z",
    labels: { "kubernetes.io/metadata.name": "payments", team: "billing" },
    annotations: {
      "kubectl.kubernetes.io/last-applied-configuration": "{}",
      "tabby.dev/changed-at": "1714557600123",
    },
    managedFields: [{ manager: "kubectl" }],
  },
  spec: { finalizers: ["kubernetes"] },
  status: { phase: "Active" },
};

const serviceAccount: KubeObject = {
  apiVersion: "v1",
  kind: "ServiceAccount",
  metadata: {
    name: "api",
    namespace: "payments",
    uid: "7c1d2e3f-1111-4a2b-8c3d-4e5f60718293",
    resourceVersion: "1301",
    creationTimestamp: "2024-04-01T09:01:00Z",
    labels: { role: "frontend" },
    managedFields: [{ manager: "kubectl" }],
  },
  secrets: [{ name: "api-token-x" }],
};

const cases: { name: string; resource: string; obj: KubeObject; want: unknown }[] = [
  {
    name: "Namespace → Profile/kns.<ns> with pcns. labels and allow-all rules",
    resource: "namespaces",
    obj: namespace,
    want: {
      key: "Profile/kns.payments",
      value: {
        kind: "Profile",
        apiVersion: "projectcalico.org/v3",
        metadata: {
          name: "kns.payments",
          // Calico's ConvertUID of the namespace's uid: bits of each byte reversed, bytes 6 and 8 kept.
          uid: "d0f65c7a-56c2-4d72-a593-b0befc72d844",
          resourceVersion: "1200",
          creationTimestamp: "2024-04-01T09:00:00Z",
          annotations: { "tabby.dev/changed-at": "1714557600123" },
        },
        spec: {
          ingress: [{ action: "Allow" }],
          egress: [{ action: "Allow" }],
          labelsToApply: {
            "pcns.kubernetes.io/metadata.name": "payments",
            "pcns.team": "billing",
            "pcns.projectcalico.org/name": "payments",
          },
        },
      },
    },
  },
  {
    name: "ServiceAccount → Profile/ksa.<ns>.<sa> with pcsa. labels",
    resource: "serviceaccounts",
    obj: serviceAccount,
    want: {
      key: "Profile/ksa.payments.api",
      value: {
        kind: "Profile",
        apiVersion: "projectcalico.org/v3",
        metadata: {
          name: "ksa.payments.api",
          uid: "3eb874fc-8888-4ad4-8cbc-72fa068e41c9",
          resourceVersion: "1301",
          creationTimestamp: "2024-04-01T09:01:00Z",
        },
        spec: { labelsToApply: { "pcsa.role": "frontend", "pcsa.projectcalico.org/name": "api" } },
      },
    },
  },
  {
    name: "a namespace without labels still gets the name label",
    resource: "namespaces",
    obj: { metadata: { name: "empty", uid: "30316465-6365-4463-ad63-3564622d3638", resourceVersion: "1" } },
    want: {
      key: "Profile/kns.empty",
      value: {
        kind: "Profile",
        apiVersion: "projectcalico.org/v3",
        // libcalico-go's own ConvertUID test vector.
        metadata: { name: "kns.empty", uid: "0c8c26a6-c6a6-44c6-adc6-ac2646b46c1c", resourceVersion: "1" },
        spec: {
          ingress: [{ action: "Allow" }],
          egress: [{ action: "Allow" }],
          labelsToApply: { "pcns.projectcalico.org/name": "empty" },
        },
      },
    },
  },
  {
    name: "a service account without a namespace is named in `default`, as Calico names it",
    resource: "serviceaccounts",
    obj: { metadata: { name: "x", uid: "30316465-6365-4463-ad63-3564622d3638", resourceVersion: "2" } },
    want: {
      key: "Profile/ksa.default.x",
      value: {
        kind: "Profile",
        apiVersion: "projectcalico.org/v3",
        metadata: {
          name: "ksa.default.x",
          uid: "0c8c26a6-c6a6-44c6-adc6-ac2646b46c1c",
          resourceVersion: "2",
        },
        spec: { labelsToApply: { "pcsa.projectcalico.org/name": "x" } },
      },
    },
  },
  {
    name: "a namespace whose uid is not a UUID is rejected (Calico's ConvertUID fails)",
    resource: "namespaces",
    obj: { metadata: { name: "odd", uid: "not-a-uid", resourceVersion: "1" } },
    want: {
      key: "Profile/kns.odd",
      value: null,
      rejected: { code: "ERR_CONVERT_REJECTED", reason: 'uid "not-a-uid" is not a UUID' },
    },
  },
];

describe("Namespace and ServiceAccount → Profile", () => {
  it.each(cases)("$name", ({ resource, obj, want }) => {
    expect(convert(resource, obj)).toEqual(want);
  });
});

// lib/resources/static.go DefaultAllowProfile, which resources/profile.go's List adds to every list of
// profiles: Felix gets it through Typha, and host endpoints name it to allow traffic without policy.
describe("Calico's static default-allow profile", () => {
  it("is served as Profile/projectcalico-default-allow whenever Profiles are", () => {
    expect(staticEntries(createResources())).toEqual([
      {
        key: "Profile/projectcalico-default-allow",
        value: {
          kind: "Profile",
          apiVersion: "projectcalico.org/v3",
          metadata: { name: "projectcalico-default-allow", resourceVersion: "1" },
          spec: { ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }] },
        },
      },
    ]);
    const withoutProfiles = createResources().filter((r) => !r.kinds.includes("Profile"));
    expect(staticEntries(withoutProfiles)).toEqual([]);
  });
});
