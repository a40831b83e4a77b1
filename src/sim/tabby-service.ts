import type { Simulator } from "./simulator.js";

/** One replica of a tabby Deployment, as its EndpointSlice endpoint shows it. */
export interface TabbyReplicaEndpoint {
  readonly ip: string;
  /** The agent port (EndpointSlice port "tabby"). Default 5473. */
  readonly agentPort?: number;
  /** The /status port (EndpointSlice port "metrics"). Default 9093. */
  readonly statusPort?: number;
  readonly nodeName?: string;
  readonly zone?: string;
  /** The pod (targetRef). Default `<service>-<index>`. */
  readonly podName?: string;
  /** Default true. */
  readonly isReady?: boolean;
}

export interface TabbyServiceOptions {
  readonly namespace: string;
  readonly service: string;
  readonly replicas: readonly TabbyReplicaEndpoint[];
  /** Endpoints per EndpointSlice (the controller's default is 100). */
  readonly maxEndpointsPerSlice?: number;
}

const SERVICE_LABEL = "kubernetes.io/service-name";

/**
 * Creates (or replaces) a tabby Service and its EndpointSlices, as the EndpointSlice controller would for
 * deploy/tabby.yaml: ports named "tabby" and "metrics", one slice per distinct port pair (replicas of one
 * Deployment share theirs; loopback servers in tests each have their own), each endpoint with its node,
 * zone, pod and ready condition, in the API version the simulator serves (v1: `nodeName`/`zone`;
 * v1beta1: `topology`). Slices of the Service that are no longer needed are deleted. Returns the slice names.
 */
export function putTabbyService(sim: Simulator, options: TabbyServiceOptions): string[] {
  const { namespace, service } = options;
  const perSlice = options.maxEndpointsPerSlice ?? 100;
  if (sim.get("services", namespace, service) === undefined) {
    sim.create("services", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: service, namespace, labels: { "app.kubernetes.io/name": service } },
      spec: {
        selector: { "app.kubernetes.io/name": service },
        ports: [
          { name: "tabby", port: 5473, targetPort: "tabby", protocol: "TCP" },
          { name: "metrics", port: 9093, targetPort: "metrics", protocol: "TCP" },
        ],
      },
    });
  }
  const apiVersion = sim.apiVersionOf("endpointslices");
  const isV1 = apiVersion.endsWith("/v1");
  const groups = new Map<string, { agentPort: number; statusPort: number; endpoints: object[] }>();
  options.replicas.forEach((r, i) => {
    const agentPort = r.agentPort ?? 5473;
    const statusPort = r.statusPort ?? 9093;
    const key = `${agentPort}/${statusPort}`;
    const group = groups.get(key) ?? { agentPort, statusPort, endpoints: [] };
    groups.set(key, group);
    const isReady = r.isReady ?? true;
    const podName = r.podName ?? `${service}-${i}`;
    const placement = isV1
      ? {
          ...(r.nodeName !== undefined && { nodeName: r.nodeName }),
          ...(r.zone !== undefined && { zone: r.zone }),
        }
      : {
          topology: {
            ...(r.nodeName !== undefined && { "kubernetes.io/hostname": r.nodeName }),
            ...(r.zone !== undefined && { "topology.kubernetes.io/zone": r.zone }),
          },
        };
    group.endpoints.push({
      addresses: [r.ip],
      conditions: isV1 ? { ready: isReady, serving: isReady, terminating: false } : { ready: isReady },
      ...placement,
      targetRef: { kind: "Pod", namespace, name: podName, uid: `uid-${podName}` },
    });
  });
  const wanted: { name: string; body: object }[] = [];
  let n = 0;
  for (const g of groups.values()) {
    for (let s = 0; s < g.endpoints.length; s += perSlice) {
      const name = `${service}-${n++}`;
      wanted.push({
        name,
        body: {
          apiVersion,
          kind: "EndpointSlice",
          metadata: {
            name,
            namespace,
            labels: {
              [SERVICE_LABEL]: service,
              "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
          },
          addressType: "IPv4",
          endpoints: g.endpoints.slice(s, s + perSlice),
          ports: [
            { name: "tabby", port: g.agentPort, protocol: "TCP" },
            { name: "metrics", port: g.statusPort, protocol: "TCP" },
          ],
        },
      });
    }
  }
  const names = new Set(wanted.map((w) => w.name));
  for (const old of sim.list("endpointslices")) {
    const meta = old.metadata as { name: string; namespace?: string; labels?: Record<string, string> };
    if (meta.namespace === namespace && meta.labels?.[SERVICE_LABEL] === service && !names.has(meta.name)) {
      sim.remove("endpointslices", namespace, meta.name);
    }
  }
  for (const w of wanted) {
    const current = sim.get("endpointslices", namespace, w.name);
    if (current === undefined) sim.create("endpointslices", w.body);
    else {
      const rv = (current.metadata as { resourceVersion?: string }).resourceVersion;
      const body = w.body as { metadata: Record<string, unknown> };
      sim.update("endpointslices", { ...body, metadata: { ...body.metadata, resourceVersion: rv } });
    }
  }
  return wanted.map((w) => w.name);
}
