/** Types of the values tabby serves, by Calico kind, and the typed forms of keys and updates. */
import type { CalicoCrdKinds } from "./calico-crds.generated.js";
import type { ConvertedKinds } from "./converted.js";

export type * from "./calico-crds.generated.js";
export { GENERATED_CRD_KINDS } from "./calico-crds.generated.js";
export type * from "./converted.js";
export type { CalicoMetadata, CalicoResource, Frozen } from "./resource.js";

/** Every kind a view can carry, and the type of its value. */
export interface CalicoKindMap extends CalicoCrdKinds, ConvertedKinds {}
export type CalicoKindName = keyof CalicoKindMap;
/** Any value a view can carry. */
export type CalicoValue = CalicoKindMap[CalicoKindName];

/** A key of kind K: `K/name` (cluster-scoped) or `K/namespace/name` (namespaced). */
export type CalicoKey<K extends CalicoKindName = CalicoKindName> = `${K}/${string}`;

/**
 * One change, typed by kind: `switch (u.kind)` or `if (u.kind === "IPPool")` narrows `value` to
 * `IPPool | null` (null: the key was deleted).
 */
export type TypedUpdate = {
  [K in CalicoKindName]: {
    readonly key: CalicoKey<K>;
    readonly kind: K;
    readonly value: CalicoKindMap[K] | null;
  };
}[CalicoKindName];
