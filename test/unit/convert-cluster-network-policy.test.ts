/**
 * policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy → Calico GlobalNetworkPolicy, as libcalico-go's
 * K8sClusterNetworkPolicyToCalico converts it (conversion/clusternetworkpolicy.go at 87c15906). The
 * expected values are written from Calico's rules, not computed by tabby.
 */
import { describe, expect, it } from "vitest";
import { convertClusterNetworkPolicy } from "../../src/server/datastore/convert/cluster-network-policy.js";
import { convertUid } from "../../src/server/datastore/convert/names.js";
import type { KubeObject } from "../../src/server/datastore/types.js";

const K8S = "projectcalico.org/orchestrator == 'k8s'";
const UID = "6f1c1b2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b";

function cnp(spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: "policy.networking.k8s.io/v1alpha2",
    kind: "ClusterNetworkPolicy",
    metadata: { name: "guard", uid: UID, resourceVersion: "7", ...metadata },
    spec,
  };
}

function specOf(spec: Record<string, unknown>): unknown {
  const out = convertClusterNetworkPolicy(cnp(spec));
  expect(out?.value?.kind).toBe("GlobalNetworkPolicy");
  return out?.value?.spec;
}

describe("ClusterNetworkPolicy → KubernetesClusterNetworkPolicy/<name>", () => {
  it("gives the value Calico's K8sClusterNetworkPolicyToCalico gives", () => {
    const out = convertClusterNetworkPolicy(
      cnp({
        tier: "Admin",
        priority: 10,
        subject: { namespaces: { matchLabels: { team: "a" } } },
        ingress: [
          {
            name: "web",
            action: "Accept",
            from: [
              { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: "client" } } } },
              { namespaces: { matchLabels: { env: "prod" } } },
            ],
            protocols: [
              { tcp: { destinationPort: { number: 80 } } },
              { tcp: { destinationPort: { number: 81 } } },
              { udp: { destinationPort: { range: { start: 5000, end: 5010 } } } },
              { destinationNamedPort: "metrics" },
            ],
          },
        ],
        egress: [
          { action: "Deny", to: [{ networks: ["10.1.2.3/16", "fd00::1/8"] }] },
          {
            name: "pass-dns",
            action: "Pass",
            to: [{ namespaces: {} }],
            protocols: [{ udp: { destinationPort: { number: 53 } } }],
          },
        ],
      }),
    );
    expect(out?.key).toBe("KubernetesClusterNetworkPolicy/guard");
    expect(out?.value?.metadata).toEqual({ name: "guard", uid: convertUid(UID), resourceVersion: "7" });
    const web = { annotations: { name: "web" } };
    const peers = [
      { selector: `${K8S} && app == 'client'`, namespaceSelector: "all()" },
      { namespaceSelector: "env == 'prod'" },
    ];
    expect(out?.value?.spec).toEqual({
      tier: "kube-admin",
      order: 10,
      // Protocols sorted (a named port has none, so it comes first), one rule per protocol × peer.
      ingress: [
        ...peers.map((source) => ({
          action: "Allow",
          source,
          destination: { ports: ["metrics"] },
          metadata: web,
        })),
        ...peers.map((source) => ({
          action: "Allow",
          protocol: "TCP",
          source,
          destination: { ports: ["80:81"] },
          metadata: web,
        })),
        ...peers.map((source) => ({
          action: "Allow",
          protocol: "UDP",
          source,
          destination: { ports: ["5000:5010"] },
          metadata: web,
        })),
      ],
      egress: [
        { action: "Deny", destination: { nets: ["10.1.0.0/16", "fd00::/8"] } },
        {
          action: "Pass",
          protocol: "UDP",
          destination: { namespaceSelector: "all()", ports: [53] },
          metadata: { annotations: { name: "pass-dns" } },
        },
      ],
      // A namespaces subject: every pod of those namespaces (the orchestrator term keeps host endpoints out).
      selector: K8S,
      types: ["Ingress", "Egress"],
      namespaceSelector: "team == 'a'",
    });
  });

  it("selects by pods: the Baseline tier, namespace and pod selectors of the subject", () => {
    expect(
      specOf({
        tier: "Baseline",
        priority: 0,
        subject: {
          pods: {
            namespaceSelector: { matchExpressions: [{ key: "env", operator: "NotIn", values: ["dev"] }] },
            podSelector: { matchExpressions: [{ key: "app", operator: "Exists" }] },
          },
        },
        ingress: [{ action: "Deny", from: [{ namespaces: {} }], protocols: [{ sctp: {} }] }],
      }),
    ).toEqual({
      tier: "kube-baseline",
      order: 0,
      // A protocol without a destination port matches every port of it.
      ingress: [{ action: "Deny", protocol: "SCTP", source: { namespaceSelector: "all()" } }],
      selector: `${K8S} && has(app)`,
      types: ["Ingress"],
      namespaceSelector: "env not in { 'dev' }",
    });
  });

  it("fails a rule it cannot convert closed: Deny and Pass become deny-all, Accept is dropped", () => {
    expect(
      specOf({
        tier: "Admin",
        priority: 5,
        subject: { namespaces: {} },
        ingress: [
          // An invalid range (Start > End reaches Calico only past the CRD's validation).
          {
            action: "Pass",
            from: [{ namespaces: {} }],
            protocols: [{ tcp: { destinationPort: { range: { start: 90, end: 80 } } } }],
          },
          { action: "Accept", from: [{ namespaces: {} }], protocols: [{ destinationNamedPort: "no:colon" }] },
        ],
        egress: [
          { action: "Deny", to: [{ networks: ["not-a-cidr"] }] },
          // Calico converts no nodes or domainNames peer: "none of supported fields in 'To' is set".
          { action: "Accept", to: [{ nodes: {} }] },
          { action: "Deny", to: [{ domainNames: ["example.com"] }] },
          { action: "Drop", to: [{ namespaces: {} }] }, // an unsupported action: dropped
        ],
      }),
    ).toEqual({
      tier: "kube-admin",
      order: 5,
      ingress: [{ action: "Deny" }],
      egress: [{ action: "Deny" }, { action: "Deny" }],
      selector: K8S,
      types: ["Ingress", "Egress"],
      namespaceSelector: "all()",
    });
  });

  it("gives types only for the directions that have rules (the CNP tiers pass by default)", () => {
    expect(
      specOf({
        tier: "Admin",
        priority: 1,
        subject: { namespaces: {} },
        egress: [{ action: "Accept", to: [{ nodes: {} }] }],
      }),
    ).toEqual({ tier: "kube-admin", order: 1, selector: K8S, namespaceSelector: "all()" });
  });

  it("has no value for an unknown tier or no subject, and rejects a uid that is no UUID", () => {
    for (const spec of [
      { tier: "Developer", priority: 1, subject: { namespaces: {} } },
      { tier: "Admin", priority: 1, subject: {} },
    ]) {
      const out = convertClusterNetworkPolicy(cnp(spec));
      expect(out).toMatchObject({ key: "KubernetesClusterNetworkPolicy/guard", value: null });
      expect(out?.value === null && out.rejected?.code).toBe("ERR_CONVERT_REJECTED");
    }
    const bad = convertClusterNetworkPolicy(
      cnp({ tier: "Admin", priority: 1, subject: { namespaces: {} } }, { uid: "not-a-uuid" }),
    );
    expect(bad).toMatchObject({ key: "KubernetesClusterNetworkPolicy/guard", value: null });
    expect(bad?.value === null && bad.rejected?.code).toBe("ERR_CONVERT_REJECTED");
  });
});
