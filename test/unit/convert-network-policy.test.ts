import { describe, expect, it } from "vitest";
import { convert } from "../../src/server/datastore/index.js";
import type { KubeObject } from "../../src/server/datastore/index.js";

const UID = "30316465-6365-4463-ad63-3564622d3638";
/** libcalico-go's own test vector for ConvertUID. */
const CALICO_UID = "0c8c26a6-c6a6-44c6-adc6-ac2646b46c1c";
const ORCH = "projectcalico.org/orchestrator == 'k8s'";

function policy(spec: object, meta: object = {}): KubeObject {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: {
      name: "test.policy",
      namespace: "default",
      uid: UID,
      resourceVersion: "501",
      creationTimestamp: "2024-04-02T10:00:00Z",
      labels: { owner: "billing" },
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}", "tabby.dev/changed-at": "17" },
      managedFields: [{ manager: "kubectl" }],
      ...meta,
    },
    spec,
  };
}

function specOf(spec: object): Record<string, unknown> {
  const out = convert("networkpolicies", policy(spec));
  return out?.value?.spec as Record<string, unknown>;
}

describe("Kubernetes NetworkPolicy → Calico v3 NetworkPolicy", () => {
  it("gives the value Calico's K8sNetworkPolicyToCalico gives, under KubernetesNetworkPolicy/<ns>/<name>", () => {
    const out = convert(
      "networkpolicies",
      policy({
        podSelector: { matchLabels: { label2: "value2", label: "value" } },
        ingress: [
          {
            ports: [{ port: 80 }, { port: "foo" }],
            from: [{ podSelector: { matchLabels: { k2: "v2", k: "v" } } }],
          },
        ],
        policyTypes: ["Ingress"],
      }),
    );
    expect(out).toEqual({
      key: "KubernetesNetworkPolicy/default/test.policy",
      value: {
        kind: "NetworkPolicy",
        apiVersion: "projectcalico.org/v3",
        metadata: {
          name: "test.policy",
          namespace: "default",
          uid: CALICO_UID,
          resourceVersion: "501",
          creationTimestamp: "2024-04-02T10:00:00Z",
          annotations: { "tabby.dev/changed-at": "17" },
        },
        spec: {
          tier: "default",
          order: 1000,
          ingress: [
            {
              action: "Allow",
              protocol: "TCP", // Kubernetes' default, made explicit
              source: { selector: `${ORCH} && k == 'v' && k2 == 'v2'` },
              destination: { ports: [80, "foo"] },
            },
          ],
          selector: `${ORCH} && label == 'value' && label2 == 'value2'`,
          types: ["Ingress"],
        },
      },
    });
  });

  // Selector strings, byte for byte as libcalico-go's k8sSelectorToCalico writes them.
  const selectors: { name: string; peer: object; want: object }[] = [
    { name: "an empty pod selector", peer: { podSelector: {} }, want: { selector: ORCH } },
    {
      name: "an empty namespace selector",
      peer: { namespaceSelector: {} },
      want: { selector: ORCH, namespaceSelector: "all()" },
    },
    {
      name: "namespace and pod selectors together",
      peer: {
        podSelector: { matchLabels: { app: "web" } },
        namespaceSelector: { matchLabels: { team: "a" } },
      },
      want: { selector: `${ORCH} && app == 'web'`, namespaceSelector: "team == 'a'" },
    },
    {
      name: "every expression operator, in order",
      peer: {
        namespaceSelector: {
          matchExpressions: [
            { key: "env", operator: "In", values: ["prod", "staging"] },
            { key: "tier", operator: "NotIn", values: ["db"] },
            { key: "owner", operator: "Exists" },
            { key: "legacy", operator: "DoesNotExist" },
          ],
        },
      },
      want: {
        selector: ORCH,
        namespaceSelector:
          "env in { 'prod', 'staging' } && tier not in { 'db' } && has(owner) && ! has(legacy)",
      },
    },
    {
      name: "matchLabels sorted by key before the expressions",
      peer: {
        podSelector: {
          matchLabels: { b: "2", a: "1" },
          matchExpressions: [{ key: "c", operator: "Exists" }],
        },
      },
      want: { selector: `${ORCH} && a == '1' && b == '2' && has(c)` },
    },
  ];
  it.each(selectors)("writes the selector of $name", ({ peer, want }) => {
    const spec = specOf({ podSelector: {}, ingress: [{ from: [peer] }], policyTypes: ["Ingress"] });
    expect(spec.ingress).toEqual([{ action: "Allow", source: want }]);
    expect(spec.selector).toBe(ORCH);
  });

  it("turns ipBlock into nets and notNets, masked", () => {
    const spec = specOf({
      podSelector: {},
      ingress: [
        { from: [{ ipBlock: { cidr: "192.168.3.4/16", except: ["192.168.1.0/24", "fd00::1/64"] } }] },
      ],
      egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8" } }], ports: [{ port: 443 }] }],
      policyTypes: ["Ingress", "Egress"],
    });
    expect(spec.ingress).toEqual([
      { action: "Allow", source: { nets: ["192.168.0.0/16"], notNets: ["192.168.1.0/24", "fd00::/64"] } },
    ]);
    expect(spec.egress).toEqual([
      { action: "Allow", protocol: "TCP", destination: { nets: ["10.0.0.0/8"], ports: [443] } },
    ]);
    expect(spec.types).toEqual(["Ingress", "Egress"]);
  });

  it("leaves a peer empty when its ipBlock CIDR does not parse, as Calico does", () => {
    const spec = specOf({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "nope" } }] }] });
    expect(spec.ingress).toEqual([{ action: "Allow" }]);
  });

  it("makes one rule per protocol × peer, protocols sorted, ports merged into ranges", () => {
    const spec = specOf({
      podSelector: { matchLabels: { label: "value" } },
      ingress: [
        {
          ports: [
            { port: 90, protocol: "UDP" },
            { port: 80, protocol: "TCP" },
            { port: 81, protocol: "TCP" },
            { port: 82, protocol: "TCP" },
            { port: "http", protocol: "TCP" },
            { protocol: "SCTP" },
          ],
          from: [
            { podSelector: { matchLabels: { k: "v" } } },
            { podSelector: { matchLabels: { k2: "v2" } } },
          ],
        },
      ],
      policyTypes: ["Ingress"],
    });
    const k = { selector: `${ORCH} && k == 'v'` };
    const k2 = { selector: `${ORCH} && k2 == 'v2'` };
    expect(spec.ingress).toEqual([
      { action: "Allow", protocol: "SCTP", source: k },
      { action: "Allow", protocol: "SCTP", source: k2 },
      { action: "Allow", protocol: "TCP", source: k, destination: { ports: ["http", "80:82"] } },
      { action: "Allow", protocol: "TCP", source: k2, destination: { ports: ["http", "80:82"] } },
      { action: "Allow", protocol: "UDP", source: k, destination: { ports: [90] } },
      { action: "Allow", protocol: "UDP", source: k2, destination: { ports: [90] } },
    ]);
  });

  it("writes endPort as a port range, and an all-ports entry wins over listed ports", () => {
    const spec = specOf({
      podSelector: {},
      egress: [
        {
          ports: [
            { port: 32000, endPort: 32768, protocol: "TCP" },
            { port: 53, protocol: "UDP" },
            { protocol: "UDP" },
          ],
        },
      ],
      policyTypes: ["Egress"],
    });
    expect(spec.egress).toEqual([
      { action: "Allow", protocol: "TCP", destination: { ports: ["32000:32768"] } },
      { action: "Allow", protocol: "UDP" },
    ]);
    expect(spec.types).toEqual(["Egress"]);
    expect(spec).not.toHaveProperty("ingress");
  });

  it("allows everything for a rule with an empty port entry of no protocol", () => {
    const spec = specOf({
      podSelector: {},
      ingress: [{ ports: [{ port: 80 }, {}] }],
      policyTypes: ["Ingress"],
    });
    // {} is TCP, every port: it absorbs port 80.
    expect(spec.ingress).toEqual([{ action: "Allow", protocol: "TCP" }]);
  });

  it("drops a rule whose port Calico cannot parse and keeps the others", () => {
    const spec = specOf({
      podSelector: {},
      ingress: [
        { ports: [{ port: 80 }] },
        { ports: [{ port: 80 }, { port: "-50:-1" }] },
        { ports: [{ port: "web", endPort: 90 }] },
      ],
      policyTypes: ["Ingress"],
    });
    expect(spec.ingress).toEqual([{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }]);
  });

  it("defaults types to Ingress when policyTypes is absent (a pre-1.8 API server)", () => {
    const spec = specOf({ podSelector: {}, ingress: [{}] });
    expect(spec.types).toEqual(["Ingress"]);
    expect(spec.ingress).toEqual([{ action: "Allow" }]);
  });

  // K8sNetworkPolicyToCalico: types come from policyTypes only; egress rules without "Egress" in them
  // are converted all the same (Calico only warns), and a policy typed Egress keeps its ingress rules.
  it("takes types from policyTypes alone, keeping the rules of a direction it does not name", () => {
    const untyped = specOf({ podSelector: {}, egress: [{ ports: [{ protocol: "UDP", port: 53 }] }] });
    expect(untyped.types).toEqual(["Ingress"]);
    expect(untyped.egress).toEqual([{ action: "Allow", protocol: "UDP", destination: { ports: [53] } }]);
    const egressOnly = specOf({ podSelector: {}, policyTypes: ["Egress"], ingress: [{}] });
    expect(egressOnly.types).toEqual(["Egress"]);
    expect(egressOnly.ingress).toEqual([{ action: "Allow" }]);
    expect(specOf({ podSelector: {}, policyTypes: ["Egress", "Ingress"] }).types).toEqual([
      "Ingress",
      "Egress",
    ]);
  });

  it("keeps a default-deny policy with no rules", () => {
    const spec = specOf({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    expect(spec).toEqual({ tier: "default", order: 1000, selector: ORCH, types: ["Ingress", "Egress"] });
  });

  it("rejects a policy whose uid is not a UUID (Calico's ConvertUID fails), and keeps one without a uid", () => {
    expect(convert("networkpolicies", policy({ podSelector: {} }, { uid: "np-1" }))).toMatchObject({
      key: "KubernetesNetworkPolicy/default/test.policy",
      value: null,
      rejected: { code: "ERR_CONVERT_REJECTED" },
    });
    const noUid = convert("networkpolicies", policy({ podSelector: {} }, { uid: undefined }));
    expect((noUid?.value?.metadata as { uid: string }).uid).toBe("");
  });

  it("does not share structure with the source object", () => {
    const obj = policy({
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8", except: [] } }] }],
    });
    const out = convert("networkpolicies", obj);
    const rules = (out?.value?.spec as { ingress: { source: { nets: string[] } }[] }).ingress;
    rules[0]?.source.nets.push("x");
    expect(
      (obj.spec as { ingress: { from: { ipBlock: { except: string[] } }[] }[] }).ingress[0]?.from[0]?.ipBlock
        .except,
    ).toEqual([]);
  });

  it("ignores objects without a namespace", () => {
    expect(convert("networkpolicies", { metadata: { name: "x" }, spec: {} })).toBeNull();
  });
});
