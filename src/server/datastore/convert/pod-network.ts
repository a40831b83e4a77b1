import type { KubeObject } from "../types.js";
import { annotationOf } from "./common.js";
import { parseCidr, parseCidrOrIp } from "./ip.js";
import type { IpNetwork } from "./ip.js";

export const ANNOTATION_POD_IP = "cni.projectcalico.org/podIP";
export const ANNOTATION_POD_IPS = "cni.projectcalico.org/podIPs";
export const ANNOTATION_AWS_POD_IPS = "vpc.amazonaws.com/pod-ips";
export const ANNOTATION_FLOATING_IPS = "cni.projectcalico.org/floatingIPs";
export const ANNOTATION_ALLOWED_SOURCE_PREFIXES = "cni.projectcalico.org/allowedSourcePrefixes";

/** A pod Calico cannot convert: the reason names the field (the pod then has no endpoint). */
export class PodRejectedError extends Error {
  readonly code = "ERR_CONVERT_REJECTED";
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/**
 * The pod's IP networks as Calico reads them (conversion.getPodIPs): `status.podIPs`, else `status.podIP`,
 * else the Calico `podIPs` annotation, else its `podIP` annotation, else the AWS VPC CNI's
 * `vpc.amazonaws.com/pod-ips`. An IP is a /32 or /128; a CIDR is kept masked. Throws PodRejectedError when
 * one of the chosen source's entries is malformed (Calico fails the whole pod).
 */
export function podIpNetworks(obj: KubeObject): IpNetwork[] {
  const status = record(obj.status);
  let raw: string[];
  const podIPs = Array.isArray(status.podIPs) ? (status.podIPs as unknown[]) : [];
  if (podIPs.length > 0) raw = podIPs.map((e) => str(record(e).ip));
  else if (str(status.podIP) !== "") raw = [str(status.podIP)];
  else if ((annotationOf(obj, ANNOTATION_POD_IPS) ?? "") !== "")
    raw = (annotationOf(obj, ANNOTATION_POD_IPS) ?? "").split(",");
  else if ((annotationOf(obj, ANNOTATION_POD_IP) ?? "") !== "")
    raw = [annotationOf(obj, ANNOTATION_POD_IP) ?? ""];
  else if ((annotationOf(obj, ANNOTATION_AWS_POD_IPS) ?? "") !== "")
    raw = (annotationOf(obj, ANNOTATION_AWS_POD_IPS) ?? "").split(",");
  else return [];
  return raw.map((ip) => {
    const net = parseCidrOrIp(ip);
    if (net === undefined) throw new PodRejectedError(`pod IP "${ip}" is not an IP or CIDR`);
    return net;
  });
}

/** A JSON array of strings, as Go's json.Unmarshal into []string reads it (`null` is an empty list). */
function stringArrayJson(annotation: string, text: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new PodRejectedError(`${annotation}: failed to parse '${text}' as JSON`);
  }
  if (parsed === null) return [];
  if (!Array.isArray(parsed) || parsed.some((e) => typeof e !== "string" && e !== null)) {
    throw new PodRejectedError(`${annotation}: '${text}' is not a JSON list of strings`);
  }
  return (parsed as (string | null)[]).map((e) => e ?? "");
}

export interface IpNat {
  internalIP: string;
  externalIP: string;
}

/**
 * `cni.projectcalico.org/floatingIPs` (a JSON list of IPs) → `ipNATs`: each floating IP mapped to the pod's
 * IP of the same family (one containing `:` is IPv6); a family the pod lacks is skipped. Throws
 * PodRejectedError for malformed JSON, or a pod IP that is not a single address (/32, /128).
 */
export function floatingIpNats(obj: KubeObject, networks: readonly IpNetwork[]): IpNat[] {
  const annotation = annotationOf(obj, ANNOTATION_FLOATING_IPS);
  if (annotation === undefined || networks.length === 0) return [];
  const ips = stringArrayJson(ANNOTATION_FLOATING_IPS, annotation);
  let v4: string | undefined;
  let v6: string | undefined;
  for (const n of networks) {
    const single = n.ip.family === 4 ? 32 : 128;
    if (n.prefixLength !== single) {
      throw new PodRejectedError(
        `pod IP ${n.network} is not a valid IPv${n.ip.family}: mask size is ${n.prefixLength}, not ${single}`,
      );
    }
    const ip = n.network.slice(0, n.network.indexOf("/"));
    if (n.ip.family === 4) v4 = ip;
    else v6 = ip;
  }
  const out: IpNat[] = [];
  for (const ip of ips) {
    const internal = ip.includes(":") ? v6 : v4;
    if (internal !== undefined) out.push({ internalIP: internal, externalIP: ip });
  }
  return out;
}

/**
 * `cni.projectcalico.org/allowedSourcePrefixes` (a JSON list of CIDRs) → `allowSpoofedSourcePrefixes`,
 * masked (`10.0.0.5/24` → `10.0.0.0/24`). An empty annotation is ignored. Throws PodRejectedError for
 * malformed JSON or an entry that is not a CIDR (a bare IP is not one).
 */
export function allowedSourcePrefixes(obj: KubeObject): string[] {
  const annotation = annotationOf(obj, ANNOTATION_ALLOWED_SOURCE_PREFIXES);
  if (annotation === undefined || annotation === "") return [];
  return stringArrayJson(ANNOTATION_ALLOWED_SOURCE_PREFIXES, annotation).map((prefix) => {
    const net = parseCidr(prefix);
    if (net === undefined) {
      throw new PodRejectedError(`${ANNOTATION_ALLOWED_SOURCE_PREFIXES}: '${prefix}' is not a CIDR`);
    }
    return net.network;
  });
}
