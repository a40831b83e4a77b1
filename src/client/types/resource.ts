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
 * A value in a view: `{ kind, apiVersion: "projectcalico.org/v3", metadata, spec }`. A type alias, not an
 * interface, so that every typed value is also a plain `ResourceValue` (an object type with an index
 * signature accepts type-alias object types only).
 */
export type CalicoResource<K extends string, S> = {
  kind: K;
  apiVersion: "projectcalico.org/v3";
  metadata: CalicoMetadata;
  spec: S;
};
