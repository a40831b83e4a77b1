import { SimError, SimErrorCode } from "./errors.js";
import { BlockAllocator, blockIndexOf } from "./ipam.js";
import { SYSTEM_NAMESPACES } from "./seed.js";
import type { Simulator } from "./simulator.js";
import type { KubeObject } from "./types.js";
import type { Prng } from "./prng.js";

/** A set with O(1) add, delete and random pick (the churn generator's pools of candidates). */
export class PickSet<T> {
  readonly #items: T[] = [];
  readonly #index = new Map<T, number>();

  get size(): number {
    return this.#items.length;
  }

  add(v: T): void {
    if (this.#index.has(v)) return;
    this.#index.set(v, this.#items.length);
    this.#items.push(v);
  }

  delete(v: T): boolean {
    const i = this.#index.get(v);
    if (i === undefined) return false;
    const last = this.#items.pop()!;
    if (i < this.#items.length) {
      this.#items[i] = last;
      this.#index.set(last, i);
    }
    this.#index.delete(v);
    return true;
  }

  pick(rng: Prng): T | undefined {
    return this.#items.length === 0 ? undefined : this.#items[rng.int(this.#items.length)];
  }
}

export interface PodPlace {
  readonly node: string;
  readonly ip: string;
}

/** A reference to one object: resource (object-API name), namespace, name. */
export interface ObjectRef {
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string;
}

/** What the churn generator knows of the cluster, read from the simulator when it starts. */
export class ChurnModel {
  readonly nodes: string[] = [];
  readonly nodeIps = new Map<string, string>();
  readonly alloc = new BlockAllocator();
  /** Running workload pods with an IP ("ns/name"), and where they are. */
  readonly pods = new PickSet<string>();
  readonly podPlaces = new Map<string, PodPlace>();
  readonly appNamespaces: string[] = [];
  readonly k8sPolicies = new PickSet<string>();
  readonly calicoPolicies: ObjectRef[] = [];
  readonly networkSets: ObjectRef[] = [];
  readonly endpointSlices = new PickSet<string>();
  readonly hostEndpoints: string[] = [];
  readonly nodeFelixConfigs: string[] = [];
  readonly initialPods: number;

  constructor(sim: Simulator) {
    const has = (resource: string): KubeObject[] => {
      try {
        return sim.list(resource);
      } catch (err) {
        // A resource whose CRD is not installed has nothing to churn.
        if (err instanceof SimError && err.code === SimErrorCode.resourceNotFound) return [];
        throw err;
      }
    };
    for (const n of has("nodes")) {
      this.nodes.push(n.metadata.name);
      const addrs =
        (n.status as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? [];
      const ip = addrs.find((a) => a.type === "InternalIP")?.address;
      if (ip !== undefined) this.nodeIps.set(n.metadata.name, ip);
    }
    for (const b of has("ipamblocks")) {
      const spec = b.spec as
        { cidr?: string; affinity?: string; allocations?: (number | null)[] } | undefined;
      const index = spec?.cidr === undefined ? undefined : blockIndexOf(spec.cidr);
      const node = spec?.affinity?.startsWith("host:") === true ? spec.affinity.slice(5) : undefined;
      if (index === undefined || node === undefined) continue;
      this.alloc.addBlock(node, index);
    }
    for (const p of has("pods")) {
      const spec = p.spec as { nodeName?: string; hostNetwork?: boolean } | undefined;
      const status = p.status as { phase?: string; podIP?: string } | undefined;
      if (status?.podIP !== undefined && spec?.hostNetwork !== true) this.alloc.markUsed(status.podIP);
      if (status?.phase !== "Running" || status.podIP === undefined || spec?.hostNetwork === true) continue;
      if (spec?.nodeName === undefined) continue;
      const key = `${p.metadata.namespace}/${p.metadata.name}`;
      this.pods.add(key);
      this.podPlaces.set(key, { node: spec.nodeName, ip: status.podIP });
    }
    for (const n of has("nodes")) {
      for (const a of [
        "projectcalico.org/IPv4IPIPTunnelAddr",
        "projectcalico.org/IPv4VXLANTunnelAddr",
        "projectcalico.org/IPv4WireguardInterfaceAddr",
      ]) {
        const tunnel = n.metadata.annotations?.[a];
        if (tunnel !== undefined) this.alloc.markUsed(tunnel);
      }
    }
    this.initialPods = this.pods.size;
    const system = new Set<string>(SYSTEM_NAMESPACES);
    for (const ns of has("namespaces"))
      if (!system.has(ns.metadata.name)) this.appNamespaces.push(ns.metadata.name);
    for (const np of has("networkpolicies"))
      this.k8sPolicies.add(`${np.metadata.namespace}/${np.metadata.name}`);
    for (const r of ["globalnetworkpolicies", "networkpolicies.crd.projectcalico.org"]) {
      for (const o of has(r))
        this.calicoPolicies.push({ resource: r, namespace: o.metadata.namespace, name: o.metadata.name });
    }
    for (const r of ["globalnetworksets", "networksets"]) {
      for (const o of has(r))
        this.networkSets.push({ resource: r, namespace: o.metadata.namespace, name: o.metadata.name });
    }
    for (const s of has("endpointslices"))
      this.endpointSlices.add(`${s.metadata.namespace}/${s.metadata.name}`);
    for (const h of has("hostendpoints")) this.hostEndpoints.push(h.metadata.name);
    for (const f of has("felixconfigurations"))
      if (f.metadata.name.startsWith("node.")) this.nodeFelixConfigs.push(f.metadata.name);
  }
}

export function splitKey(key: string): [string, string] {
  const i = key.indexOf("/");
  return [key.slice(0, i), key.slice(i + 1)];
}
