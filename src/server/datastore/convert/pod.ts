import { createHash } from "node:crypto";
import { formatKey } from "../../../snapshot/keys.js";
import type { ConvertResult, KubeObject } from "../types.js";
import {
  annotationOf,
  annotationsOf,
  calicoValue,
  CHANGED_AT_ANNOTATION,
  labelsOf,
  nameOf,
  namespaceOf,
  trimMetadata,
} from "./common.js";
import { NameError, workloadEndpointName } from "./names.js";
import {
  ANNOTATION_AWS_POD_IPS,
  ANNOTATION_POD_IP,
  allowedSourcePrefixes,
  floatingIpNats,
  PodRejectedError,
  podIpNetworks,
} from "./pod-network.js";
import { namespaceProfileName, serviceAccountProfileName } from "./profile.js";
import { qosControlsOf } from "./qos.js";

export {
  ANNOTATION_ALLOWED_SOURCE_PREFIXES,
  ANNOTATION_AWS_POD_IPS,
  ANNOTATION_FLOATING_IPS,
  ANNOTATION_POD_IP,
  ANNOTATION_POD_IPS,
} from "./pod-network.js";
export const ANNOTATION_CONTAINER_ID = "cni.projectcalico.org/containerID";
/** The one pod annotation Calico copies onto the WorkloadEndpoint (Multus' network status). */
export const ANNOTATION_NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status";
export const LABEL_NAMESPACE = "projectcalico.org/namespace";
export const LABEL_ORCHESTRATOR = "projectcalico.org/orchestrator";
export const LABEL_SERVICE_ACCOUNT = "projectcalico.org/serviceaccount";
/** Felix's default interface prefix (FELIX_INTERFACEPREFIX). */
export const DEFAULT_INTERFACE_PREFIX = "cali";

export interface PodConvertOptions {
  /**
   * Felix's interface prefix (FELIX_INTERFACEPREFIX): the host-side veth is this + 11 hex chars. A comma
   * list is allowed, as in Felix; the first entry names the veth. Default `cali`.
   */
  interfacePrefix?: string;
}

/**
 * The host side veth name Calico's CNI plugin gives a pod: the interface prefix (the first of a comma
 * list; `cali` by default) + the first 11 hex chars of sha1("<ns>.<pod>").
 */
export function vethNameForPod(
  namespace: string,
  pod: string,
  interfacePrefix = DEFAULT_INTERFACE_PREFIX,
): string {
  const prefix = interfacePrefix === "" ? DEFAULT_INTERFACE_PREFIX : (interfacePrefix.split(",")[0] ?? "");
  return prefix + createHash("sha1").update(`${namespace}.${pod}`).digest("hex").slice(0, 11);
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function array(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/**
 * The key of a pod's endpoint: `WorkloadEndpoint/<ns>/<node>-k8s-<pod>-eth0` (Calico's name); null for a
 * pod without a name, namespace or node, or whose name Calico cannot build.
 */
export function workloadEndpointKey(obj: KubeObject): string | null {
  const name = nameOf(obj);
  const ns = namespaceOf(obj);
  const node = str(record(obj.spec).nodeName);
  if (name === undefined || ns === undefined || node === "") return null;
  try {
    return formatKey("WorkloadEndpoint", workloadEndpointName(node, name), ns);
  } catch (err) {
    if (err instanceof NameError) return null;
    throw err;
  }
}

/**
 * A pod that is done (Calico's IsFinished): Succeeded, Failed or Completed, or being deleted after the CNI
 * plugin released its IP (Calico's `podIP` annotation, or the AWS VPC CNI's `pod-ips`, set to "").
 */
export function isFinishedPod(obj: KubeObject): boolean {
  const phase = str(record(obj.status).phase);
  if (phase === "Succeeded" || phase === "Failed" || phase === "Completed") return true;
  if (typeof obj.metadata?.deletionTimestamp !== "string") return false;
  return annotationOf(obj, ANNOTATION_POD_IP) === "" || annotationOf(obj, ANNOTATION_AWS_POD_IPS) === "";
}

/** The pod's IPs as Calico's networks (`10.0.0.1/32`); malformed entries throw PodRejectedError. */
export function podIPs(obj: KubeObject): string[] {
  return podIpNetworks(obj).map((n) => n.network);
}

/** A WorkloadEndpoint port, with Calico's JSON fields (hostPort and hostIP always present). */
export interface EndpointPort {
  name: string;
  protocol: "TCP" | "UDP" | "SCTP";
  port: number;
  hostPort: number;
  hostIP: string;
}

/**
 * Container ports of containers, then init containers, that have a name or a host port, as Calico maps
 * them: the protocol spelled `TCP`, `UDP` or `SCTP` (empty is TCP); other protocols are skipped.
 */
export function endpointPorts(obj: KubeObject): EndpointPort[] {
  const spec = record(obj.spec);
  const out: EndpointPort[] = [];
  for (const c of [...array(spec.containers), ...array(spec.initContainers)]) {
    for (const p of array(record(c).ports)) {
      const port = record(p);
      const containerPort = typeof port.containerPort === "number" ? port.containerPort : 0;
      const hostPort = typeof port.hostPort === "number" ? port.hostPort : 0;
      const name = str(port.name);
      if (containerPort === 0 || (name === "" && hostPort === 0)) continue;
      // Kubernetes spells protocols in upper case; Calico matches them exactly.
      const proto = str(port.protocol);
      const protocol =
        proto === "" || proto === "TCP" ? "TCP" : proto === "UDP" || proto === "SCTP" ? proto : undefined;
      if (protocol === undefined) continue;
      out.push({ name, protocol, port: containerPort, hostPort, hostIP: str(port.hostIP) });
    }
  }
  return out;
}

/** Runs `fn`; a PodRejectedError or NameError becomes a rejection of the pod's key. */
function rejectOnError(key: string | null, fn: () => ConvertResult): ConvertResult {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PodRejectedError || err instanceof NameError) {
      return { key, value: null, rejected: { code: "ERR_CONVERT_REJECTED", reason: err.message } };
    }
    throw err;
  }
}

/**
 * Pod → `WorkloadEndpoint/<ns>/<node>-k8s-<pod>-eth0`, as libcalico-go converts it. Host-network pods,
 * pods without an IP yet and finished pods have no endpoint (Typha's felix syncer drops them): the result
 * then carries a null value, so a held key is deleted. An unscheduled pod maps to nothing (no key: its name
 * needs the node). A pod Calico refuses (a malformed pod IP, floating IP or source prefix annotation, a
 * name Calico cannot build) is rejected: no endpoint, and the reason for the counter and the log.
 */
export function convertPod(obj: KubeObject, options: PodConvertOptions = {}): ConvertResult {
  const name = nameOf(obj);
  const ns = namespaceOf(obj);
  if (name === undefined || ns === undefined) return null;
  const spec = record(obj.spec);
  const node = str(spec.nodeName);
  if (node === "") return { key: null, value: null };
  let wepName: string;
  try {
    wepName = workloadEndpointName(node, name);
  } catch (err) {
    if (err instanceof NameError) {
      return { key: null, value: null, rejected: { code: "ERR_CONVERT_REJECTED", reason: err.message } };
    }
    throw err;
  }
  const key = formatKey("WorkloadEndpoint", wepName, ns);
  if (spec.hostNetwork === true) return { key, value: null };
  return rejectOnError(key, () => {
    const networks = podIpNetworks(obj);
    if (isFinishedPod(obj) || networks.length === 0) {
      // Calico would still parse the source prefixes (and reject a malformed value) before the syncer
      // drops the address-less endpoint; keep that error visible.
      allowedSourcePrefixes(obj);
      return { key, value: null };
    }
    const ipNATs = floatingIpNats(obj, networks);
    const sourcePrefixes = allowedSourcePrefixes(obj);

    const serviceAccount = str(spec.serviceAccountName);
    const labels: Record<string, string> = { ...labelsOf(obj) };
    labels[LABEL_NAMESPACE] = ns;
    labels[LABEL_ORCHESTRATOR] = "k8s";
    // Calico adds the label only when it fits a label value (< 63 characters).
    if (serviceAccount !== "" && serviceAccount.length < 63) labels[LABEL_SERVICE_ACCOUNT] = serviceAccount;
    const profiles = [namespaceProfileName(ns)];
    if (serviceAccount !== "") profiles.push(serviceAccountProfileName(ns, serviceAccount));

    const metadata = trimMetadata(obj.metadata, {
      name: wepName,
      namespace: ns,
      keepLabels: false,
      labels,
      keepGenerateName: true,
      keepAnnotation: (k) => k === ANNOTATION_NETWORK_STATUS || k === CHANGED_AT_ANNOTATION,
    });

    // Field order is Calico's WorkloadEndpointSpec JSON order.
    const out: Record<string, unknown> = { orchestrator: "k8s", node };
    const containerID = annotationOf(obj, ANNOTATION_CONTAINER_ID);
    if (containerID !== undefined && containerID !== "") out.containerID = containerID;
    out.pod = name;
    out.endpoint = "eth0";
    if (serviceAccount !== "") out.serviceAccountName = serviceAccount;
    out.ipNetworks = networks.map((n) => n.network);
    if (ipNATs.length > 0) out.ipNATs = ipNATs;
    out.profiles = profiles;
    out.interfaceName = vethNameForPod(ns, name, options.interfacePrefix);
    const ports = endpointPorts(obj);
    if (ports.length > 0) out.ports = ports;
    if (sourcePrefixes.length > 0) out.allowSpoofedSourcePrefixes = sourcePrefixes;
    const qos = qosControlsOf(annotationsOf(obj));
    if (qos.controls !== undefined) out.qosControls = qos.controls;
    return { key, value: calicoValue("WorkloadEndpoint", metadata, out) };
  });
}
