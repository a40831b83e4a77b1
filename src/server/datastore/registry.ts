import type { ResourceValue, ViewName } from "../../../proto/messages.js";
import { CRD_KINDS, NAMESPACED_KINDS, viewsOfKind } from "../../snapshot/kinds.js";
import type { CalicoKind, CrdKind } from "../../snapshot/kinds.js";
import { keyFor } from "./convert/common.js";
import { clusterNetworkPolicyKey, convertClusterNetworkPolicy } from "./convert/cluster-network-policy.js";
import { calicoCrdKey, convertCalicoCrd } from "./convert/crd.js";
import { convertEndpointSlice, convertService } from "./convert/kubernetes.js";
import { convertKubernetesNetworkPolicy } from "./convert/network-policy.js";
import { convertNode, nodeKey } from "./convert/node.js";
import { convertPod, workloadEndpointKey } from "./convert/pod.js";
import {
  convertNamespace,
  convertServiceAccount,
  defaultAllowProfile,
  namespaceProfileKey,
  NAMESPACE_PROFILE_PREFIX,
  SERVICE_ACCOUNT_PROFILE_PREFIX,
  serviceAccountProfileKey,
} from "./convert/profile.js";
import type { ConvertResult, KubeObject, UpstreamResource } from "./types.js";

export const CALICO_CRD_GROUP = "crd.projectcalico.org";
/** The group of Calico's native v3 CRDs (Calico's CALICO_API_GROUP=projectcalico.org/v3). */
export const CALICO_V3_GROUP = "projectcalico.org";

/** The API group/version the Calico resources are read from: the v1 CRDs (default) or native v3. */
export type CalicoApiGroup = "crd.projectcalico.org/v1" | "projectcalico.org/v3";
export const CALICO_API_GROUPS: readonly CalicoApiGroup[] = [
  "crd.projectcalico.org/v1",
  "projectcalico.org/v3",
];

/** How core Kubernetes objects are converted, and where the Calico resources are read from. */
export interface ConvertOptions {
  /** Felix's FELIX_INTERFACEPREFIX (the veth name of a WorkloadEndpoint). Default `cali`. */
  interfacePrefix?: string;
  /** calico-node's USE_POD_CIDR (host-local IPAM: tunnel addresses from the node's podCIDR). Default false. */
  usePodCidr?: boolean;
  /** Calico's CALICO_API_GROUP. Default `crd.projectcalico.org/v1`. */
  calicoApiGroup?: CalicoApiGroup;
}

/**
 * The version of what convert/ produces. Bump it with any change to a converted field: a replica resumes a
 * client's mirror (PROTOCOL.md §5.2) only when the mirror was built by the same conversion.
 */
export const CONVERSION_VERSION = 2;

/**
 * Names the conversion code and options (the welcome's `conversion`): two servers with the same id turn the
 * same upstream object (same resourceVersion) into the same value.
 */
export function conversionId(options: ConvertOptions = {}): string {
  const prefix = options.interfacePrefix ?? "cali";
  const group = options.calicoApiGroup ?? "crd.projectcalico.org/v1";
  return `tabby-convert-${CONVERSION_VERSION};if=${prefix};podcidr=${options.usePodCidr === true ? 1 : 0};api=${group}`;
}

function isCalicoGroup(group: string): boolean {
  return group === CALICO_CRD_GROUP || group === CALICO_V3_GROUP;
}

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

function crdResource(kind: CrdKind, apiGroup: CalicoApiGroup): UpstreamResource {
  const namespaced = NAMESPACED_KINDS.has(kind);
  const [group = CALICO_CRD_GROUP, version = "v1"] = apiGroup.split("/");
  return {
    group,
    versions: [version],
    plural: crdPlural(kind),
    namespaced,
    sourceKind: kind,
    kinds: [kind],
    keyPrefixes: [`${kind}/`],
    isOptional: true,
    views: viewsOf([kind]),
    convert: (obj) => convertCalicoCrd(kind, namespaced, obj, apiGroup),
    keyOf: (obj) => calicoCrdKey(kind, namespaced, obj, apiGroup),
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
export function createResources(options: ConvertOptions = {}): UpstreamResource[] {
  const podOptions =
    options.interfacePrefix === undefined ? {} : { interfacePrefix: options.interfacePrefix };
  const nodeOptions = options.usePodCidr === undefined ? {} : { usePodCidr: options.usePodCidr };
  const apiGroup = options.calicoApiGroup ?? "crd.projectcalico.org/v1";
  return [
    ...CRD_KINDS.map((k) => crdResource(k, apiGroup)),
    converted({
      group: "",
      versions: ["v1"],
      plural: "pods",
      namespaced: true,
      sourceKind: "Pod",
      kind: "WorkloadEndpoint",
      keyPrefix: "WorkloadEndpoint/",
      isOptional: false,
      convert: (obj) => convertPod(obj, podOptions),
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
      convert: (obj) => convertNode(obj, nodeOptions),
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
      // sigs.k8s.io/network-policy-api's CRD: optional, as Calico watches it only when it is installed.
      group: "policy.networking.k8s.io",
      versions: ["v1alpha2"],
      plural: "clusternetworkpolicies",
      namespaced: false,
      sourceKind: "ClusterNetworkPolicy",
      kind: "KubernetesClusterNetworkPolicy",
      keyPrefix: "KubernetesClusterNetworkPolicy/",
      isOptional: true,
      convert: convertClusterNetworkPolicy,
      keyOf: clusterNetworkPolicyKey,
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
}

/**
 * The values Calico's datastore serves that no Kubernetes object backs, for the given resources: the
 * `projectcalico-default-allow` Profile when they produce Profiles. The datastore writes them once at start;
 * anything that computes the expected views from the API's objects must add them.
 */
export function staticEntries(
  resources: readonly UpstreamResource[],
): { key: string; value: ResourceValue }[] {
  return resources.some((r) => r.kinds.includes("Profile")) ? [defaultAllowProfile()] : [];
}

/** The resources with the default conversion options. */
export const RESOURCES: readonly UpstreamResource[] = createResources();

const PLURAL_COUNT = new Map<string, number>();
for (const r of RESOURCES) PLURAL_COUNT.set(r.plural, (PLURAL_COUNT.get(r.plural) ?? 0) + 1);

/**
 * A resource's id (as the simulator names it too): its plural (`pods`, `ippools`), except for a Calico
 * CRD whose plural a Kubernetes resource also has: `networkpolicies` is networking.k8s.io's, Calico's is
 * `networkpolicies.crd.projectcalico.org`.
 */
export function resourceId(resource: UpstreamResource): string {
  const isShared = (PLURAL_COUNT.get(resource.plural) ?? 0) > 1;
  return isShared && isCalicoGroup(resource.group) ? `${resource.plural}.${resource.group}` : resource.plural;
}

/** The collection path of a resource at one of its versions: `/api/v1/pods`, `/apis/<group>/<v>/<plural>`. */
export function resourcePath(resource: UpstreamResource, version: string): string {
  const prefix = resource.group === "" ? `/api/${version}` : `/apis/${resource.group}/${version}`;
  return `${prefix}/${resource.plural}`;
}

const BY_ID = new Map<string, UpstreamResource>();
for (const r of RESOURCES) {
  BY_ID.set(resourceId(r), r);
  BY_ID.set(r.group === "" ? r.plural : `${r.plural}.${r.group}`, r);
}
// The native v3 group's resources (read as they are, see convert/crd.ts): `plural.projectcalico.org`.
for (const r of createResources({ calicoApiGroup: "projectcalico.org/v3" })) {
  if (r.group === CALICO_V3_GROUP) BY_ID.set(`${r.plural}.${CALICO_V3_GROUP}`, r);
}

/** Finds a resource by id (see resourceId) or by `plural.group` (`ippools.crd.projectcalico.org`). */
export function findResource(id: string): UpstreamResource | undefined {
  return BY_ID.get(id);
}

/** The resources that produce any of `kinds` (all resources when undefined). */
export function resourcesForKinds(
  kinds: readonly string[] | undefined,
  options: ConvertOptions = {},
): UpstreamResource[] {
  const all = createResources(options);
  if (kinds === undefined) return all;
  const wanted = new Set(kinds);
  return all.filter((r) => r.kinds.some((k) => wanted.has(k)));
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
