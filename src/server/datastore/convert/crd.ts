import type { CrdKind } from "../../../snapshot/kinds.js";
import { formatKey } from "../../../snapshot/keys.js";
import type { ConvertResult, KubeObject } from "../types.js";
import {
  calicoValue,
  copyJson,
  keepCalicoAnnotations,
  nameOf,
  namespaceOf,
  specOf,
  trimMetadata,
} from "./common.js";
import { decodeString, decodeStringMap, goFoldKey, goRfc3339, GoJsonTypeError } from "./go-json.js";
import { convertUid } from "./names.js";

/**
 * Calico CRs → the Calico v3 model, as libcalico-go's customResourceClient reads them
 * (resources/customresource.go, resources/resources.go ConvertK8sResourceToCalicoResource).
 *
 * From the crd.projectcalico.org/v1 CRDs (Calico's default backing group), a CR is a v3 resource stored
 * with its v3 metadata packed in the `projectcalico.org/metadata` annotation: the v3 uid is derived
 * (ConvertUID, never the CR's own), labels and annotations are the CR's overlaid by the packed ones, the
 * creation timestamp is the packed one (else the CR's), and a policy's name is the packed one, else the CR
 * name without the `default.` prefix when the policy is in the default tier. From the native
 * projectcalico.org/v3 CRDs the object is already the v3 resource and is read as it is.
 */

/** The annotation holding a v1 CR's v3 metadata (JSON of a metav1.ObjectMeta). */
export const METADATA_ANNOTATION = "projectcalico.org/metadata";

/** The backing API group of the Calico CRs (Calico's CALICO_API_GROUP). */
export type CrdApiGroup = "crd.projectcalico.org/v1" | "projectcalico.org/v3";

/** Kinds whose value is a status report: their `status` is kept. */
const STATUS_KINDS: ReadonlySet<CrdKind> = new Set<CrdKind>(["CalicoNodeStatus"]);

/** The kinds whose v3 name Calico stores in the metadata annotation (determinePolicyName otherwise). */
const POLICY_KINDS: ReadonlySet<CrdKind> = new Set<CrdKind>([
  "GlobalNetworkPolicy",
  "NetworkPolicy",
  "StagedGlobalNetworkPolicy",
  "StagedNetworkPolicy",
]);

/** The order Calico gives a Tier without one (apiv3.DefaultTierOrder), and its default action. */
export const DEFAULT_TIER_ORDER = 1_000_000;
const DEFAULT_TIER_ACTION = "Deny";

function stringField(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/**
 * A v1 BlockAffinity's spec as the v3 BlockAffinitySpec (ipamAffinityVersionConverter,
 * resources/ipam_affinity_v3.go): the v1 CRD keeps `deleted` as a string ("for compatibility with older
 * releases"), the v3 resource has a boolean, true exactly when the string is "true". Fields in the Go
 * struct's order and JSON form: `state`, `node`, `cidr` always (empty when absent), `type` only when set,
 * `deleted` always; anything else in the v1 spec is not in the struct and is dropped.
 */
function blockAffinitySpecV3(spec: Record<string, unknown>): Record<string, unknown> {
  const type = stringField(spec.type);
  return {
    state: stringField(spec.state),
    node: stringField(spec.node),
    ...(type === "" ? {} : { type }),
    cidr: stringField(spec.cidr),
    deleted: spec.deleted === "true",
  };
}

/**
 * The spec of a CR as Calico's client reads it, after its versionconverter: the Tier's (tierDefaulter,
 * lib/resources DefaultTierFields) fills in `order` (1000000) and `defaultAction` (Deny) when absent, for
 * either API group; a v1 BlockAffinity becomes the v3 spec (blockAffinitySpecV3). Other kinds, and every
 * native v3 CR, are kept as they are.
 */
function calicoSpec(kind: CrdKind, obj: KubeObject, apiGroup: CrdApiGroup): Record<string, unknown> {
  const spec = specOf(obj);
  if (kind === "BlockAffinity" && apiGroup === "crd.projectcalico.org/v1") return blockAffinitySpecV3(spec);
  if (kind !== "Tier") return spec;
  const order = spec.order ?? DEFAULT_TIER_ORDER;
  const defaultAction = spec.defaultAction ?? DEFAULT_TIER_ACTION;
  return { ...spec, order, defaultAction };
}

/** A v1 CR Calico cannot read (its uid is no UUID, its metadata annotation does not parse). */
class CrdRejectedError extends Error {}

/** The fields of the packed v3 metadata tabby uses, as Go's json.Unmarshal into metav1.ObjectMeta reads them. */
interface PackedMetadata {
  name?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** An int64 field (generation, deletionGracePeriodSeconds): a JSON integer or null. */
function checkInt64(field: string, value: unknown): void {
  if (value === null) return;
  if (typeof value !== "number" || !Number.isInteger(value) || Math.abs(value) > 2 ** 63) {
    throw new GoJsonTypeError(`${field} is not an int64`);
  }
}

/** A metav1.Time field: null or an RFC 3339 string; its UTC form, or null for the zero time. */
function decodeTime(field: string, value: unknown): string | null {
  if (value === null) return null;
  const t = typeof value === "string" ? goRfc3339(value) : undefined;
  if (t === undefined) throw new GoJsonTypeError(`${field} is not an RFC 3339 time`);
  return t;
}

function checkBool(field: string, value: unknown): void {
  if (value !== null && typeof value !== "boolean") throw new GoJsonTypeError(`${field} is not a bool`);
}

/** A JSON list of structs: each entry's fields checked by `check` (a null entry is the zero struct). */
function forEachStruct(
  field: string,
  value: unknown,
  check: (key: string, v: unknown, entry: Record<string, string>) => void,
): Record<string, string>[] {
  if (value === null) return [];
  if (!Array.isArray(value)) throw new GoJsonTypeError(`${field} is not a list`);
  return (value as unknown[]).map((e) => {
    if (e !== null && (typeof e !== "object" || Array.isArray(e))) {
      throw new GoJsonTypeError(`${field} has an entry that is not an object`);
    }
    const entry: Record<string, string> = {};
    for (const [k, v] of Object.entries((e ?? {}) as Record<string, unknown>)) check(goFoldKey(k), v, entry);
    return entry;
  });
}

const OWNER_STRINGS = new Set(["APIVERSION", "KIND", "NAME", "UID"]);
const MANAGED_FIELDS_STRINGS = new Set(["MANAGER", "OPERATION", "APIVERSION", "FIELDSTYPE", "SUBRESOURCE"]);
const META_STRINGS = new Set(["GENERATENAME", "NAMESPACE", "SELFLINK", "UID", "RESOURCEVERSION"]);

/**
 * The packed metadata as json.Unmarshal into metav1.ObjectMeta reads it (go-json.ts): keys matched
 * case-insensitively, null as the zero value, any type mismatch in any ObjectMeta field failing the CR;
 * then, as ConvertK8sResourceToCalicoResource does, the uid of every crd.projectcalico.org/v1 or
 * projectcalico.org/v3 owner converted (one that is no UUID fails the CR).
 */
function parsePackedMetadata(text: string): PackedMetadata {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CrdRejectedError(`${METADATA_ANNOTATION}: not JSON`);
  }
  if (parsed === null) return {};
  const r = record(parsed);
  if (r === undefined) throw new CrdRejectedError(`${METADATA_ANNOTATION}: not a JSON object`);
  let name = "";
  let labels: Record<string, string> | undefined;
  let annotations: Record<string, string> | undefined;
  let creationTimestamp: string | null = null;
  let owners: Record<string, string>[] = [];
  try {
    for (const [key, v] of Object.entries(r)) {
      const field = goFoldKey(key);
      if (field === "NAME") name = decodeString("name", v, name);
      else if (field === "LABELS") labels = decodeStringMap("labels", v, labels);
      else if (field === "ANNOTATIONS") annotations = decodeStringMap("annotations", v, annotations);
      else if (field === "CREATIONTIMESTAMP") creationTimestamp = decodeTime("creationTimestamp", v);
      else if (field === "DELETIONTIMESTAMP") decodeTime("deletionTimestamp", v);
      else if (META_STRINGS.has(field)) decodeString(key, v, "");
      else if (field === "GENERATION" || field === "DELETIONGRACEPERIODSECONDS") checkInt64(key, v);
      else if (field === "FINALIZERS") {
        if (v !== null && !Array.isArray(v)) throw new GoJsonTypeError("finalizers is not a list");
        for (const f of (v ?? []) as unknown[]) decodeString("finalizers", f, "");
      } else if (field === "OWNERREFERENCES") {
        owners = forEachStruct("ownerReferences", v, (k, value, entry) => {
          if (OWNER_STRINGS.has(k)) entry[k] = decodeString(`ownerReferences.${k}`, value, entry[k] ?? "");
          else if (k === "CONTROLLER" || k === "BLOCKOWNERDELETION") checkBool(`ownerReferences.${k}`, value);
        });
      } else if (field === "MANAGEDFIELDS") {
        forEachStruct("managedFields", v, (k, value) => {
          if (MANAGED_FIELDS_STRINGS.has(k)) decodeString(`managedFields.${k}`, value, "");
          else if (k === "TIME") decodeTime("managedFields.time", value);
        });
      }
    }
  } catch (err) {
    if (err instanceof GoJsonTypeError) throw new CrdRejectedError(`${METADATA_ANNOTATION}: ${err.message}`);
    throw err;
  }
  for (const owner of owners) {
    const apiVersion = owner.APIVERSION ?? "";
    if (apiVersion !== "crd.projectcalico.org/v1" && apiVersion !== "projectcalico.org/v3") continue;
    if (convertUid(owner.UID ?? "") === undefined) {
      throw new CrdRejectedError(`${METADATA_ANNOTATION}: owner uid "${owner.UID ?? ""}" is not a UUID`);
    }
  }
  const out: PackedMetadata = {};
  if (name !== "") out.name = name;
  if (labels !== undefined) out.labels = labels;
  if (annotations !== undefined) out.annotations = annotations;
  if (creationTimestamp !== null) out.creationTimestamp = creationTimestamp;
  return out;
}

function packedMetadataOf(obj: KubeObject): PackedMetadata | undefined {
  const text = record(obj.metadata?.annotations)?.[METADATA_ANNOTATION];
  return typeof text === "string" ? parsePackedMetadata(text) : undefined;
}

/** determinePolicyName: a default-tier (or tier-less) policy CR `default.<name>` is the v3 policy `<name>`. */
function policyName(crName: string, obj: KubeObject): string {
  const tier = record(obj.spec)?.tier;
  const isDefaultTier = tier === undefined || tier === null || tier === "" || tier === "default";
  return isDefaultTier && crName.startsWith("default.") ? crName.slice("default.".length) : crName;
}

/** The v3 name of a v1 CR (throws CrdRejectedError for a metadata annotation that does not parse). */
function v3Name(kind: CrdKind, crName: string, obj: KubeObject, packed: PackedMetadata | undefined): string {
  if (packed?.name !== undefined) return packed.name;
  return POLICY_KINDS.has(kind) ? policyName(crName, obj) : crName;
}

/** The name of an object as a key part: non-empty, no `/`. */
function validName(name: string): string | undefined {
  return name !== "" && !name.includes("/") ? name : undefined;
}

function crdKey(kind: CrdKind, namespaced: boolean, name: string, obj: KubeObject): string | null {
  if (!namespaced) return formatKey(kind, name);
  const ns = namespaceOf(obj);
  return ns === undefined ? null : formatKey(kind, name, ns);
}

/**
 * The key of a Calico CR: `Kind/name` or `Kind/ns/name` with the v3 name (see the module comment); null
 * without a (valid) name or namespace. A v1 CR whose metadata annotation does not parse keeps its CR name.
 */
export function calicoCrdKey(
  kind: CrdKind,
  namespaced: boolean,
  obj: KubeObject,
  apiGroup: CrdApiGroup = "crd.projectcalico.org/v1",
): string | null {
  const crName = nameOf(obj);
  if (crName === undefined) return null;
  let name = crName;
  if (apiGroup === "crd.projectcalico.org/v1") {
    try {
      name = validName(v3Name(kind, crName, obj, packedMetadataOf(obj))) ?? crName;
    } catch (err) {
      if (!(err instanceof CrdRejectedError)) throw err;
    }
  }
  return crdKey(kind, namespaced, name, obj);
}

/**
 * A Calico CR → `Kind/name` or `Kind/ns/name`, trimmed: spec kept, status dropped (except
 * CalicoNodeStatus), Calico annotations and changed-at kept. From the v1 CRDs the metadata is unpacked and
 * the uid derived as Calico does (module comment); a CR Calico cannot read is rejected (no value, counted).
 */
export function convertCalicoCrd(
  kind: CrdKind,
  namespaced: boolean,
  obj: KubeObject,
  apiGroup: CrdApiGroup = "crd.projectcalico.org/v1",
): ConvertResult {
  const crName = nameOf(obj);
  if (crName === undefined) return null;
  const ns = namespaced ? namespaceOf(obj) : undefined;
  if (namespaced && ns === undefined) return null;
  const status = obj.status;
  const extra =
    STATUS_KINDS.has(kind) && status !== null && typeof status === "object"
      ? { status: copyJson(status) }
      : undefined;
  if (apiGroup === "projectcalico.org/v3") {
    const metadata = trimMetadata(obj.metadata, {
      name: crName,
      namespace: ns,
      keepLabels: true,
      keepAnnotation: keepCalicoAnnotations,
    });
    const v3Key = crdKey(kind, namespaced, crName, obj);
    return v3Key === null
      ? null
      : { key: v3Key, value: calicoValue(kind, metadata, calicoSpec(kind, obj, apiGroup), extra) };
  }

  let packed: PackedMetadata | undefined;
  let name = crName;
  let uid: string | undefined;
  try {
    packed = packedMetadataOf(obj);
    const v3 = validName(v3Name(kind, crName, obj, packed));
    if (v3 === undefined)
      throw new CrdRejectedError(`${METADATA_ANNOTATION}: name "${packed?.name ?? ""}" is invalid`);
    name = v3;
    const crUid = typeof obj.metadata?.uid === "string" ? obj.metadata.uid : "";
    // "We NEVER want to use the UID from the underlying CR": the v3 uid is derived from it.
    uid = crUid === "" ? "" : convertUid(crUid);
    if (uid === undefined) throw new CrdRejectedError(`uid "${crUid}" is not a UUID`);
  } catch (err) {
    if (!(err instanceof CrdRejectedError)) throw err;
    return {
      key: crdKey(kind, namespaced, name, obj),
      value: null,
      rejected: { code: "ERR_CONVERT_REJECTED", reason: err.message },
    };
  }
  const key = crdKey(kind, namespaced, name, obj);
  if (key === null) return null;
  const metadata = trimMetadata(obj.metadata, {
    name,
    namespace: ns,
    uid,
    keepLabels: true,
    keepAnnotation: (k) => k !== METADATA_ANNOTATION && keepCalicoAnnotations(k),
  });
  if (packed?.labels !== undefined && Object.keys(packed.labels).length > 0) {
    metadata.labels = { ...metadata.labels, ...packed.labels };
  }
  if (packed?.annotations !== undefined && Object.keys(packed.annotations).length > 0) {
    // The packed annotations are the v3 resource's own: all kept, but never the kubectl apply record.
    const own = { ...packed.annotations };
    delete own["kubectl.kubernetes.io/last-applied-configuration"];
    if (Object.keys(own).length > 0) metadata.annotations = { ...metadata.annotations, ...own };
  }
  if (packed?.creationTimestamp !== undefined) metadata.creationTimestamp = packed.creationTimestamp;
  return { key, value: calicoValue(kind, metadata, calicoSpec(kind, obj, apiGroup), extra) };
}
