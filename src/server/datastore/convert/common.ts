import type { ResourceValue } from "../../../../proto/messages.js";
import { formatKey } from "../../../snapshot/keys.js";
import type { KubeMetadata, KubeObject } from "../types.js";

/** Every value tabby serves carries this apiVersion (the Calico v3 model). */
export const CALICO_API_VERSION = "projectcalico.org/v3";

/** Stamped on changed objects by the churn generator; kept so latency can be measured downstream. */
export const CHANGED_AT_ANNOTATION = "tabby.dev/changed-at";

/** The trimmed metadata of a value. */
export interface ValueMetadata {
  name: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
}

export type AnnotationFilter = (key: string) => boolean;

/** Keeps only the changed-at annotation (converted kinds carry their Calico data in `spec`). */
export const keepChangedAt: AnnotationFilter = (key) => key === CHANGED_AT_ANNOTATION;

/**
 * Keeps the changed-at annotation and Calico's own (`projectcalico.org/...`, `*.projectcalico.org/...`);
 * everything else, `kubectl.kubernetes.io/last-applied-configuration` included, is dropped.
 */
export const keepCalicoAnnotations: AnnotationFilter = (key) => {
  if (key === CHANGED_AT_ANNOTATION) return true;
  const slash = key.indexOf("/");
  if (slash < 0) return false;
  const domain = key.slice(0, slash);
  return domain === "projectcalico.org" || domain.endsWith(".projectcalico.org");
};

function stringRecord(value: unknown): Record<string, string> | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  let count = 0;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === "string") {
      out[k] = v;
      count++;
    }
  }
  return count > 0 ? out : undefined;
}

/** The labels of an object (a copy), or an empty record. */
export function labelsOf(obj: KubeObject): Record<string, string> {
  return stringRecord(obj.metadata?.labels) ?? {};
}

/** The string annotations of an object (a copy), or an empty record. */
export function annotationsOf(obj: KubeObject): Record<string, string> {
  return stringRecord(obj.metadata?.annotations) ?? {};
}

/** An annotation of an object, or undefined. */
export function annotationOf(obj: KubeObject, key: string): string | undefined {
  const annotations = obj.metadata?.annotations;
  if (annotations === undefined || annotations === null || typeof annotations !== "object") return undefined;
  const v = (annotations as Record<string, unknown>)[key];
  return typeof v === "string" ? v : undefined;
}

/** The name of an object, or undefined when it has none (such an object is ignored). */
export function nameOf(obj: KubeObject): string | undefined {
  const name = obj.metadata?.name;
  return typeof name === "string" && name !== "" && !name.includes("/") ? name : undefined;
}

export function namespaceOf(obj: KubeObject): string | undefined {
  const ns = obj.metadata?.namespace;
  return typeof ns === "string" && ns !== "" && !ns.includes("/") ? ns : undefined;
}

/**
 * Trimmed metadata: name, namespace, uid, resourceVersion, creationTimestamp, labels (when any) and the
 * annotations the filter keeps (when any). No managedFields, ownerReferences, finalizers, generation.
 */
export function trimMetadata(
  meta: KubeMetadata | undefined,
  opts: {
    name: string;
    namespace?: string | undefined;
    keepLabels: boolean;
    keepAnnotation: AnnotationFilter;
    /** Labels to set instead of the object's (a WorkloadEndpoint's computed labels). */
    labels?: Record<string, string>;
    /** Keep `generateName` (Calico copies a pod's onto its WorkloadEndpoint). */
    keepGenerateName?: boolean;
    /** The uid to set instead of the object's (Calico derives some, see convertUid). */
    uid?: string;
  },
): ValueMetadata {
  const out: ValueMetadata = { name: opts.name };
  if (opts.keepGenerateName === true && typeof meta?.generateName === "string" && meta.generateName !== "") {
    out.generateName = meta.generateName;
  }
  if (opts.namespace !== undefined) out.namespace = opts.namespace;
  out.uid = opts.uid ?? (typeof meta?.uid === "string" ? meta.uid : "");
  out.resourceVersion = typeof meta?.resourceVersion === "string" ? meta.resourceVersion : "";
  if (typeof meta?.creationTimestamp === "string") out.creationTimestamp = meta.creationTimestamp;
  if (opts.labels !== undefined) {
    out.labels = opts.labels;
  } else if (opts.keepLabels) {
    const labels = stringRecord(meta?.labels);
    if (labels !== undefined) out.labels = labels;
  }
  const annotations = stringRecord(meta?.annotations);
  if (annotations !== undefined) {
    const kept: Record<string, string> = {};
    let count = 0;
    for (const [k, v] of Object.entries(annotations)) {
      if (opts.keepAnnotation(k)) {
        kept[k] = v;
        count++;
      }
    }
    if (count > 0) out.annotations = kept;
  }
  return out;
}

/** Builds a value of the Calico model. */
export function calicoValue(
  kind: string,
  metadata: ValueMetadata,
  spec: Record<string, unknown>,
  extra?: Record<string, unknown>,
): ResourceValue {
  return { kind, apiVersion: CALICO_API_VERSION, metadata, spec, ...extra };
}

/**
 * A deep copy of a JSON-compatible value (upstream objects are decoded JSON, so this is exact): own
 * enumerable keys only, `__proto__` copied as a plain key (as JSON.parse makes it), never as a prototype.
 * About 7× faster than structuredClone on EndpointSlice endpoints, which the datastore copies on every
 * event (bench: docs/BENCHMARKS.md, "Where the server's time goes").
 */
export function copyJson<T>(value: T): T {
  return copyValue(value) as T;
}

function copyValue(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyValue(value[i]);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = copyValue((value as Record<string, unknown>)[key]);
    if (key === "__proto__") {
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    } else {
      out[key] = v;
    }
  }
  return out;
}

/** The object's `spec` as a record, copied; `{}` when absent or not an object. */
export function specOf(obj: KubeObject): Record<string, unknown> {
  const spec = obj.spec;
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) return {};
  return copyJson(spec as Record<string, unknown>);
}

/** The key of a Kind/name or Kind/namespace/name object, or null without a (valid) name or namespace. */
export function keyFor(kind: string, obj: KubeObject, namespaced: boolean): string | null {
  const name = nameOf(obj);
  if (name === undefined) return null;
  if (!namespaced) return formatKey(kind, name);
  const ns = namespaceOf(obj);
  return ns === undefined ? null : formatKey(kind, name, ns);
}
