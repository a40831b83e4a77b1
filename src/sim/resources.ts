import { SimError, SimErrorCode } from "./errors.js";

/** One served resource type (a REST collection). */
export interface ResourceDef {
  /**
   * The name the object API, request counters and fault options use: the plural (`pods`, `ippools`), or
   * `plural.group` when another resource has the same plural (the Calico `networkpolicies.crd.projectcalico.org`
   * next to the Kubernetes `networkpolicies`). `plural.group` is always accepted too.
   */
  readonly id: string;
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  /** "v1" for the core group, else "group/version". */
  readonly apiVersion: string;
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly listKind: string;
  readonly isNamespaced: boolean;
  /** Served from a CRD manifest, so it can be installed and uninstalled. */
  readonly isCrd: boolean;
  readonly shortNames: readonly string[];
}

export type EndpointSliceVersion = "v1" | "v1beta1";

interface DefInput {
  group: string;
  version: string;
  plural: string;
  kind: string;
  isNamespaced: boolean;
  isCrd: boolean;
  singular?: string;
  shortNames?: readonly string[];
}

export function resourceDef(d: DefInput, id: string = d.plural): ResourceDef {
  return {
    id,
    group: d.group,
    version: d.version,
    apiVersion: d.group === "" ? d.version : `${d.group}/${d.version}`,
    plural: d.plural,
    singular: d.singular ?? d.kind.toLowerCase(),
    kind: d.kind,
    listKind: `${d.kind}List`,
    isNamespaced: d.isNamespaced,
    isCrd: d.isCrd,
    shortNames: d.shortNames ?? [],
  };
}

/** The built-in Kubernetes resources the simulator serves. */
export function builtinResources(endpointSliceVersion: EndpointSliceVersion): ResourceDef[] {
  const core = (plural: string, kind: string, isNamespaced: boolean, shortNames: string[]): ResourceDef =>
    resourceDef({ group: "", version: "v1", plural, kind, isNamespaced, isCrd: false, shortNames });
  return [
    core("pods", "Pod", true, ["po"]),
    core("namespaces", "Namespace", false, ["ns"]),
    core("serviceaccounts", "ServiceAccount", true, ["sa"]),
    core("nodes", "Node", false, ["no"]),
    core("services", "Service", true, ["svc"]),
    resourceDef({
      group: "networking.k8s.io",
      version: "v1",
      plural: "networkpolicies",
      kind: "NetworkPolicy",
      isNamespaced: true,
      isCrd: false,
      shortNames: ["netpol"],
    }),
    // sigs.k8s.io/network-policy-api's ClusterNetworkPolicy (a CRD in a real cluster; always served here).
    resourceDef({
      group: "policy.networking.k8s.io",
      version: "v1alpha2",
      plural: "clusternetworkpolicies",
      kind: "ClusterNetworkPolicy",
      isNamespaced: false,
      isCrd: false,
      shortNames: ["cnp"],
    }),
    resourceDef({
      group: "discovery.k8s.io",
      version: endpointSliceVersion,
      plural: "endpointslices",
      kind: "EndpointSlice",
      isNamespaced: true,
      isCrd: false,
    }),
  ];
}

export const CALICO_CRD_GROUP = "crd.projectcalico.org";
export const CALICO_V3_GROUP = "projectcalico.org";

/** A Calico CRD (crd.projectcalico.org/v1) as the native projectcalico.org/v3 CRD of the same kind. */
export function asNativeV3(d: ResourceDef): ResourceDef {
  if (d.group !== CALICO_CRD_GROUP) return d;
  return resourceDef(
    {
      group: CALICO_V3_GROUP,
      version: "v3",
      plural: d.plural,
      kind: d.kind,
      isNamespaced: d.isNamespaced,
      isCrd: d.isCrd,
      singular: d.singular,
      shortNames: d.shortNames,
    },
    d.id,
  );
}

/**
 * Every resource the simulator knows (built-in and CRD), and which CRDs are installed. Resolves the names of
 * the object API and the (group, version, plural) of request paths.
 */
export class ResourceRegistry {
  readonly #byId = new Map<string, ResourceDef>();
  readonly #byPath = new Map<string, ResourceDef>();
  readonly #installed = new Set<ResourceDef>();
  readonly #all: readonly ResourceDef[];

  constructor(builtins: readonly ResourceDef[], crds: readonly ResourceDef[]) {
    const taken = new Set(builtins.map((d) => d.plural));
    const all: ResourceDef[] = [...builtins];
    for (const c of crds) all.push(taken.has(c.plural) ? { ...c, id: `${c.plural}.${c.group}` } : c);
    this.#all = all;
    for (const d of all) {
      const path = pathKey(d.group, d.version, d.plural);
      if (this.#byPath.has(path)) {
        throw new SimError(SimErrorCode.crdManifest, `resource ${path} is defined twice`);
      }
      this.#byPath.set(path, d);
      this.#byId.set(d.id, d);
      this.#byId.set(`${d.plural}.${d.group === "" ? "core" : d.group}`, d);
      // Served as native v3 CRDs, the Calico resources keep their v1 names as aliases.
      if (d.group === CALICO_V3_GROUP && d.isCrd) this.#byId.set(`${d.plural}.${CALICO_CRD_GROUP}`, d);
      if (!d.isCrd) this.#installed.add(d);
    }
  }

  /** All known definitions (installed or not). */
  get all(): readonly ResourceDef[] {
    return this.#all;
  }

  /** The definition for an object-API name; throws ERR_SIM_RESOURCE_NOT_FOUND for an unknown name. */
  get(name: string): ResourceDef {
    const d = this.#byId.get(name);
    if (d === undefined) throw new SimError(SimErrorCode.resourceNotFound, `unknown resource "${name}"`);
    return d;
  }

  /** The CRD-backed definition for a plural or `plural.group`. */
  getCrd(name: string): ResourceDef {
    const d = this.#byId.get(name);
    if (d?.isCrd === true) return d;
    const crd = this.#all.find((c) => c.isCrd && c.plural === name);
    if (crd === undefined) throw new SimError(SimErrorCode.resourceNotFound, `no CRD manifest for "${name}"`);
    return crd;
  }

  /** The definition (installed or not) of a path's group, version and plural, or undefined. */
  atPath(group: string, version: string, plural: string): ResourceDef | undefined {
    return this.#byPath.get(pathKey(group, version, plural));
  }

  isInstalled(d: ResourceDef): boolean {
    return this.#installed.has(d);
  }

  /** Returns false when it was already installed. */
  install(d: ResourceDef): boolean {
    if (this.#installed.has(d)) return false;
    this.#installed.add(d);
    return true;
  }

  /** Returns false when it was not installed. */
  uninstall(d: ResourceDef): boolean {
    return this.#installed.delete(d);
  }

  installed(): ResourceDef[] {
    return this.#all.filter((d) => this.#installed.has(d));
  }
}

function pathKey(group: string, version: string, plural: string): string {
  return `${group}/${version}/${plural}`;
}
