/**
 * The Calico fields the simulator's seed and churn carry (floating IPs, source prefixes, QoS, ports of every
 * protocol, KNP peer and port forms, node VXLAN/WireGuard/BGP annotations and Calico labels), through the
 * whole stack: simulator → tabby server → client mirror, in the values Calico's conversion gives. With
 * `--calico-api-group projectcalico.org/v3` the simulator serves the Calico CRs from the native v3 group
 * and the views are the same.
 */
import { pino } from "pino";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { TabbyClient } from "../../src/client/index.js";
import type { ResourceValue } from "../../proto/messages.js";
import { convertUid } from "../../src/server/datastore/convert/names.js";
import { runServer } from "../../src/server/main.js";
import { ChurnGenerator, seedCluster, startSimulator } from "../../src/sim/index.js";
import type { KubeObject, Simulator } from "../../src/sim/index.js";
import { floatingIpFor } from "../../src/sim/k8s-objects.js";
import { until } from "./client-test-utils.js";
import { loopbackServeConfig } from "../support/serve-config.js";

type ApiGroup = "crd.projectcalico.org/v1" | "projectcalico.org/v3";

interface Stack {
  sim: Simulator;
  url: string;
  registry: Registry;
}

async function stack(apiGroup: ApiGroup = "crd.projectcalico.org/v1"): Promise<Stack> {
  const sim = await startSimulator({ calicoApiGroup: apiGroup });
  onTestFinished(() => sim.close());
  seedCluster(sim, { nodes: 3, podsPerNode: 12, namespaces: 1, seed: 7 });
  const config = loopbackServeConfig({
    flushWindowMs: "1",
    calicoApiGroup: apiGroup,
  });
  const registry = new Registry();
  const server = await runServer(config, {
    logger: pino({ level: "silent" }),
    kubeConfig: sim.kubeConfig(),
    registry,
  });
  onTestFinished(() => server.close());
  return { sim, url: `ws://127.0.0.1:${server.port}`, registry };
}

async function syncedClient(url: string, view: "felix" | "bgp", node?: string): Promise<TabbyClient> {
  const client = new TabbyClient({ servers: [url], view, ...(node === undefined ? {} : { nodeName: node }) });
  onTestFinished(() => client.close());
  client.start();
  await client.synced();
  return client;
}

type Json = Record<string, unknown>;
const specOf = (v: ResourceValue | undefined): Json => (v?.spec ?? {}) as Json;
const metaOf = (v: ResourceValue | undefined): Json => (v?.metadata ?? {}) as Json;

function podIp(p: KubeObject): string | undefined {
  return (p.status as { podIP?: string } | undefined)?.podIP;
}

/** The running workload pods of an app, with an IP. */
function runningPods(sim: Simulator, app: string): KubeObject[] {
  return sim
    .list("pods")
    .filter(
      (p) =>
        p.metadata.labels?.app === app &&
        (p.status as { phase?: string }).phase === "Running" &&
        podIp(p) !== undefined,
    );
}

/** `<node>-k8s-<pod>-eth0` with dashes doubled (Calico's WorkloadEndpoint name). */
function wepKey(p: KubeObject): string {
  const node = (p.spec as { nodeName: string }).nodeName;
  const esc = (s: string): string => s.replaceAll("-", "--");
  return `WorkloadEndpoint/${p.metadata.namespace}/${esc(node)}-k8s-${esc(p.metadata.name)}-eth0`;
}

async function invalidObjects(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric("tabby_upstream_invalid_objects_total")?.get();
  return (metric?.values ?? []).reduce((n, v) => n + v.value, 0);
}

/** Checks the converted values of the seeded cluster in a felix mirror (the same for either API group). */
function expectSeededValues(sim: Simulator, felix: TabbyClient): void {
  // Floating IPs → ipNATs, mapped to the pod IP of the same family.
  const frontends = runningPods(sim, "frontend");
  expect(frontends.length).toBeGreaterThan(0);
  for (const p of frontends) {
    const wep = felix.get(wepKey(p));
    expect(specOf(wep).ipNATs).toEqual([{ internalIP: podIp(p), externalIP: floatingIpFor(podIp(p)!) }]);
    // Calico copies the pod's generateName; its interface name is cali + 11 hex chars.
    expect(metaOf(wep).generateName).toBe(p.metadata.generateName);
    expect(specOf(wep).interfaceName).toMatch(/^cali[0-9a-f]{11}$/);
  }
  // Allowed source prefixes → allowSpoofedSourcePrefixes.
  for (const p of runningPods(sim, "worker")) {
    expect(specOf(felix.get(wepKey(p))).allowSpoofedSourcePrefixes).toEqual(["192.168.100.0/24"]);
  }
  // QoS: the Kubernetes bandwidth annotations in bits/s, Calico's burst default 4Gi where unset.
  for (const p of runningPods(sim, "api")) {
    expect(specOf(felix.get(wepKey(p))).qosControls).toEqual({
      ingressBandwidth: 100_000_000,
      ingressBurst: 4 * 1024 ** 3,
      egressBandwidth: 100_000_000,
      egressBurst: 200_000_000,
      egressPeakrate: 150_000_000,
    });
  }
  // Packet rate, connection limit ("1k" = 1000) and a DSCP name; ports of every protocol Calico spells.
  for (const p of runningPods(sim, "cache")) {
    const spec = specOf(felix.get(wepKey(p)));
    expect(spec.qosControls).toEqual({
      ingressPacketRate: 1000,
      ingressPacketBurst: 50,
      ingressMaxConnections: 1000,
      dscp: "AF21",
    });
    expect(
      (spec.ports as { name: string; protocol: string }[]).map((x) => `${x.name}/${x.protocol}`),
    ).toEqual(["http/TCP", "metrics/TCP", "gossip/UDP", "replication/SCTP"]);
  }
  // Multus' network status is the one pod annotation Calico keeps.
  for (const p of runningPods(sim, "backend")) {
    const annotations = metaOf(felix.get(wepKey(p))).annotations as Record<string, string>;
    expect(JSON.parse(annotations["k8s.v1.cni.cncf.io/network-status"]!)).toEqual([
      { name: "k8s-pod-network", ips: [podIp(p)], default: true, dns: {} },
    ]);
  }
  // Pending, finished and host-network pods have no endpoint.
  const noEndpoint = sim
    .list("pods")
    .filter((p) => (p.spec as { hostNetwork?: boolean }).hostNetwork === true || podIp(p) === undefined);
  expect(noEndpoint.length).toBeGreaterThan(0);
  for (const p of noEndpoint) expect(felix.get(wepKey(p))).toBeUndefined();

  // Nodes: VXLAN address and MAC, WireGuard address (spec) and key (status), BGP of a route reflector,
  // Calico labels overlaid by the Kubernetes ones, podCIDRs in status.
  for (const n of sim.list("nodes")) {
    const a = n.metadata.annotations ?? {};
    const node = felix.get(`Node/${n.metadata.name}`);
    const spec = specOf(node);
    expect(spec.ipv4VXLANTunnelAddr).toBe(a["projectcalico.org/IPv4VXLANTunnelAddr"]);
    expect(spec.vxlanTunnelMACAddr).toMatch(/^66(:[0-9a-f]{2}){5}$/);
    expect(spec.wireguard).toEqual({
      interfaceIPv4Address: a["projectcalico.org/IPv4WireguardInterfaceAddr"],
    });
    expect(node?.status).toEqual({
      wireguardPublicKey: a["projectcalico.org/WireguardPublicKey"],
      podCIDRs: (n.spec as { podCIDRs: string[] }).podCIDRs,
    });
    const labels = metaOf(node).labels as Record<string, string>;
    expect(labels).toMatchObject({ ...JSON.parse(a["projectcalico.org/labels"]!), ...n.metadata.labels });
  }
  const rr = felix.get("Node/node-0001");
  expect(specOf(rr).bgp).toEqual({
    asNumber: 64512,
    ipv4Address: "10.0.0.10/16",
    ipv4IPIPTunnelAddr: sim.get("nodes", undefined, "node-0001")?.metadata.annotations?.[
      "projectcalico.org/IPv4IPIPTunnelAddr"
    ],
    routeReflectorClusterID: "244.0.0.1",
  });
  expect(metaOf(rr).labels).toMatchObject({ "route-reflector": "true", "calico-rack": "rack-0" });

  // Calico's static default-allow profile, which the seeded host endpoints name.
  expect(specOf(felix.get("Profile/projectcalico-default-allow"))).toEqual({
    ingress: [{ action: "Allow" }],
    egress: [{ action: "Allow" }],
  });
  // Tiers carry Calico's defaults; the seeded ones set both.
  expect(specOf(felix.get("Tier/default"))).toEqual({ order: 1_000_000, defaultAction: "Deny" });
  // Profiles carry a uid derived from the namespace's.
  const namespace = sim.get("namespaces", undefined, "app-00")!;
  expect(metaOf(felix.get("Profile/kns.app-00")).uid).toBe(convertUid(namespace.metadata.uid));
}

/** The converted Kubernetes policies of the seed: every peer and port form it writes. */
function expectSeededPolicies(felix: TabbyClient): void {
  const ns = "app-00";
  const knp = (name: string): Json => specOf(felix.get(`KubernetesNetworkPolicy/${ns}/${name}`));
  expect(knp("allow-frontend").ingress).toEqual([
    {
      action: "Allow",
      protocol: "TCP",
      source: { nets: ["0.0.0.0/0"], notNets: ["10.0.0.0/8", "172.16.0.0/12"] },
      destination: { ports: ["http"] },
    },
  ]);
  const apiPeer = {
    selector: "projectcalico.org/orchestrator == 'k8s' && tier == 'frontend'",
    namespaceSelector: "env in { 'prod', 'staging' }",
  };
  expect(knp("allow-api").ingress).toEqual([
    { action: "Allow", protocol: "TCP", source: apiPeer, destination: { ports: ["8080:8081"] } },
    { action: "Allow", protocol: "UDP", source: apiPeer, destination: { ports: [9095] } },
  ]);
  expect((knp("allow-backend").ingress as Json[]).map((r) => r.destination)).toEqual([
    { ports: ["8080:8179"] },
    { ports: ["8080:8179"] },
  ]);
  expect(knp("allow-egress")).toMatchObject({
    selector: "projectcalico.org/orchestrator == 'k8s' && tier not in { 'db' }",
    types: ["Egress"],
  });
  expect((knp("allow-egress").egress as Json[])[2]).toEqual({
    action: "Allow",
    protocol: "TCP",
    destination: { nets: ["0.0.0.0/0"], ports: [443], notNets: ["10.0.0.0/8", "169.254.169.254/32"] },
  });
  expect(knp("allow-metrics")).toMatchObject({ order: 1000, tier: "default", types: ["Ingress"] });
  expect((knp("allow-metrics").ingress as Json[])[0]).toMatchObject({
    source: { namespaceSelector: "all()" },
    destination: { ports: ["metrics"] },
  });
}

/** A churned port range (`endPort`) is the Calico range `port:endPort`. */
function expectBackendRange(sim: Simulator, felix: TabbyClient): void {
  const np = sim.get("networkpolicies", "app-00", "allow-backend")!;
  const port = (np.spec as { ingress: { ports: { port: number; endPort: number }[] }[] }).ingress[0]!
    .ports[0]!;
  const calico = specOf(felix.get("KubernetesNetworkPolicy/app-00/allow-backend"));
  expect((calico.ingress as Json[]).map((r) => r.destination)).toEqual([
    { ports: [`${port.port}:${port.endPort}`] },
    { ports: [`${port.port}:${port.endPort}`] },
  ]);
}

describe("the simulator's Calico fields, end to end", () => {
  it("reach a client mirror as Calico's conversion gives them, and follow churn", async () => {
    const { sim, url, registry } = await stack();
    const felix = await syncedClient(url, "felix");
    expectSeededValues(sim, felix);
    expectSeededPolicies(felix);
    expect(await invalidObjects(registry)).toBe(0);

    // Calico CRs from crd.projectcalico.org/v1: the uid is derived, default-tier policies lose `default.`.
    const staged = sim.get("stagedglobalnetworkpolicies", undefined, "default.staged-deny-egress")!;
    const sgnp = felix.get("StagedGlobalNetworkPolicy/staged-deny-egress");
    expect(metaOf(sgnp).uid).toBe(convertUid(staged.metadata.uid));
    const pool = sim.get("ippools", undefined, "default-ipv4-ippool")!;
    expect(metaOf(felix.get("IPPool/default-ipv4-ippool")).uid).toBe(convertUid(pool.metadata.uid));

    // Churn: new pods, node labels through projectcalico.org/labels, policy ports; the mirror follows.
    const churn = new ChurnGenerator(sim, { ratePerSecond: 1, seed: 3 });
    churn.runOnce(300);
    const expectFollowed = (): boolean => {
      try {
        expectSeededValues(sim, felix);
        expectBackendRange(sim, felix);
        return true;
      } catch {
        return false;
      }
    };
    // On a timeout the assertion below names the value that differs.
    await until(expectFollowed, 10_000, "the mirror to follow the churn").catch(() => undefined);
    expectSeededValues(sim, felix);
    expectBackendRange(sim, felix);
    expect(churn.stats.byOp["pod-create"]).toBeGreaterThan(0);
    expect(await invalidObjects(registry)).toBe(0);
  });

  it("serves the same views with the Calico CRs from projectcalico.org/v3", async () => {
    const { sim, url, registry } = await stack("projectcalico.org/v3");
    expect(sim.apiVersionOf("ippools")).toBe("projectcalico.org/v3");
    const felix = await syncedClient(url, "felix");
    expectSeededValues(sim, felix);
    expectSeededPolicies(felix);
    expect(await invalidObjects(registry)).toBe(0);
    // The v3 resources are read as they are: their uid and name are the resource's.
    const pool = sim.get("ippools", undefined, "default-ipv4-ippool")!;
    expect(metaOf(felix.get("IPPool/default-ipv4-ippool")).uid).toBe(pool.metadata.uid);
    expect(felix.get("StagedGlobalNetworkPolicy/default.staged-deny-egress")).toBeDefined();
    const gnp = felix.get("GlobalNetworkPolicy/allow-dns-egress");
    expect(specOf(gnp)).toEqual(sim.get("globalnetworkpolicies", undefined, "allow-dns-egress")?.spec);

    // The bgp view: the same Calico kinds, from the v3 group.
    const bgp = await syncedClient(url, "bgp", "node-0001");
    expect(bgp.keys("IPPool").sort()).toEqual(
      sim
        .list("ippools")
        .map((p) => `IPPool/${p.metadata.name}`)
        .sort(),
    );
    expect(bgp.keys("BGPPeer").length).toBe(sim.list("bgppeers").length);
    expect(bgp.keys("BlockAffinity").length).toBeGreaterThan(0);
    expect(bgp.keys("Node").length).toBe(3);
  });
});
