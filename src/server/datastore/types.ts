import type { ResourceValue, ViewName } from "../../../proto/messages.js";
import type { CalicoKind } from "../../snapshot/kinds.js";

/** Object metadata as the Kubernetes API sends it (only the fields tabby reads are typed). */
export interface KubeMetadata {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly creationTimestamp?: string;
  readonly deletionTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly [field: string]: unknown;
}

/** A Kubernetes object as decoded from JSON. List items may lack `kind` and `apiVersion`. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: KubeMetadata;
  readonly [field: string]: unknown;
}

/** Why Calico refuses to convert an object (a malformed annotation): it then has no value, counted. */
export interface ConvertRejection {
  /** Stable code: ERR_CONVERT_REJECTED. */
  readonly code: "ERR_CONVERT_REJECTED";
  readonly reason: string;
}

/**
 * What converting one upstream object gives: a key and its Calico-model value; a key and null when the
 * object maps to no value (a pod without endpoint: delete the key if it is held), with `rejected` when
 * Calico refuses the object (counted as invalid); a null key and null when it maps to nothing and owns no
 * key (an unscheduled pod, whose endpoint name needs a node); or null when the object cannot be converted
 * at all (no name: ignored and counted).
 */
export type ConvertResult =
  | { key: string; value: ResourceValue }
  | { key: string | null; value: null; rejected?: ConvertRejection }
  | null;

/** One resource tabby lists and watches upstream, and what it turns into. */
export interface UpstreamResource {
  /** API group; "" for the core group (`/api/v1`). */
  readonly group: string;
  /** Versions to try, preferred first (EndpointSlice: v1, then v1beta1 on an older API server). */
  readonly versions: readonly string[];
  readonly plural: string;
  readonly namespaced: boolean;
  /** The Kubernetes kind of the objects (for logs). */
  readonly sourceKind: string;
  /** The Calico kinds this resource produces. */
  readonly kinds: readonly CalicoKind[];
  /**
   * The snapshot keys this resource owns, by prefix (`Profile/kns.` for Namespaces). A relist deletes
   * the held keys with these prefixes that the list no longer produced.
   */
  readonly keyPrefixes: readonly string[];
  /** A 404 means "not installed" (Calico CRDs, EndpointSlice): empty and in sync, checked again later. */
  readonly isOptional: boolean;
  /** The views fed by this resource's kinds. */
  readonly views: readonly ViewName[];
  /** Pure conversion of one object. */
  readonly convert: (obj: KubeObject) => ConvertResult;
  /** The key an object maps to (for a DELETED event), or null without a name. */
  readonly keyOf: (obj: KubeObject) => string | null;
}
