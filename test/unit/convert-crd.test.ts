import { describe, expect, it } from "vitest";
import { convert } from "../../src/server/datastore/index.js";
import { calicoCrdKey, convertCalicoCrd } from "../../src/server/datastore/convert/crd.js";
import { convertUid } from "../../src/server/datastore/convert/names.js";
import { nodeOf } from "../../src/snapshot/kinds.js";
import type { KubeObject } from "../../src/server/datastore/index.js";

/** A stable UUID per name (the CR's uid). */
function uidOf(name: string): string {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const hex = h.toString(16).padStart(8, "0");
  return `${hex}-1111-4222-8333-444455556666`;
}

function crd(kind: string, name: string, spec: object, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: "crd.projectcalico.org/v1",
    kind,
    metadata: {
      name,
      uid: uidOf(name),
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

const keptAnnotations = { "tabby.dev/changed-at": "1714557600777" };

function want(
  kind: string,
  name: string,
  spec: object,
  extra: { namespace?: string; status?: object; crName?: string } = {},
) {
  return {
    kind,
    apiVersion: "projectcalico.org/v3",
    metadata: {
      name,
      ...(extra.namespace === undefined ? {} : { namespace: extra.namespace }),
      uid: convertUid(uidOf(extra.crName ?? name)),
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
    name: "GlobalNetworkPolicy (a default-tier CR loses its `default.` prefix)",
    resource: "globalnetworkpolicies",
    obj: crd("GlobalNetworkPolicy", "default.db-ingress", gnpSpec),
    want: {
      key: "GlobalNetworkPolicy/db-ingress",
      value: want("GlobalNetworkPolicy", "db-ingress", gnpSpec, { crName: "default.db-ingress" }),
    },
  },
  {
    name: "Calico NetworkPolicy (namespaced, named by plural.group)",
    resource: "networkpolicies.crd.projectcalico.org",
    obj: crd("NetworkPolicy", "default.api-egress", npSpec, { metadata: { namespace: "payments" } }),
    want: {
      key: "NetworkPolicy/payments/api-egress",
      value: want("NetworkPolicy", "api-egress", npSpec, {
        namespace: "payments",
        crName: "default.api-egress",
      }),
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
    obj: { metadata: { name: "default", uid: uidOf("default"), resourceVersion: "1" } },
    want: {
      key: "ClusterInformation/default",
      value: {
        kind: "ClusterInformation",
        apiVersion: "projectcalico.org/v3",
        metadata: { name: "default", uid: convertUid(uidOf("default")), resourceVersion: "1" },
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

// libcalico-go resources.ConvertK8sResourceToCalicoResource, which customResourceClient applies to every CR
// read from crd.projectcalico.org/v1 (and never to one from projectcalico.org/v3).
describe("v1 CRs: Calico's v3 metadata (ConvertK8sResourceToCalicoResource)", () => {
  const crUid = "0f3a5c7e-9b1d-4f2a-8c4e-6a8b0c2d4e6f";
  const packed = (meta: object): string => JSON.stringify(meta);

  it("never uses the CR's uid: derives it with ConvertUID; a v3 CR's uid is kept", () => {
    const obj = { metadata: { name: "pool", uid: crUid, resourceVersion: "3" }, spec: {} };
    expect(convertCalicoCrd("IPPool", false, obj)?.value).toMatchObject({
      metadata: { uid: convertUid(crUid) },
    });
    expect(convertCalicoCrd("IPPool", false, obj, "projectcalico.org/v3")?.value).toMatchObject({
      metadata: { uid: crUid },
    });
  });

  it("overlays the CR's labels and annotations with the packed ones, takes its creation timestamp, drops the annotation", () => {
    const obj = {
      metadata: {
        name: "pool",
        uid: crUid,
        resourceVersion: "3",
        creationTimestamp: "2026-01-01T00:00:00Z",
        labels: { "projectcalico.org/owned": "x", shared: "cr" },
        annotations: {
          [`projectcalico.org/metadata`]: packed({
            creationTimestamp: "2025-06-01T12:00:00Z",
            labels: { shared: "v3", team: "net" },
            annotations: {
              "example.com/note": "kept: a v3 annotation",
              "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
          }),
          "projectcalico.org/kept": "ours",
        },
      },
      spec: { cidr: "10.0.0.0/16" },
    };
    expect(convertCalicoCrd("IPPool", false, obj)?.value).toEqual({
      kind: "IPPool",
      apiVersion: "projectcalico.org/v3",
      metadata: {
        name: "pool",
        uid: convertUid(crUid),
        resourceVersion: "3",
        creationTimestamp: "2025-06-01T12:00:00Z",
        labels: { "projectcalico.org/owned": "x", shared: "v3", team: "net" },
        annotations: { "projectcalico.org/kept": "ours", "example.com/note": "kept: a v3 annotation" },
      },
      spec: { cidr: "10.0.0.0/16" },
    });
  });

  it("names a policy by the packed name, else strips `default.` in the default tier only (determinePolicyName)", () => {
    const policy = (name: string, tier: string | undefined, meta?: object): KubeObject => ({
      metadata: {
        name,
        namespace: "ns1",
        uid: crUid,
        ...(meta === undefined ? {} : { annotations: { "projectcalico.org/metadata": packed(meta) } }),
      },
      spec: tier === undefined ? {} : { tier },
    });
    const keyOf = (
      kind: "NetworkPolicy" | "GlobalNetworkPolicy",
      obj: KubeObject,
    ): string | null | undefined => convertCalicoCrd(kind, kind === "NetworkPolicy", obj)?.key;
    expect(keyOf("NetworkPolicy", policy("default.web", "default"))).toBe("NetworkPolicy/ns1/web");
    expect(keyOf("NetworkPolicy", policy("default.web", undefined))).toBe("NetworkPolicy/ns1/web");
    expect(keyOf("NetworkPolicy", policy("security.web", "security"))).toBe("NetworkPolicy/ns1/security.web");
    expect(keyOf("NetworkPolicy", policy("default.web", "security"))).toBe("NetworkPolicy/ns1/default.web");
    expect(keyOf("NetworkPolicy", policy("default.web", "default", { name: "web-v3" }))).toBe(
      "NetworkPolicy/ns1/web-v3",
    );
    expect(keyOf("GlobalNetworkPolicy", policy("default.deny", "default"))).toBe("GlobalNetworkPolicy/deny");
    // Only the four policy kinds: any other CR keeps its name.
    const pool = { metadata: { name: "default.pool", uid: crUid }, spec: {} };
    expect(convertCalicoCrd("IPPool", false, pool)?.key).toBe("IPPool/default.pool");
    // From projectcalico.org/v3 the name is the resource's.
    expect(
      convertCalicoCrd("NetworkPolicy", true, policy("default.web", "default"), "projectcalico.org/v3")?.key,
    ).toBe("NetworkPolicy/ns1/default.web");
  });

  it("rejects a CR whose uid is no UUID or whose metadata annotation does not parse, under the key keyOf gives", () => {
    const bad: KubeObject[] = [
      { metadata: { name: "default.a", uid: "not-a-uuid" }, spec: { tier: "default" } },
      {
        metadata: { name: "default.b", uid: crUid, annotations: { "projectcalico.org/metadata": "{" } },
        spec: {},
      },
      {
        metadata: {
          name: "default.c",
          uid: crUid,
          annotations: { "projectcalico.org/metadata": '{"labels":{"a":1}}' },
        },
        spec: {},
      },
    ];
    for (const obj of bad) {
      const r = convertCalicoCrd("GlobalNetworkPolicy", false, obj);
      expect(r?.value).toBeNull();
      expect(r && "rejected" in r ? r.rejected?.code : undefined).toBe("ERR_CONVERT_REJECTED");
      expect(r?.key).toBe(calicoCrdKey("GlobalNetworkPolicy", false, obj));
    }
    expect(convertCalicoCrd("GlobalNetworkPolicy", false, bad[0]!)?.key).toBe("GlobalNetworkPolicy/a");
  });

  // json.Unmarshal into metav1.ObjectMeta: keys match fields case-insensitively, null is the zero value, a
  // type mismatch in any field fails it; metav1.Time parses RFC 3339 and marshals UTC seconds; the uid of a
  // Calico owner goes through ConvertUID (which fails for one that is no UUID).
  it("reads the packed metadata as json.Unmarshal into ObjectMeta does", () => {
    const withPacked = (meta: string): KubeObject => ({
      metadata: {
        name: "pool",
        uid: crUid,
        resourceVersion: "3",
        creationTimestamp: "2026-01-01T00:00:00Z",
        annotations: { "projectcalico.org/metadata": meta },
      },
      spec: {},
    });
    const metaOf = (meta: string): unknown =>
      convertCalicoCrd("IPPool", false, withPacked(meta))?.value?.metadata;
    expect(
      metaOf(
        '{"Name":"pool-v3","LABELS":{"a":"1"},"labels":{"b":null},"Annotations":{"n":"x"},' +
          '"creationTimestamp":"2025-06-01T12:00:00.123+02:00","generation":4,"finalizers":["f"],' +
          '"ownerReferences":[{"apiVersion":"v1","kind":"Pod","name":"p","uid":"not-a-uuid"},null],' +
          '"managedFields":[{"manager":"m","time":"2025-06-01T12:00:00Z","fieldsV1":{"f:spec":{}}}]}',
      ),
    ).toEqual({
      name: "pool-v3",
      uid: convertUid(crUid),
      resourceVersion: "3",
      creationTimestamp: "2025-06-01T10:00:00Z",
      labels: { a: "1", b: "" },
      annotations: { n: "x" },
    });
    // The zero time is "no timestamp": the CR's is used.
    expect(metaOf('{"creationTimestamp":"0001-01-01T00:00:00Z"}')).toMatchObject({
      creationTimestamp: "2026-01-01T00:00:00Z",
    });
    expect(metaOf('{"creationTimestamp":"2025-06-01T00:30:00-01:00"}')).toMatchObject({
      creationTimestamp: "2025-06-01T01:30:00Z",
    });
    for (const bad of [
      '{"creationTimestamp":"2025-06-01"}',
      '{"creationTimestamp":"2025-02-29T00:00:00Z"}',
      '{"creationTimestamp":5}',
      '{"generation":"4"}',
      '{"uid":7}',
      '{"finalizers":[1]}',
      '{"ownerReferences":{}}',
      '{"ownerReferences":[{"controller":"yes"}]}',
      '{"ownerReferences":[{"apiVersion":"crd.projectcalico.org/v1","kind":"IPPool","uid":"not-a-uuid"}]}',
      '{"ownerReferences":[{"APIVERSION":"projectcalico.org/v3","kind":"Tier","uid":""}]}',
      '{"managedFields":[{"time":"yesterday"}]}',
      '{"Labels":{"a":1}}',
    ]) {
      const r = convertCalicoCrd("IPPool", false, withPacked(bad));
      expect(r?.value, bad).toBeNull();
      expect(r && "rejected" in r ? r.rejected?.code : undefined, bad).toBe("ERR_CONVERT_REJECTED");
    }
  });

  it("gives a DELETED object the key its value had", () => {
    const obj = {
      metadata: {
        name: "default.x",
        uid: crUid,
        annotations: { "projectcalico.org/metadata": packed({ name: "y" }) },
      },
      spec: { tier: "default" },
    };
    expect(calicoCrdKey("GlobalNetworkPolicy", false, obj)).toBe("GlobalNetworkPolicy/y");
    expect(convertCalicoCrd("GlobalNetworkPolicy", false, obj)?.key).toBe("GlobalNetworkPolicy/y");
  });
});

// resources/tiers.go: the Tier client's versionconverter (tierDefaulter → lib/resources DefaultTierFields)
// runs for either API group.
describe("Tier defaults (DefaultTierFields)", () => {
  const uid = "0f3a5c7e-9b1d-4f2a-8c4e-6a8b0c2d4e6f";
  it("fills in order 1000000 and defaultAction Deny when absent, for either API group", () => {
    for (const group of ["crd.projectcalico.org/v1", "projectcalico.org/v3"] as const) {
      const bare = convertCalicoCrd("Tier", false, { metadata: { name: "t", uid }, spec: {} }, group);
      expect(bare?.value?.spec).toEqual({ order: 1_000_000, defaultAction: "Deny" });
      const nulls = { metadata: { name: "t", uid }, spec: { order: null, defaultAction: null } };
      expect(convertCalicoCrd("Tier", false, nulls, group)?.value?.spec).toEqual({
        order: 1_000_000,
        defaultAction: "Deny",
      });
      const set = { metadata: { name: "t", uid }, spec: { order: 100, defaultAction: "Pass" } };
      expect(convertCalicoCrd("Tier", false, set, group)?.value?.spec).toEqual({
        order: 100,
        defaultAction: "Pass",
      });
    }
    // Only Tiers: a policy without an order stays without one.
    const gnp = { metadata: { name: "p", uid }, spec: { selector: "all()" } };
    expect(convertCalicoCrd("GlobalNetworkPolicy", false, gnp)?.value?.spec).toEqual({ selector: "all()" });
  });
});

// resources/ipam_affinity_v3.go: ipamAffinityVersionConverter turns a v1 BlockAffinity (deleted a string)
// into the v3 BlockAffinitySpec (deleted a boolean, `o.Spec.Deleted == "true"`); a v3 CR is read as it is.
describe("BlockAffinity as the v3 spec (ipamAffinityVersionConverter)", () => {
  const uid = "0f3a5c7e-9b1d-4f2a-8c4e-6a8b0c2d4e6f";
  const affinity = (spec: object) => ({ metadata: { name: "node-1-10-244-1-0-26", uid }, spec });

  it('makes `deleted` true exactly for the string "true", as the Go converter compares it', () => {
    const base = { state: "confirmed", node: "node-1", type: "host", cidr: "10.244.1.0/26" };
    for (const [raw, isDeleted] of [
      ["true", true],
      ["false", false],
      ["", false],
      ["True", false],
      ["1", false],
      [undefined, false],
    ] as const) {
      const spec = raw === undefined ? base : { ...base, deleted: raw };
      expect(convertCalicoCrd("BlockAffinity", false, affinity(spec))?.value?.spec).toEqual({
        ...base,
        deleted: isDeleted,
      });
    }
  });

  it("keeps the Go struct's fields only: state, node, cidr always, type when set, deleted", () => {
    const value = convertCalicoCrd(
      "BlockAffinity",
      false,
      affinity({ node: "node-1", cidr: "10.244.1.0/26", deleted: "false", extra: 1 }),
    )?.value;
    expect(value?.spec).toEqual({ state: "", node: "node-1", cidr: "10.244.1.0/26", deleted: false });
    // In the struct's (and Calico's JSON) order.
    expect(Object.keys(value?.spec as object)).toEqual(["state", "node", "cidr", "deleted"]);
  });

  it("reads a native v3 BlockAffinity as it is", () => {
    const spec = { state: "pending", node: "node-2", cidr: "10.244.2.0/26", deleted: true };
    expect(
      convertCalicoCrd("BlockAffinity", false, affinity(spec), "projectcalico.org/v3")?.value?.spec,
    ).toEqual(spec);
  });

  it("through the registry: a deleted affinity keeps its key and its owning node (bgp view scoping)", () => {
    const result = convert("blockaffinities", {
      apiVersion: "crd.projectcalico.org/v1",
      kind: "BlockAffinity",
      ...affinity({ state: "confirmed", node: "node-3", cidr: "10.244.3.0/26", deleted: "true" }),
    });
    expect(result?.key).toBe("BlockAffinity/node-1-10-244-1-0-26");
    expect((result?.value?.spec as { deleted: boolean }).deleted).toBe(true);
    expect(nodeOf("BlockAffinity", result!.value!)).toBe("node-3");
  });
});
