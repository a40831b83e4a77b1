import type { ResourceValue, ViewName } from "../../proto/messages.js";
import { VIEW_NAMES } from "../../proto/messages.js";

/** Calico kinds backed by crd.projectcalico.org/v1 CRDs. */
export const CRD_KINDS = [
  "IPPool",
  "IPReservation",
  "BGPConfiguration",
  "BGPPeer",
  "BGPFilter",
  "FelixConfiguration",
  "ClusterInformation",
  "GlobalNetworkPolicy",
  "StagedGlobalNetworkPolicy",
  "GlobalNetworkSet",
  "NetworkPolicy",
  "StagedNetworkPolicy",
  "StagedKubernetesNetworkPolicy",
  "NetworkSet",
  "Tier",
  "HostEndpoint",
  "KubeControllersConfiguration",
  "CalicoNodeStatus",
  "IPAMBlock",
  "BlockAffinity",
  "IPAMConfig",
  "IPAMHandle",
] as const;

/** Calico-model kinds converted from core Kubernetes objects. */
export const CONVERTED_KINDS = [
  "WorkloadEndpoint",
  "Profile",
  "Node",
  "KubernetesNetworkPolicy",
  "KubernetesClusterNetworkPolicy",
  "KubernetesService",
  "KubernetesEndpointSlice",
] as const;

export type CrdKind = (typeof CRD_KINDS)[number];
export type ConvertedKind = (typeof CONVERTED_KINDS)[number];
export type CalicoKind = CrdKind | ConvertedKind;
export const ALL_KINDS: readonly CalicoKind[] = [...CRD_KINDS, ...CONVERTED_KINDS];

const KIND_SET: ReadonlySet<string> = new Set(ALL_KINDS);
export function isCalicoKind(kind: string): kind is CalicoKind {
  return KIND_SET.has(kind);
}

/** Kinds whose snapshot keys carry a namespace (`Kind/namespace/name`). */
export const NAMESPACED_KINDS: ReadonlySet<CalicoKind> = new Set<CalicoKind>([
  "NetworkPolicy",
  "StagedNetworkPolicy",
  "StagedKubernetesNetworkPolicy",
  "NetworkSet",
  "WorkloadEndpoint",
  "KubernetesNetworkPolicy",
  "KubernetesService",
  "KubernetesEndpointSlice",
]);

/**
 * Kinds whose objects belong to one node and reach only that node's clients, with the function that
 * reads the owning node from a value. Everything else is broadcast.
 */
export const NODE_SCOPED_KINDS: ReadonlyMap<CalicoKind, (value: ResourceValue) => string | undefined> =
  new Map([
    ["BlockAffinity", specNode],
    ["CalicoNodeStatus", specNode],
  ]);

function specNode(value: ResourceValue): string | undefined {
  const spec = value.spec;
  if (spec === null || typeof spec !== "object") return undefined;
  const node = (spec as Record<string, unknown>).node;
  return typeof node === "string" && node !== "" ? node : undefined;
}

/** The owning node of a value of a node-scoped kind; undefined for broadcast kinds or an unowned value. */
export function nodeOf(kind: string, value: ResourceValue): string | undefined {
  const f = NODE_SCOPED_KINDS.get(kind as CalicoKind);
  return f === undefined ? undefined : f(value);
}

export interface ViewDefinition {
  readonly name: ViewName;
  readonly kinds: ReadonlySet<CalicoKind>;
  /** The node-scoped kinds of this view: a hello for this view must name its node. */
  readonly nodeScopedKinds: ReadonlySet<CalicoKind>;
}

function view(
  name: ViewName,
  kinds: readonly CalicoKind[],
  nodeScoped: readonly CalicoKind[] = [],
): ViewDefinition {
  return { name, kinds: new Set(kinds), nodeScopedKinds: new Set(nodeScoped) };
}

/** The views of DESIGN.md. Each kind is watched once and feeds every view that lists it. */
export const VIEWS: Readonly<Record<ViewName, ViewDefinition>> = {
  felix: view("felix", [
    "ClusterInformation",
    "FelixConfiguration",
    "GlobalNetworkPolicy",
    "StagedGlobalNetworkPolicy",
    "GlobalNetworkSet",
    "IPPool",
    "Node",
    "Profile",
    "WorkloadEndpoint",
    "NetworkPolicy",
    "StagedNetworkPolicy",
    "StagedKubernetesNetworkPolicy",
    "NetworkSet",
    "Tier",
    "HostEndpoint",
    "BGPConfiguration",
    "BGPPeer",
    "KubernetesNetworkPolicy",
    "KubernetesClusterNetworkPolicy",
    "KubernetesService",
    "KubernetesEndpointSlice",
    "IPAMBlock",
  ]),
  bgp: view(
    "bgp",
    ["IPPool", "BGPConfiguration", "Node", "BGPPeer", "BGPFilter", "BlockAffinity"],
    ["BlockAffinity"],
  ),
  "tunnel-ip-allocation": view("tunnel-ip-allocation", ["IPPool", "Node"]),
  "node-status": view("node-status", ["CalicoNodeStatus"], ["CalicoNodeStatus"]),
};

const VIEWS_BY_KIND = new Map<string, ViewName[]>();
for (const v of Object.values(VIEWS)) {
  for (const k of v.kinds) {
    const list = VIEWS_BY_KIND.get(k) ?? [];
    list.push(v.name);
    VIEWS_BY_KIND.set(k, list);
  }
}

/** The views that include a kind (empty for kinds no view serves, such as IPAMHandle). */
export function viewsOfKind(kind: string): readonly ViewName[] {
  return VIEWS_BY_KIND.get(kind) ?? [];
}

export function isNodeScoped(view: ViewName, kind: string): boolean {
  return VIEWS[view].nodeScopedKinds.has(kind as CalicoKind);
}

/** One value per view. */
export type PerView<T> = Record<ViewName, T>;

/** A record with `make(view)` for every view. */
export function perView<T>(make: (view: ViewName) => T): PerView<T> {
  return Object.fromEntries(VIEW_NAMES.map((v) => [v, make(v)])) as PerView<T>;
}
