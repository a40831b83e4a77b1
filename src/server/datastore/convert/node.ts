import { isIP } from "node:net";
import { formatKey } from "../../../snapshot/keys.js";
import type { ConvertResult, KubeObject } from "../types.js";
import { annotationOf, calicoValue, keepChangedAt, nameOf, toCidr, trimMetadata } from "./common.js";

export const NODE_ANNOTATIONS = {
  ipv4Address: "projectcalico.org/IPv4Address",
  ipv6Address: "projectcalico.org/IPv6Address",
  asNumber: "projectcalico.org/ASNumber",
  ipv4IPIPTunnelAddr: "projectcalico.org/IPv4IPIPTunnelAddr",
  ipv4VXLANTunnelAddr: "projectcalico.org/IPv4VXLANTunnelAddr",
  wireguardPublicKey: "projectcalico.org/WireguardPublicKey",
} as const;

/** An AS number, plain ("64512") or dotted ("1.10" = 1 × 65536 + 10); undefined when malformed. */
export function parseASNumber(text: string): number | undefined {
  const t = text.trim();
  const plain = /^\d+$/.exec(t);
  if (plain !== null) {
    const n = Number(t);
    return n <= 0xffffffff ? n : undefined;
  }
  const dotted = /^(\d+)\.(\d+)$/.exec(t);
  if (dotted === null) return undefined;
  const hi = Number(dotted[1]);
  const lo = Number(dotted[2]);
  return hi <= 0xffff && lo <= 0xffff ? hi * 65536 + lo : undefined;
}

function cidrOfFamily(text: string | undefined, family: 4 | 6): string | undefined {
  if (text === undefined || text === "") return undefined;
  const cidr = toCidr(text);
  if (cidr === undefined) return undefined;
  return isIP(cidr.slice(0, cidr.indexOf("/"))) === family ? cidr : undefined;
}

function ipOfFamily(text: string | undefined, family: 4 | 6): string | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  return isIP(t) === family ? t : undefined;
}

export function nodeKey(obj: KubeObject): string | null {
  const name = nameOf(obj);
  return name === undefined ? null : formatKey("Node", name);
}

/**
 * Node → `Node/<name>`, as Calico's Kubernetes datastore builds it: BGP spec from the Calico annotations,
 * the VXLAN tunnel address, the orchestrator reference, and the addresses (Calico's BGP addresses, then
 * the node's InternalIP/ExternalIP). Calico keeps the WireGuard public key in `status`; values carry no
 * status, so it is `spec.wireguardPublicKey` here. Node status (conditions, heartbeats) is ignored.
 */
export function convertNode(obj: KubeObject): ConvertResult {
  const name = nameOf(obj);
  if (name === undefined) return null;
  const metadata = trimMetadata(obj.metadata, { name, keepLabels: true, keepAnnotation: keepChangedAt });
  const spec: Record<string, unknown> = {};

  const bgp: Record<string, unknown> = {};
  const ipv4Address = cidrOfFamily(annotationOf(obj, NODE_ANNOTATIONS.ipv4Address), 4);
  const ipv6Address = cidrOfFamily(annotationOf(obj, NODE_ANNOTATIONS.ipv6Address), 6);
  if (ipv4Address !== undefined) bgp.ipv4Address = ipv4Address;
  if (ipv6Address !== undefined) bgp.ipv6Address = ipv6Address;
  const asText = annotationOf(obj, NODE_ANNOTATIONS.asNumber);
  const asNumber = asText === undefined ? undefined : parseASNumber(asText);
  if (asNumber !== undefined) bgp.asNumber = asNumber;
  const ipip = ipOfFamily(annotationOf(obj, NODE_ANNOTATIONS.ipv4IPIPTunnelAddr), 4);
  if (ipip !== undefined) bgp.ipv4IPIPTunnelAddr = ipip;
  if (Object.keys(bgp).length > 0) spec.bgp = bgp;

  const vxlan = ipOfFamily(annotationOf(obj, NODE_ANNOTATIONS.ipv4VXLANTunnelAddr), 4);
  if (vxlan !== undefined) spec.ipv4VXLANTunnelAddr = vxlan;
  const wgKey = annotationOf(obj, NODE_ANNOTATIONS.wireguardPublicKey);
  if (wgKey !== undefined && wgKey !== "") spec.wireguardPublicKey = wgKey;
  spec.orchRefs = [{ nodeName: name, orchestrator: "k8s" }];

  const addresses: { address: string; type: string }[] = [];
  if (ipv4Address !== undefined) addresses.push({ address: ipv4Address, type: "CalicoNodeIP" });
  if (ipv6Address !== undefined) addresses.push({ address: ipv6Address, type: "CalicoNodeIP" });
  const status = obj.status;
  const kubeAddresses =
    status !== null && typeof status === "object" ? (status as Record<string, unknown>).addresses : undefined;
  if (Array.isArray(kubeAddresses)) {
    for (const a of kubeAddresses as unknown[]) {
      if (a === null || typeof a !== "object") continue;
      const { address, type } = a as Record<string, unknown>;
      if (typeof address !== "string" || address === "") continue;
      if (type === "InternalIP" || type === "ExternalIP") addresses.push({ address, type });
    }
  }
  if (addresses.length > 0) spec.addresses = addresses;
  return { key: formatKey("Node", name), value: calicoValue("Node", metadata, spec) };
}
