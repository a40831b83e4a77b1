import type { ChurnGenerator } from "./churn.js";
import { withPodIp } from "./k8s-objects.js";
import type { KubeObject } from "./types.js";

/** The churn generator's changes: [name, weight, op]. Each returns the number of writes it made (0: none). */
export type ChurnOp = readonly [string, number, (g: ChurnGenerator) => number];

type Json = { [k: string]: unknown };

function spec(o: KubeObject): Json {
  return (o.spec ?? {}) as Json;
}

function differentPick<T>(g: ChurnGenerator, options: readonly T[], current: unknown): T {
  const rest = options.filter((o) => o !== current);
  return g.rng.pick(rest.length > 0 ? rest : options);
}

/** A pod's labels change (WorkloadEndpoint labels). */
function podLabel(g: ChurnGenerator): number {
  const key = g.model.pods.pick(g.rng);
  if (key === undefined) return 0;
  const [ns, name] = g.podKey(key);
  const pod = g.sim.get("pods", ns, name);
  if (pod === undefined) return drop(g, key);
  const version = differentPick(g, ["v1", "v2", "v3", "v4", "v5"], pod.metadata.labels?.version);
  return g.update("pods", pod, {}, (m) => (m.labels.version = version));
}

/** A running pod goes away (WorkloadEndpoint delete); its IP is freed. */
function podDelete(g: ChurnGenerator): number {
  if (g.model.pods.size <= Math.floor(g.model.initialPods / 2)) return 0;
  const key = g.model.pods.pick(g.rng);
  if (key === undefined) return 0;
  const [ns, name] = g.podKey(key);
  drop(g, key);
  return g.remove("pods", ns, name);
}

function drop(g: ChurnGenerator, key: string): 0 {
  const place = g.model.podPlaces.get(key);
  if (place !== undefined) g.model.alloc.free(place.ip);
  g.model.pods.delete(key);
  g.model.podPlaces.delete(key);
  return 0;
}

/** A new replica of an existing workload on a random node, with a fresh IP (claiming a block if needed). */
function podCreate(g: ChurnGenerator): number {
  const m = g.model;
  if (m.pods.size >= Math.max(16, Math.ceil(m.initialPods * 1.5)) || m.nodes.length === 0) return 0;
  const templateKey = m.pods.pick(g.rng);
  if (templateKey === undefined) return 0;
  const [ns, templateName] = g.podKey(templateKey);
  const template = g.sim.get("pods", ns, templateName);
  if (template === undefined) return drop(g, templateKey);
  const node = g.rng.pick(m.nodes);
  let writes = 0;
  let a = m.alloc.allocate(node);
  if (a === undefined) {
    writes += g.claimBlock(node);
    a = m.alloc.allocate(node);
    if (a === undefined) return writes;
  }
  const base = templateName.slice(0, templateName.lastIndexOf("-"));
  const name = `${base}-${g.rng.suffix(5)}`;
  const containerId = g.rng.hex(64);
  const nodeIp = m.nodeIps.get(node) ?? "10.0.0.1";
  const { uid: _u, resourceVersion: _r, creationTimestamp: _c, generation: _g, ...meta } = template.metadata;
  const pod = {
    ...template,
    metadata: {
      ...meta,
      name,
      annotations: withPodIp(template.metadata.annotations ?? {}, a.ip, containerId),
    },
    spec: { ...spec(template), nodeName: node },
    status: {
      ...(template.status as Json),
      hostIP: nodeIp,
      hostIPs: [{ ip: nodeIp }],
      podIP: a.ip,
      podIPs: [{ ip: a.ip }],
    },
  };
  writes += g.create("pods", pod);
  const key = `${ns}/${name}`;
  m.pods.add(key);
  m.podPlaces.set(key, { node, ip: a.ip });
  return writes;
}

/** A node label or its WireGuard key annotation changes (Node). */
function nodeChange(g: ChurnGenerator): number {
  if (g.model.nodes.length === 0) return 0;
  const node = g.sim.get("nodes", undefined, g.rng.pick(g.model.nodes));
  if (node === undefined) return 0;
  if (g.rng.chance(0.5)) {
    const window = differentPick(
      g,
      ["mon", "tue", "wed", "thu", "fri"],
      node.metadata.labels?.["tabby.dev/maintenance-window"],
    );
    return g.update("nodes", node, {}, (m) => (m.labels["tabby.dev/maintenance-window"] = window));
  }
  if (g.rng.chance(0.5)) {
    // A label set through calicoctl: it lives in the projectcalico.org/labels annotation.
    const text = node.metadata.annotations?.["projectcalico.org/labels"] ?? "{}";
    let labels: Record<string, string>;
    try {
      labels = JSON.parse(text) as Record<string, string>;
    } catch {
      labels = {};
    }
    const egress = differentPick(g, ["gw-a", "gw-b", "gw-c"], labels["egress-gateway"]);
    const next = JSON.stringify({ ...labels, "egress-gateway": egress });
    return g.update("nodes", node, {}, (m) => (m.annotations["projectcalico.org/labels"] = next));
  }
  const key = g.rng.base64(32);
  return g.update("nodes", node, {}, (m) => (m.annotations["projectcalico.org/WireguardPublicKey"] = key));
}

/** A namespace label changes (Profile kns.<ns>). */
function namespaceLabel(g: ChurnGenerator): number {
  if (g.model.appNamespaces.length === 0) return 0;
  const ns = g.sim.get("namespaces", undefined, g.rng.pick(g.model.appNamespaces));
  if (ns === undefined) return 0;
  const team = differentPick(g, ["team-0", "team-1", "team-2", "team-3", "team-4"], ns.metadata.labels?.team);
  return g.update("namespaces", ns, {}, (m) => (m.labels.team = team));
}

/** A Kubernetes NetworkPolicy's port or policy types change. */
function k8sPolicy(g: ChurnGenerator): number {
  const key = g.model.k8sPolicies.pick(g.rng);
  if (key === undefined) return 0;
  const [ns, name] = g.podKey(key);
  const np = g.sim.get("networkpolicies", ns, name);
  if (np === undefined) return (g.model.k8sPolicies.delete(key), 0);
  const s = spec(np);
  const ingress = Array.isArray(s.ingress) ? (s.ingress as Json[]) : [];
  const rule = ingress[0];
  const ports = rule !== undefined && Array.isArray(rule.ports) ? (rule.ports as Json[]) : [];
  if (rule !== undefined && ports[0] !== undefined) {
    const port = differentPick(g, [8080, 8081, 8443, 9000], ports[0].port);
    // A range moves with its start (the API server refuses endPort < port).
    const range = typeof ports[0].endPort === "number" ? { endPort: port + 99 } : {};
    const nextRule = { ...rule, ports: [{ ...ports[0], port, ...range }, ...ports.slice(1)] };
    return g.update("networkpolicies", np, { spec: { ...s, ingress: [nextRule, ...ingress.slice(1)] } });
  }
  const types =
    Array.isArray(s.policyTypes) && s.policyTypes.length === 1 ? ["Ingress", "Egress"] : ["Ingress"];
  return g.update("networkpolicies", np, { spec: { ...s, policyTypes: types } });
}

/** A Calico (Global)NetworkPolicy's order changes. */
function calicoPolicy(g: ChurnGenerator): number {
  if (g.model.calicoPolicies.length === 0) return 0;
  const ref = g.rng.pick(g.model.calicoPolicies);
  const p = g.sim.get(ref.resource, ref.namespace, ref.name);
  if (p === undefined) return 0;
  const s = spec(p);
  let order = 1 + g.rng.int(1000);
  if (order === s.order) order++;
  return g.update(ref.resource, p, { spec: { ...s, order } });
}

/** A (Global)NetworkSet's nets change. */
function networkSet(g: ChurnGenerator): number {
  if (g.model.networkSets.length === 0) return 0;
  const ref = g.rng.pick(g.model.networkSets);
  const set = g.sim.get(ref.resource, ref.namespace, ref.name);
  if (set === undefined) return 0;
  const count = 1 + g.rng.int(3);
  const nets = Array.from({ length: count }, () => `198.51.${100 + g.rng.int(4)}.${g.rng.int(16) * 16}/28`);
  const old = spec(set).nets;
  if (JSON.stringify(old) === JSON.stringify(nets)) nets.push("203.0.113.0/28");
  return g.update(ref.resource, set, { spec: { ...spec(set), nets } });
}

/** An endpoint of an EndpointSlice turns ready or not ready. */
function endpointSlice(g: ChurnGenerator): number {
  const key = g.model.endpointSlices.pick(g.rng);
  if (key === undefined) return 0;
  const [ns, name] = g.podKey(key);
  const slice = g.sim.get("endpointslices", ns, name);
  if (slice === undefined) return (g.model.endpointSlices.delete(key), 0);
  const endpoints = Array.isArray(slice.endpoints) ? (slice.endpoints as Json[]) : [];
  if (endpoints.length === 0) return 0;
  const i = g.rng.int(endpoints.length);
  const ep = endpoints[i]!;
  const isReady = (ep.conditions as { ready?: boolean } | undefined)?.ready === true;
  const next = [...endpoints];
  next[i] = { ...ep, conditions: { ready: !isReady, serving: !isReady, terminating: false } };
  return g.update("endpointslices", slice, { endpoints: next });
}

/** A node claims one more block (IPAMBlock + BlockAffinity), or releases an empty extra one. */
function blockAffinityOp(g: ChurnGenerator): number {
  if (g.model.nodes.length === 0) return 0;
  const node = g.rng.pick(g.model.nodes);
  const blocks = g.model.alloc.blocksOf(node);
  const spare = blocks.slice(1).find((b) => b.usedCount === 0);
  if (spare !== undefined && (blocks.length >= 3 || g.rng.chance(0.5)))
    return g.releaseBlock(node, spare.index);
  if (blocks.length >= 3) return 0;
  return g.claimBlock(node);
}

/** A HostEndpoint gains or loses a second expected IP. */
function hostEndpoint(g: ChurnGenerator): number {
  if (g.model.hostEndpoints.length === 0) return 0;
  const hep = g.sim.get("hostendpoints", undefined, g.rng.pick(g.model.hostEndpoints));
  if (hep === undefined) return 0;
  const s = spec(hep);
  const ips = Array.isArray(s.expectedIPs) ? (s.expectedIPs as string[]) : [];
  const expectedIPs = ips.length > 1 ? ips.slice(0, 1) : [...ips, `10.2.${g.rng.int(256)}.${g.rng.int(256)}`];
  return g.update("hostendpoints", hep, { spec: { ...s, expectedIPs } });
}

/** A per-node FelixConfiguration's log level flips. */
function felixConfig(g: ChurnGenerator): number {
  if (g.model.nodeFelixConfigs.length === 0) return 0;
  const fc = g.sim.get("felixconfigurations", undefined, g.rng.pick(g.model.nodeFelixConfigs));
  if (fc === undefined) return 0;
  const s = spec(fc);
  return g.update("felixconfigurations", fc, {
    spec: { ...s, logSeverityScreen: s.logSeverityScreen === "Debug" ? "Info" : "Debug" },
  });
}

export const OPS: readonly ChurnOp[] = [
  ["pod-label", 30, podLabel],
  ["pod-create", 12, podCreate],
  ["pod-delete", 12, podDelete],
  ["node", 10, nodeChange],
  ["namespace-label", 4, namespaceLabel],
  ["k8s-policy", 6, k8sPolicy],
  ["calico-policy", 6, calicoPolicy],
  ["network-set", 5, networkSet],
  ["endpoint-slice", 6, endpointSlice],
  ["block-affinity", 3, blockAffinityOp],
  ["host-endpoint", 1, hostEndpoint],
  ["felix-config", 1, felixConfig],
];
