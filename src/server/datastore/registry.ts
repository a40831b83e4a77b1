import type { ViewName } from "../../../proto/messages.js";
import { CRD_KINDS, NAMESPACED_KINDS, viewsOfKind } from "../../snapshot/kinds.js";
import type { CalicoKind, CrdKind } from "../../snapshot/kinds.js";
import { keyFor } from "./convert/common.js";
import { convertCalicoCrd } from "./convert/crd.js";
import {
  convertEndpointSlice,
  convertKubernetesNetworkPolicy,
  convertService,
} from "./convert/kubernetes.js";
import { convertNode, nodeKey } from "./convert/node.js";
import { convertPod, workloadEndpointKey } from "./convert/pod.js";
import {
  convertNamespace,
  convertServiceAccount,
  namespaceProfileKey,
  NAMESPACE_PROFILE_PREFIX,
  SERVICE_ACCOUNT_PROFILE_PREFIX,
  serviceAccountProfileKey,
} from "./convert/profile.js";
import type { ConvertResult, KubeObject, UpstreamResource } from "./types.js";

export const CALICO_CRD_GROUP = "crd.projectcalico.org";

function viewsOf(kinds: readonly CalicoKind[]): ViewName[] {
  const out = new Set<ViewName>();
  for (const k of kinds) for (const v of viewsOfKind(k)) out.add(v);
  return [...out];
}

/** The CRD plural of a Calico kind, as in the CRD manifests (`IPPool` → `ippools`). */
export function crdPlural(kind: CrdKind): string {
  const lower = kind.toLowerCase();
  if (lower.endsWith("y")) return `${lower.slice(0, -1)}ies`;
  if (lower.endsWith("s")) return `${lower}es`;
  return `${lower}s`;
}

function crdResource(kind: CrdKind): UpstreamResource {
  const namespaced = NAMESPACED_KINDS.has(kind);
  return {
    group: CALICO_CRD_GROUP,
    versions: ["v1"],
    plural: crdPlural(kind),
    namespaced,
    sourceKind: kind,
    kinds: [kind],
    keyPrefixes: [`${kind}/`],
    isOptional: true,
    views: viewsOf([kind]),
    convert: (obj) => convertCalicoCrd(kind, namespaced, obj),
    keyOf: (obj) => keyFor(kind, obj, namespaced),
  };
}

interface ConvertedSpec {
  group: string;
  versions: string[];
  plural: string;
  namespaced: boolean;
  sourceKind: string;
  kind: CalicoKind;
  keyPrefix: string;
  isOptional: boolean;
  convert: (obj: KubeObject) => ConvertResult;
  keyOf: (obj: KubeObject) => string | null;
}

function converted(spec: ConvertedSpec): UpstreamResource {
  return {
    group: spec.group,
    versions: spec.versions,
    plural: spec.plural,
    namespaced: spec.namespaced,
    sourceKind: spec.sourceKind,
    kinds: [spec.kind],
    keyPrefixes: [spec.keyPrefix],
    isOptional: spec.isOptional,
    views: viewsOf([spec.kind]),
    convert: spec.convert,
    keyOf: spec.keyOf,
  };
}

/**
 * Every upstream resource of DESIGN.md's resource model: one list-watch each. The Calico CRDs map 1:1 to
 * their kinds; core Kubernetes objects are converted as Calico's Kubernetes datastore does.
 */
export const RESOURCES: readonly UpstreamResource[] = [
  ...CRD_KINDS.map(crdResource),
  converted({
    group: "",
    versions: ["v1"],
    plural: "pods",
    namespaced: true,
    sourceKind: "Pod",
    kind: "WorkloadEndpoint",
    keyPrefix: "WorkloadEndpoint/",
    isOptional: false,
    convert: convertPod,
    keyOf: workloadEndpointKey,
  }),
  converted({
    group: "",
    versions: ["v1"],
    plural: "namespaces",
    namespaced: false,
    sourceKind: "Namespace",
    kind: "Profile",
    keyPrefix: `Profile/${NAMESPACE_PROFILE_PREFIX}`,
    isOptional: false,
    convert: convertNamespace,
    keyOf: namespaceProfileKey,
  }),
  converted({
    group: "",
    versions: ["v1"],
    plural: "serviceaccounts",
    namespaced: true,
    sourceKind: "ServiceAccount",
    kind: "Profile",
    keyPrefix: `Profile/${SERVICE_ACCOUNT_PROFILE_PREFIX}`,
    isOptional: false,
    convert: convertServiceAccount,
    keyOf: serviceAccountProfileKey,
  }),
  converted({
    group: "",
    versions: ["v1"],
    plural: "nodes",
    namespaced: false,
    sourceKind: "Node",
    kind: "Node",
    keyPrefix: "Node/",
    isOptional: false,
    convert: convertNode,
    keyOf: nodeKey,
  }),
  converted({
    group: "networking.k8s.io",
    versions: ["v1"],
    plural: "networkpolicies",
    namespaced: true,
    sourceKind: "NetworkPolicy",
    kind: "KubernetesNetworkPolicy",
    keyPrefix: "KubernetesNetworkPolicy/",
    isOptional: false,
    convert: convertKubernetesNetworkPolicy,
    keyOf: (obj) => keyFor("KubernetesNetworkPolicy", obj, true),
  }),
  converted({
    group: "",
    versions: ["v1"],
    plural: "services",
    namespaced: true,
    sourceKind: "Service",
    kind: "KubernetesService",
    keyPrefix: "KubernetesService/",
    isOptional: false,
    convert: convertService,
    keyOf: (obj) => keyFor("KubernetesService", obj, true),
  }),
  converted({
    group: "discovery.k8s.io",
    versions: ["v1", "v1beta1"],
    plural: "endpointslices",
    namespaced: true,
    sourceKind: "EndpointSlice",
    kind: "KubernetesEndpointSlice",
    keyPrefix: "KubernetesEndpointSlice/",
    isOptional: true,
    convert: convertEndpointSlice,
    keyOf: (obj) => keyFor("KubernetesEndpointSlice", obj, true),
  }),
];

const PLURAL_COUNT = new Map<string, number>();
for (const r of RESOURCES) PLURAL_COUNT.set(r.plural, (PLURAL_COUNT.get(r.plural) ?? 0) + 1);

/**
 * A resource's id (as the simulator names it too): its plural (`pods`, `ippools`), except for a Calico
 * CRD whose plural a Kubernetes resource also has: `networkpolicies` is networking.k8s.io's, Calico's is
 * `networkpolicies.crd.projectcalico.org`.
 */
export function resourceId(resource: UpstreamResource): string {
  const isShared = (PLURAL_COUNT.get(resource.plural) ?? 0) > 1;
  return isShared && resource.group === CALICO_CRD_GROUP
    ? `${resource.plural}.${resource.group}`
    : resource.plural;
}

const BY_ID = new Map<string, UpstreamResource>();
for (const r of RESOURCES) {
  BY_ID.set(resourceId(r), r);
  BY_ID.set(r.group === "" ? r.plural : `${r.plural}.${r.group}`, r);
}

/** Finds a resource by id (see resourceId) or by `plural.group` (`ippools.crd.projectcalico.org`). */
export function findResource(id: string): UpstreamResource | undefined {
  return BY_ID.get(id);
}

/** The resources that produce any of `kinds` (all resources when undefined). */
export function resourcesForKinds(kinds: readonly string[] | undefined): UpstreamResource[] {
  if (kinds === undefined) return [...RESOURCES];
  const wanted = new Set(kinds);
  return RESOURCES.filter((r) => r.kinds.some((k) => wanted.has(k)));
}

/**
 * Converts one upstream object of a resource (named by id, see resourceId, or `plural.group`) to its
 * snapshot key and value. Throws RangeError for an unknown resource.
 */
export function convert(resourcePlural: string, obj: KubeObject): ConvertResult {
  const resource = findResource(resourcePlural);
  if (resource === undefined) throw new RangeError(`unknown upstream resource "${resourcePlural}"`);
  return resource.convert(obj);
}
