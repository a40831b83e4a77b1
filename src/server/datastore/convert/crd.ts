import type { CrdKind } from "../../../snapshot/kinds.js";
import type { ConvertResult, KubeObject } from "../types.js";
import {
  calicoValue,
  copyJson,
  keepCalicoAnnotations,
  keyFor,
  nameOf,
  namespaceOf,
  specOf,
  trimMetadata,
} from "./common.js";

/** Kinds whose value is a status report: their `status` is kept. */
const STATUS_KINDS: ReadonlySet<CrdKind> = new Set<CrdKind>(["CalicoNodeStatus"]);

/**
 * A Calico CRD object (crd.projectcalico.org/v1) → `Kind/name` or `Kind/ns/name`, trimmed: spec kept,
 * status dropped (except CalicoNodeStatus), Calico annotations and changed-at kept.
 */
export function convertCalicoCrd(kind: CrdKind, namespaced: boolean, obj: KubeObject): ConvertResult {
  const name = nameOf(obj);
  if (name === undefined) return null;
  const key = keyFor(kind, obj, namespaced);
  if (key === null) return null;
  const metadata = trimMetadata(obj.metadata, {
    name,
    namespace: namespaced ? namespaceOf(obj) : undefined,
    keepLabels: true,
    keepAnnotation: keepCalicoAnnotations,
  });
  const status = obj.status;
  const extra =
    STATUS_KINDS.has(kind) && status !== null && typeof status === "object"
      ? { status: copyJson(status) }
      : undefined;
  return { key, value: calicoValue(kind, metadata, specOf(obj), extra) };
}
