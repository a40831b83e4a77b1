import * as calico from "./calico-objects.js";
import { SimError, SimErrorCode } from "./errors.js";
import { BlockAllocator, nodeIp, serviceIp } from "./ipam.js";
import {
  allowAppPolicy,
  clusterNetworkPolicies,
  denyAllIngressPolicy,
  egressPolicy,
  endpointSliceObject,
  metricsPolicy,
  namespaceObject,
  nodeObject,
  nodePodCidr,
  podName,
  podObject,
  serviceAccountObject,
  serviceObject,
  type Obj,
  type PodPhase,
  type PodSpec,
  type SliceEndpoint,
  vxlanMac,
} from "./k8s-objects.js";
import { kubeTimestamp } from "./objects.js";
import { Prng } from "./prng.js";
import type { Simulator } from "./simulator.js";

export interface SeedOptions {
  readonly nodes: number;
  /** Pods per node, including one host-network calico-node pod. */
  readonly podsPerNode: number;
  /** Application namespaces; default scales with the pod count (2..50). */
  readonly namespaces?: number;
  /** Applications (Deployment + Service) per namespace; default 5, at most 8. */
  readonly appsPerNamespace?: number;
  /** PRNG seed; default 1. The same seed gives the same cluster (uids and timestamps aside). */
  readonly seed?: number;
  /** Clock for timestamps in object bodies; default Date.now. */
  readonly clock?: () => number;
}

export interface SeedResult {
  readonly nodes: readonly string[];
  readonly namespaces: readonly string[];
  /** Objects created, by resource. */
  readonly counts: Readonly<Record<string, number>>;
  /** Objects skipped because their CRD is not installed, by resource. */
  readonly skipped: Readonly<Record<string, number>>;
}

export const APPS: readonly (readonly [string, string])[] = [
  ["frontend", "frontend"],
  ["api", "frontend"],
  ["backend", "backend"],
  ["cache", "backend"],
  ["worker", "backend"],
  ["db", "db"],
  ["search", "backend"],
  ["auth", "backend"],
];

export const SYSTEM_NAMESPACES = ["default", "kube-system", "calico-system", "monitoring"] as const;
const RACK_SIZE = 40;
const SLICE_MAX_ENDPOINTS = 100;

interface App {
  readonly namespace: string;
  readonly name: string;
  readonly tier: string;
  readonly templateHash: string;
  readonly ownerUid: string;
}

/** Creates a realistic cluster in the simulator (core objects and Calico CRs); see SeedOptions. */
export function seedCluster(sim: Simulator, options: SeedOptions): SeedResult {
  const { nodes: nodeCount, podsPerNode } = options;
  for (const [name, v] of [
    ["nodes", nodeCount],
    ["podsPerNode", podsPerNode],
  ] as const) {
    if (!Number.isInteger(v) || v < 0)
      throw new SimError(SimErrorCode.badOption, `${name}: must be a non-negative integer`);
  }
  const rng = new Prng(options.seed ?? 1);
  const clock = options.clock ?? Date.now;
  const now = kubeTimestamp(clock());
  const counts: Record<string, number> = {};
  const skipped: Record<string, number> = {};
  const uids = new Map<string, string>();
  const create = (resource: string, obj: Obj): void => {
    try {
      const made = sim.create(
        resource,
        calico.servedAs(obj, () => sim.apiVersionOf(resource)),
      );
      counts[resource] = (counts[resource] ?? 0) + 1;
      if (resource === "pods")
        uids.set(`${made.metadata.namespace}/${made.metadata.name}`, made.metadata.uid);
    } catch (err) {
      if (!(err instanceof SimError && err.code === SimErrorCode.resourceNotFound)) throw err;
      skipped[resource] = (skipped[resource] ?? 0) + 1;
    }
  };

  // Namespaces, service accounts, applications.
  const nsCount = options.namespaces ?? Math.max(2, Math.min(50, Math.ceil((nodeCount * podsPerNode) / 600)));
  const appCount = Math.max(1, Math.min(APPS.length, options.appsPerNamespace ?? 5));
  const appNamespaces = Array.from({ length: nsCount }, (_, i) => `app-${String(i).padStart(2, "0")}`);
  for (const ns of SYSTEM_NAMESPACES)
    create("namespaces", namespaceObject(ns, ns === "default" ? {} : { "tabby.dev/system": "true" }));
  const apps: App[] = [];
  appNamespaces.forEach((ns, i) => {
    create(
      "namespaces",
      namespaceObject(ns, { team: `team-${i % 5}`, env: i % 3 === 0 ? "staging" : "prod" }),
    );
    for (const [name, tier] of APPS.slice(0, appCount)) {
      apps.push({ namespace: ns, name, tier, templateHash: rng.suffix(10), ownerUid: rng.uuid() });
    }
  });
  for (const ns of [...SYSTEM_NAMESPACES, ...appNamespaces])
    create("serviceaccounts", serviceAccountObject(ns, "default"));
  create("serviceaccounts", serviceAccountObject("calico-system", "calico-node"));
  for (const a of apps) create("serviceaccounts", serviceAccountObject(a.namespace, a.name));

  // Nodes with their first block, and the pods placed on them.
  const alloc = new BlockAllocator();
  const nodeNames: string[] = [];
  const pods: PodSpec[] = [];
  const blockAllocs = new Map<number, { node: string; allocs: calico.BlockAllocation[] }>();
  const handles: { id: string; block: number }[] = [];
  const calicoNodeOwner = rng.uuid();
  let g = 0;
  for (let i = 0; i < nodeCount; i++) {
    const name = `node-${String(i + 1).padStart(4, "0")}`;
    nodeNames.push(name);
    const ip = nodeIp(i);
    const block = alloc.claim(name)!;
    // calico-node's tunnel addresses (IPIP, VXLAN, WireGuard), each an IPAM allocation with its handle.
    const tunnels = (
      [
        ["ipip", "ipipTunnelAddress"],
        ["vxlan", "vxlanTunnelAddress"],
        ["wireguard", "wireguardTunnelAddress"],
      ] as const
    ).map(([prefix, type]) => {
      const a = alloc.allocate(name)!;
      const handleId = `${prefix}-tunnel-addr-${name}`;
      handles.push({ id: handleId, block });
      return { ip: a.ip, alloc: { ordinal: a.ordinal, handleId, secondary: { node: name, type } } };
    });
    blockAllocs.set(block, { node: name, allocs: tunnels.map((t) => t.alloc) });
    create(
      "nodes",
      nodeObject({
        name,
        ip,
        zone: `zone-${"abc"[i % 3]!}`,
        rack: `rack-${Math.floor(i / RACK_SIZE)}`,
        tunnelIp: tunnels[0]!.ip,
        vxlanTunnelIp: tunnels[1]!.ip,
        vxlanMac: vxlanMac(rng.hex(10)),
        wireguardIp: tunnels[2]!.ip,
        wireguardKey: rng.base64(32),
        podCidr: nodePodCidr(i),
        isControlPlane: i < Math.min(3, Math.floor(nodeCount / 10)),
        isRouteReflector: i % RACK_SIZE === 0,
      }),
    );
    for (let k = 0; k < podsPerNode; k++) {
      const base = { nodeName: name, nodeIp: ip, containerId: rng.hex(64), startTime: now, version: "v1" };
      if (k === 0) {
        pods.push({
          ...base,
          namespace: "calico-system",
          name: `calico-node-${rng.suffix(5)}`,
          app: "calico-node",
          templateHash: "",
          tier: "system",
          serviceAccount: "calico-node",
          podIp: ip,
          phase: "Running",
          isHostNetwork: true,
          ownerUid: calicoNodeOwner,
        });
        continue;
      }
      const app = rng.pick(apps);
      const phase: PodPhase = g % 97 === 50 ? "Pending" : g % 89 === 40 ? "Succeeded" : "Running";
      g++;
      const pod =
        phase === "Succeeded" ? `${app.name}-job-${rng.suffix(5)}` : podName(rng, app.name, app.templateHash);
      let podIp: string | undefined;
      if (phase !== "Pending") {
        const a =
          alloc.allocate(name) ?? (alloc.claim(name) === undefined ? undefined : alloc.allocate(name));
        if (a !== undefined) {
          podIp = a.ip;
          const handleId = `k8s-pod-network.${base.containerId}`;
          const entry = blockAllocs.get(a.index) ?? { node: name, allocs: [] };
          blockAllocs.set(a.index, entry);
          entry.allocs.push({
            ordinal: a.ordinal,
            handleId,
            secondary: { namespace: app.namespace, node: name, pod, timestamp: now },
          });
          handles.push({ id: handleId, block: a.index });
        }
      }
      pods.push({
        ...base,
        namespace: app.namespace,
        name: pod,
        app: app.name,
        templateHash: app.templateHash,
        tier: app.tier,
        serviceAccount: app.name,
        podIp,
        phase,
        isHostNetwork: false,
        ownerUid: app.ownerUid,
      });
    }
  }

  // Calico cluster-wide configuration.
  for (const p of calico.ipPools()) create("ippools", p);
  create("ipamconfigs", calico.ipamConfig());
  create("ipreservations", calico.ipReservation());
  create("clusterinformations", calico.clusterInformation(rng.hex(32)));
  create("felixconfigurations", calico.defaultFelixConfiguration());
  for (const n of nodeNames.slice(0, 3)) {
    create(
      "felixconfigurations",
      calico.felixConfiguration(`node.${n}`, { logSeverityScreen: "Info", reportingInterval: "0s" }),
    );
  }
  create("kubecontrollersconfigurations", calico.kubeControllersConfiguration());
  create("bgpconfigurations", calico.bgpConfiguration(nodeCount <= 100));
  create("bgpfilters", calico.bgpFilter());
  for (let r = 0; r * RACK_SIZE < nodeCount; r++)
    create("bgppeers", calico.bgpPeer(`rack-${r}`, `10.1.${r >> 8}.${r & 255}`, 64600 + r));
  for (const t of calico.tiers()) create("tiers", t);
  for (const p of calico.globalNetworkPolicies()) create("globalnetworkpolicies", p);
  for (const p of clusterNetworkPolicies()) create("clusternetworkpolicies", p);
  for (const [i, name] of ["blocklist-a", "blocklist-b", "blocklist-c"].entries()) {
    create(
      "globalnetworksets",
      calico.globalNetworkSet(name, [`198.51.100.${i * 16}/28`, `203.0.113.${i * 16}/28`]),
    );
  }
  nodeNames.slice(0, 5).forEach((n, i) => create("hostendpoints", calico.hostEndpoint(n, nodeIp(i))));

  // IPAM: blocks, affinities, handles.
  for (const [index, { node, allocs }] of [...blockAllocs].sort((a, b) => a[0] - b[0])) {
    create("ipamblocks", calico.ipamBlock(index, node, allocs, now));
    create("blockaffinities", calico.blockAffinity(node, index));
  }
  for (const h of handles) create("ipamhandles", calico.ipamHandle(h.id, h.block));
  for (const n of nodeNames) create("caliconodestatuses", calico.calicoNodeStatus(n, now));

  // Pods, then services and their endpoint slices.
  for (const p of pods) create("pods", podObject(p));
  create("services", serviceObject("default", "kubernetes", "10.96.0.1", {}));
  create("services", serviceObject("kube-system", "kube-dns", serviceIp(0), { "k8s-app": "kube-dns" }));
  const sliceVersion = sim.apiVersionOf("endpointslices");
  const podsByApp = new Map<string, PodSpec[]>();
  for (const p of pods) {
    const list = podsByApp.get(`${p.namespace}/${p.app}`) ?? [];
    list.push(p);
    podsByApp.set(`${p.namespace}/${p.app}`, list);
  }
  apps.forEach((a, i) => {
    create("services", serviceObject(a.namespace, a.name, serviceIp(i + 1), { app: a.name }));
    const eps: SliceEndpoint[] = (podsByApp.get(`${a.namespace}/${a.name}`) ?? [])
      .filter((p) => p.phase !== "Succeeded")
      .map((p) => ({
        ip: p.podIp ?? "",
        nodeName: p.nodeName,
        podName: p.name,
        podUid: uids.get(`${p.namespace}/${p.name}`) ?? "",
        isReady: p.phase === "Running",
      }))
      .filter((e) => e.ip !== "");
    for (let s = 0; s === 0 || s * SLICE_MAX_ENDPOINTS < eps.length; s++) {
      const chunk = eps.slice(s * SLICE_MAX_ENDPOINTS, (s + 1) * SLICE_MAX_ENDPOINTS);
      create(
        "endpointslices",
        endpointSliceObject(sliceVersion, a.namespace, `${a.name}-${rng.suffix(5)}`, a.name, chunk),
      );
    }
  });

  // Policies and network sets per application namespace.
  for (const ns of appNamespaces) {
    create("networkpolicies", denyAllIngressPolicy(ns));
    create("networkpolicies", egressPolicy(ns));
    create("networkpolicies", metricsPolicy(ns));
    for (const a of apps.filter((x) => x.namespace === ns))
      create("networkpolicies", allowAppPolicy(ns, a.name, 8080));
    create(
      "networkpolicies.crd.projectcalico.org",
      calico.calicoNetworkPolicy(ns, "allow-frontend-to-backend", 100, 8080),
    );
    create("networksets", calico.networkSet(ns, "partners", [`192.0.2.${rng.int(16) * 16}/28`]));
  }
  const stagedNs = appNamespaces[0];
  if (stagedNs !== undefined) {
    const [sgnp, snp, sknp] = calico.stagedPolicies(stagedNs);
    create("stagedglobalnetworkpolicies", sgnp!);
    create("stagednetworkpolicies", snp!);
    create("stagedkubernetesnetworkpolicies", sknp!);
  }
  return { nodes: nodeNames, namespaces: appNamespaces, counts, skipped };
}
