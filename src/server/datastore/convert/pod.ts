import { createHash } from "node:crypto";
import { formatKey } from "../../../snapshot/keys.js";
import type { ConvertResult, KubeObject } from "../types.js";
import {
  annotationOf,
  calicoValue,
  keepChangedAt,
  labelsOf,
  nameOf,
  namespaceOf,
  toCidr,
  trimMetadata,
} from "./common.js";
import { namespaceProfileName, serviceAccountProfileName } from "./profile.js";

export const ANNOTATION_POD_IP = "cni.projectcalico.org/podIP";
export const ANNOTATION_POD_IPS = "cni.projectcalico.org/podIPs";
export const ANNOTATION_CONTAINER_ID = "cni.projectcalico.org/containerID";
export const LABEL_NAMESPACE = "projectcalico.org/namespace";
export const LABEL_ORCHESTRATOR = "projectcalico.org/orchestrator";
export const LABEL_SERVICE_ACCOUNT = "projectcalico.org/serviceaccount";

/** The host side veth name Calico's CNI plugin gives a pod: `cali` + 11 hex chars of sha1("<ns>.<pod>"). */
export function vethNameForPod(namespace: string, pod: string): string {
  return "cali" + createHash("sha1").update(`${namespace}.${pod}`).digest("hex").slice(0, 11);
}

export function workloadEndpointKey(obj: KubeObject): string | null {
  const name = nameOf(obj);
  const ns = namespaceOf(obj);
  return name === undefined || ns === undefined ? null : formatKey("WorkloadEndpoint", name, ns);
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

/** A pod that is done: Succeeded/Failed, or being deleted after Calico's CNI released its IP. */
export function isFinishedPod(obj: KubeObject): boolean {
  const phase = str(record(obj.status).phase);
  if (phase === "Succeeded" || phase === "Failed" || phase === "Completed") return true;
  return typeof obj.metadata?.deletionTimestamp === "string" && annotationOf(obj, ANNOTATION_POD_IP) === "";
}

/**
 * The pod's IPs as CIDRs: status.podIPs, else status.podIP, else the Calico podIPs annotation, else the
 * podIP annotation. Malformed entries are dropped.
 */
export function podIPs(obj: KubeObject): string[] {
  const status = record(obj.status);
  let raw: string[] = array(status.podIPs)
    .map((e) => str(record(e).ip))
    .filter((s) => s !== "");
  if (raw.length === 0 && str(status.podIP) !== "") raw = [str(status.podIP)];
  if (raw.length === 0)
    raw = (annotationOf(obj, ANNOTATION_POD_IPS) ?? "").split(",").filter((s) => s !== "");
  if (raw.length === 0) {
    const single = annotationOf(obj, ANNOTATION_POD_IP) ?? "";
    if (single !== "") raw = [single];
  }
  const out: string[] = [];
  for (const ip of raw) {
    const cidr = toCidr(ip);
    if (cidr !== undefined && !out.includes(cidr)) out.push(cidr);
  }
  return out;
}

export interface EndpointPort {
  name: string;
  protocol: "tcp" | "udp" | "sctp";
  port: number;
  hostPort?: number;
  hostIP?: string;
}

/** Named (or host-mapped) container ports of containers and init containers, as Calico maps them. */
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
      const proto = str(port.protocol).toUpperCase();
      const protocol =
        proto === "" || proto === "TCP"
          ? "tcp"
          : proto === "UDP"
            ? "udp"
            : proto === "SCTP"
              ? "sctp"
              : undefined;
      if (protocol === undefined) continue;
      const ep: EndpointPort = { name, protocol, port: containerPort };
      if (hostPort !== 0) ep.hostPort = hostPort;
      if (str(port.hostIP) !== "") ep.hostIP = str(port.hostIP);
      out.push(ep);
    }
  }
  return out;
}

/**
 * Pod → `WorkloadEndpoint/<ns>/<pod>`. Host-network pods, unscheduled pods, pods without an IP yet and
 * finished pods have no endpoint: the result then carries a null value (delete the key if held).
 */
export function convertPod(obj: KubeObject): ConvertResult {
  const name = nameOf(obj);
  const ns = namespaceOf(obj);
  if (name === undefined || ns === undefined) return null;
  const key = formatKey("WorkloadEndpoint", name, ns);
  const spec = record(obj.spec);
  const node = str(spec.nodeName);
  if (spec.hostNetwork === true || node === "" || isFinishedPod(obj)) return { key, value: null };
  const ipNetworks = podIPs(obj);
  if (ipNetworks.length === 0) return { key, value: null };

  const serviceAccount = str(spec.serviceAccountName);
  const labels: Record<string, string> = { ...labelsOf(obj) };
  labels[LABEL_NAMESPACE] = ns;
  labels[LABEL_ORCHESTRATOR] = "k8s";
  // Calico adds the label only when it fits a label value (< 63 characters).
  if (serviceAccount !== "" && serviceAccount.length < 63) labels[LABEL_SERVICE_ACCOUNT] = serviceAccount;
  const profiles = [namespaceProfileName(ns)];
  if (serviceAccount !== "") profiles.push(serviceAccountProfileName(ns, serviceAccount));

  const metadata = trimMetadata(obj.metadata, {
    name,
    namespace: ns,
    keepLabels: false,
    keepAnnotation: keepChangedAt,
  });
  metadata.labels = labels;
  const out: Record<string, unknown> = {
    orchestrator: "k8s",
    node,
    pod: name,
    endpoint: "eth0",
    interfaceName: vethNameForPod(ns, name),
    profiles,
    ipNetworks,
  };
  const containerID = annotationOf(obj, ANNOTATION_CONTAINER_ID);
  if (containerID !== undefined && containerID !== "") out.containerID = containerID;
  if (serviceAccount !== "") out.serviceAccountName = serviceAccount;
  const ports = endpointPorts(obj);
  if (ports.length > 0) out.ports = ports;
  return { key, value: calicoValue("WorkloadEndpoint", metadata, out) };
}
