/** The shape every value tabby serves has: a Calico v3 resource with trimmed metadata. */

/**
 * Trimmed metadata (no managedFields, ownerReferences, finalizers or generation). Labels are kept on the
 * Calico CRD kinds and the passed-through Kubernetes kinds; annotations only when Calico's
 * (`projectcalico.org/...`), tabby's `tabby.dev/changed-at`, or the one a WorkloadEndpoint keeps from its
 * pod (`k8s.v1.cni.cncf.io/network-status`).
 */
export interface CalicoMetadata {
  name: string;
  /** A WorkloadEndpoint's: its pod's generateName, as Calico copies it. */
  generateName?: string;
  /** Set on namespaced kinds only. */
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/**
 * T as the client hands it out: the mirror's values are deeply frozen (Object.freeze), so every field,
 * array and nested object is read-only. Copy a value (`structuredClone`) to change it.
 */
export type Frozen<T> = T extends readonly (infer U)[]
  ? readonly Frozen<U>[]
  : T extends object
    ? { readonly [P in keyof T]: Frozen<T[P]> }
    : T;

/**
 * A value in a view: `{ kind, apiVersion: "projectcalico.org/v3", metadata, spec }` (and `status` for the
 * kinds that keep one), deeply read-only as the client hands it out (Frozen). A type alias, not an
 * interface, so that every typed value is also a plain `ResourceValue` (an object type with an index
 * signature accepts type-alias object types only).
 */
export type CalicoResource<K extends string, S, St = undefined> = Frozen<
  {
    kind: K;
    apiVersion: "projectcalico.org/v3";
    metadata: CalicoMetadata;
    spec: S;
  } & ([St] extends [undefined] ? unknown : { status?: St })
>;
