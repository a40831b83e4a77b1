import type { ConvertResult, KubeObject } from "../types.js";
import {
  calicoValue,
  copyJson,
  keepChangedAt,
  keyFor,
  nameOf,
  namespaceOf,
  specOf,
  trimMetadata,
} from "./common.js";

/**
 * The Kubernetes kinds Felix consumes as they are (Calico's syncer passes them through unconverted):
 * the value keeps the object's spec, in the Calico value shape, without status.
 */
function passThrough(kind: string, obj: KubeObject, spec: Record<string, unknown>): ConvertResult {
  const name = nameOf(obj);
  const ns = namespaceOf(obj);
  if (name === undefined || ns === undefined) return null;
  const key = keyFor(kind, obj, true);
  if (key === null) return null;
  const metadata = trimMetadata(obj.metadata, {
    name,
    namespace: ns,
    keepLabels: true,
    keepAnnotation: keepChangedAt,
  });
  return { key, value: calicoValue(kind, metadata, spec) };
}

/** Service → `KubernetesService/<ns>/<name>` (spec only; load-balancer status is dropped). */
export function convertService(obj: KubeObject): ConvertResult {
  return passThrough("KubernetesService", obj, specOf(obj));
}

function normalizeEndpoint(endpoint: unknown): unknown {
  if (endpoint === null || typeof endpoint !== "object" || Array.isArray(endpoint)) return endpoint;
  const e = { ...(endpoint as Record<string, unknown>) };
  // discovery.k8s.io/v1beta1 carried node and zone in `topology`; v1 has `nodeName` and `zone`.
  const topology = e.topology;
  if (topology !== null && typeof topology === "object" && !Array.isArray(topology)) {
    const t = topology as Record<string, unknown>;
    const host = t["kubernetes.io/hostname"];
    const zone = t["topology.kubernetes.io/zone"];
    if (e.nodeName === undefined && typeof host === "string") e.nodeName = host;
    if (e.zone === undefined && typeof zone === "string") e.zone = zone;
    delete e.topology;
  }
  return e;
}

/**
 * EndpointSlice (discovery.k8s.io v1 or v1beta1) → `KubernetesEndpointSlice/<ns>/<name>`. An EndpointSlice
 * has no `spec`: the value's spec holds its addressType, endpoints (v1 shape) and ports. Labels are kept
 * (`kubernetes.io/service-name` ties a slice to its Service).
 */
export function convertEndpointSlice(obj: KubeObject): ConvertResult {
  const spec: Record<string, unknown> = {};
  if (typeof obj.addressType === "string") spec.addressType = obj.addressType;
  spec.endpoints = Array.isArray(obj.endpoints)
    ? (copyJson(obj.endpoints) as unknown[]).map(normalizeEndpoint)
    : [];
  if (Array.isArray(obj.ports)) spec.ports = copyJson(obj.ports);
  return passThrough("KubernetesEndpointSlice", obj, spec);
}
