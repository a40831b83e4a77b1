import { formatKey } from "../../../snapshot/keys.js";
import type { ConvertResult, KubeObject } from "../types.js";
import {
  annotationsOf,
  calicoValue,
  CHANGED_AT_ANNOTATION,
  labelsOf,
  nameOf,
  trimMetadata,
} from "./common.js";
import { goFoldKey } from "./go-json.js";
import { formatIp, parseCidrOrIp, parseIp } from "./ip.js";

export const NODE_ANNOTATIONS = {
  ipv4Address: "projectcalico.org/IPv4Address",
  ipv6Address: "projectcalico.org/IPv6Address",
  asNumber: "projectcalico.org/ASNumber",
  routeReflectorClusterID: "projectcalico.org/RouteReflectorClusterID",
  ipv4IPIPTunnelAddr: "projectcalico.org/IPv4IPIPTunnelAddr",
  ipv4VXLANTunnelAddr: "projectcalico.org/IPv4VXLANTunnelAddr",
  vxlanTunnelMACAddr: "projectcalico.org/VXLANTunnelMACAddr",
  ipv6VXLANTunnelAddr: "projectcalico.org/IPv6VXLANTunnelAddr",
  vxlanTunnelMACAddrV6: "projectcalico.org/VXLANTunnelMACAddrV6",
  wireguardIPv4InterfaceAddr: "projectcalico.org/IPv4WireguardInterfaceAddr",
  wireguardIPv6InterfaceAddr: "projectcalico.org/IPv6WireguardInterfaceAddr",
  wireguardPublicKey: "projectcalico.org/WireguardPublicKey",
  wireguardPublicKeyV6: "projectcalico.org/WireguardPublicKeyV6",
  interfaces: "projectcalico.org/Interfaces",
  /** Calico's own labels and annotations of the node, as JSON maps. */
  labels: "projectcalico.org/labels",
  annotations: "projectcalico.org/annotations",
  /** Set by Calico on the converted node: the Kubernetes labels, as JSON. */
  kubeLabels: "projectcalico.org/kube-labels",
} as const;

export interface NodeConvertOptions {
  /**
   * Host-local IPAM (calico-node's USE_POD_CIDR): the IPIP tunnel address (and, with a WireGuard key,
   * the WireGuard interface address) is the first address of the node's podCIDR. Default false.
   */
  usePodCidr?: boolean;
}

/** An AS number, plain ("64512") or dotted ("1.10" = 1 × 65536 + 10), as Calico parses it; else undefined. */
export function parseASNumber(text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n <= 0xffffffff ? n : undefined;
  }
  const dotted = /^(\d+)\.(\d+)$/.exec(text);
  if (dotted === null) return undefined;
  const hi = Number(dotted[1]);
  const lo = Number(dotted[2]);
  return hi <= 0xffff && lo <= 0xffff ? hi * 65536 + lo : undefined;
}

/** Go's net.ParseMAC: 6, 8 or 20 octets as `aa:bb:…`, `aa-bb-…` or `aabb.ccdd.…`. */
export function isMac(text: string): boolean {
  const sizes = [6, 8, 20];
  const sep = /^[0-9a-fA-F]{2}([:-])/.exec(text)?.[1];
  if (sep !== undefined) {
    const parts = text.split(sep);
    return sizes.includes(parts.length) && parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p));
  }
  const parts = text.split(".");
  return sizes.includes(parts.length * 2) && parts.every((p) => /^[0-9a-fA-F]{4}$/.test(p));
}

/** Calico's ValidateCIDRv4/v6: an IP or CIDR (not necessarily masked) of the family. */
function isCidrOfFamily(text: string, family: 4 | 6): boolean {
  return parseCidrOrIp(text)?.ip.family === family;
}

/** Calico's ValidateIPv4Network/IPv6Network: an IP, or a masked CIDR, of the family. */
function isNetworkOfFamily(text: string, family: 4 | 6): boolean {
  const n = parseCidrOrIp(text);
  if (n === undefined || n.ip.family !== family) return false;
  return n.network.slice(0, n.network.indexOf("/")) === formatIp(n.ip);
}

/**
 * A string map from JSON (Go's json.Unmarshal into map[string]string): a `null` value is "" (null decodes
 * to the zero value); undefined when it does not parse or a value is of another type (Unmarshal errs).
 */
function stringMapJson(text: string): Record<string, string> | null | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null) return null;
    if (typeof parsed !== "object" || Array.isArray(parsed)) return undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (v !== null && typeof v !== "string") return undefined;
      out[k] = v ?? "";
    }
    return out;
  } catch {
    return undefined;
  }
}

/** JSON of a string map with sorted keys, as Go's json.Marshal writes it (`null` for no map). */
function sortedJson(map: Record<string, string> | undefined): string {
  if (map === undefined) return "null";
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(map).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
    sorted[k] = map[k] ?? "";
  }
  return JSON.stringify(sorted);
}

interface NodeInterface {
  name?: string;
  addresses?: string[];
}

/**
 * `projectcalico.org/Interfaces` as Go's json.Unmarshal into []NodeInterface reads it: keys matched to
 * `name` and `addresses` case-insensitively (the last matching key wins), `null` as the zero value (a null
 * entry is `{}`, a null address ""), any other type mismatch failing the whole annotation (undefined);
 * then the addresses that are no IP are removed.
 */
function interfacesOf(text: string): NodeInterface[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (parsed === null) return [];
  if (!Array.isArray(parsed)) return undefined;
  const out: NodeInterface[] = [];
  for (const e of parsed as unknown[]) {
    if (e !== null && (typeof e !== "object" || Array.isArray(e))) return undefined;
    let name = "";
    let addresses: string[] = [];
    for (const [k, v] of Object.entries((e ?? {}) as Record<string, unknown>)) {
      const field = goFoldKey(k);
      if (field === "NAME") {
        if (v !== null && typeof v !== "string") return undefined;
        if (typeof v === "string") name = v;
      } else if (field === "ADDRESSES") {
        if (v === null) {
          addresses = [];
          continue;
        }
        if (!Array.isArray(v)) return undefined;
        const list: string[] = [];
        for (const a of v as unknown[]) {
          if (a !== null && typeof a !== "string") return undefined;
          list.push(a ?? "");
        }
        addresses = list;
      }
    }
    const iface: NodeInterface = {};
    if (name !== "") iface.name = name;
    const addrs = addresses.filter((a) => parseIp(a) !== undefined);
    if (addrs.length > 0) iface.addresses = addrs;
    out.push(iface);
  }
  return out;
}

/** The first address of an IPv4 podCIDR (its address part + 1 in the last octet, as Calico computes it). */
function staticTunnelAddress(podCidr: string): string | undefined | null {
  const slash = podCidr.indexOf("/");
  const ip = slash < 0 ? undefined : parseIp(podCidr.slice(0, slash));
  if (ip === undefined || parseCidrOrIp(podCidr) === undefined) return null;
  if (ip.family !== 4) return undefined;
  const b = [...ip.bytes];
  b[3] = ((b[3] ?? 0) + 1) & 0xff;
  return b.join(".");
}

export function nodeKey(obj: KubeObject): string | null {
  const name = nameOf(obj);
  return name === undefined ? null : formatKey("Node", name);
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/**
 * Node → `Node/<name>`, as libcalico-go's K8sNodeToCalico builds it: labels = Calico's
 * `projectcalico.org/labels` overlaid by the Kubernetes labels; annotations = Calico's
 * `projectcalico.org/annotations` plus `projectcalico.org/kube-labels`; BGP spec, VXLAN tunnel addresses and
 * MACs, WireGuard interface addresses, interfaces from the annotations (each validated, kept as written, an
 * invalid one ignored); WireGuard public keys and podCIDRs in `status`; addresses = the BGP addresses, then
 * the InternalIP/ExternalIP ones. With host-local IPAM the tunnel address comes from the podCIDR.
 */
export function convertNode(obj: KubeObject, options: NodeConvertOptions = {}): ConvertResult {
  const name = nameOf(obj);
  if (name === undefined) return null;
  const key = formatKey("Node", name);
  const a = annotationsOf(obj);
  const N = NODE_ANNOTATIONS;
  /** An annotation that passes the validator, else undefined (Calico ignores an invalid one). */
  const valid = (k: string, ok: (v: string) => boolean): string | undefined => {
    const v = a[k];
    return v !== undefined && v !== "" && ok(v) ? v : undefined;
  };

  const labelsText = a[N.labels];
  const calicoLabels = labelsText === undefined ? undefined : stringMapJson(labelsText);
  const kubeLabels = obj.metadata?.labels === undefined ? undefined : labelsOf(obj);
  const labels: Record<string, string> = { ...(calicoLabels ?? {}), ...(kubeLabels ?? {}) };
  const annotationsText = a[N.annotations];
  const calicoAnnotations = annotationsText === undefined ? undefined : stringMapJson(annotationsText);
  const annotations: Record<string, string> = { ...(calicoAnnotations ?? {}) };
  annotations[N.kubeLabels] = sortedJson(kubeLabels);
  const changedAt = a[CHANGED_AT_ANNOTATION];
  if (changedAt !== undefined) annotations[CHANGED_AT_ANNOTATION] = changedAt;
  const metadata = trimMetadata(obj.metadata, {
    name,
    keepLabels: false,
    labels,
    keepAnnotation: () => false,
  });
  if (Object.keys(labels).length === 0) delete metadata.labels;
  metadata.annotations = annotations;

  const bgp: Record<string, unknown> = {};
  const asText = a[N.asNumber];
  const asNumber = asText === undefined ? undefined : parseASNumber(asText);
  if (asNumber !== undefined) bgp.asNumber = asNumber;
  const ipv4Address = valid(N.ipv4Address, (v) => isCidrOfFamily(v, 4));
  const ipv6Address = valid(N.ipv6Address, (v) => isCidrOfFamily(v, 6));
  if (ipv4Address !== undefined) bgp.ipv4Address = ipv4Address;
  if (ipv6Address !== undefined) bgp.ipv6Address = ipv6Address;

  const wireguard: Record<string, unknown> = {};
  const spec = record(obj.spec);
  const podCidr = typeof spec.podCIDR === "string" ? spec.podCIDR : "";
  if (options.usePodCidr === true && podCidr !== "") {
    const tunnel = staticTunnelAddress(podCidr);
    if (tunnel === null) {
      return {
        key,
        value: null,
        rejected: { code: "ERR_CONVERT_REJECTED", reason: `invalid podCIDR "${podCidr}"` },
      };
    }
    if (tunnel !== undefined) {
      bgp.ipv4IPIPTunnelAddr = tunnel;
      if ((a[N.wireguardPublicKey] ?? "") !== "") wireguard.interfaceIPv4Address = tunnel;
    }
  } else {
    const ipip = valid(N.ipv4IPIPTunnelAddr, (v) => isNetworkOfFamily(v, 4));
    if (ipip !== undefined) bgp.ipv4IPIPTunnelAddr = ipip;
    const wg4 = valid(N.wireguardIPv4InterfaceAddr, (v) => isNetworkOfFamily(v, 4));
    const wg6 = valid(N.wireguardIPv6InterfaceAddr, (v) => isNetworkOfFamily(v, 6));
    if (wg4 !== undefined) wireguard.interfaceIPv4Address = wg4;
    if (wg6 !== undefined) wireguard.interfaceIPv6Address = wg6;
  }
  const rr = valid(N.routeReflectorClusterID, (v) => isNetworkOfFamily(v, 4));
  if (rr !== undefined) bgp.routeReflectorClusterID = rr;

  // Field order is Calico's NodeSpec JSON order.
  const out: Record<string, unknown> = {};
  if (Object.keys(bgp).length > 0) {
    const ordered: Record<string, unknown> = {};
    for (const f of [
      "asNumber",
      "ipv4Address",
      "ipv6Address",
      "ipv4IPIPTunnelAddr",
      "routeReflectorClusterID",
    ]) {
      if (bgp[f] !== undefined) ordered[f] = bgp[f];
    }
    out.bgp = ordered;
  }
  const vxlan4 = valid(N.ipv4VXLANTunnelAddr, (v) => isNetworkOfFamily(v, 4));
  const mac4 = valid(N.vxlanTunnelMACAddr, isMac);
  const vxlan6 = valid(N.ipv6VXLANTunnelAddr, (v) => isNetworkOfFamily(v, 6));
  const mac6 = valid(N.vxlanTunnelMACAddrV6, isMac);
  if (vxlan4 !== undefined) out.ipv4VXLANTunnelAddr = vxlan4;
  if (mac4 !== undefined) out.vxlanTunnelMACAddr = mac4;
  if (vxlan6 !== undefined) out.ipv6VXLANTunnelAddr = vxlan6;
  if (mac6 !== undefined) out.vxlanTunnelMACAddrV6 = mac6;
  out.orchRefs = [{ nodeName: name, orchestrator: "k8s" }];
  if (Object.keys(wireguard).length > 0) out.wireguard = wireguard;

  const addresses: { address: string; type: string }[] = [];
  if (ipv4Address !== undefined) addresses.push({ address: ipv4Address, type: "CalicoNodeIP" });
  if (ipv6Address !== undefined) addresses.push({ address: ipv6Address, type: "CalicoNodeIP" });
  const kubeAddresses = record(obj.status).addresses;
  if (Array.isArray(kubeAddresses)) {
    for (const e of kubeAddresses as unknown[]) {
      const { address, type } = record(e);
      // Calico copies the address unchecked ("" when absent).
      if (type === "InternalIP" || type === "ExternalIP") {
        addresses.push({ address: typeof address === "string" ? address : "", type });
      }
    }
  }
  if (addresses.length > 0) out.addresses = addresses;
  const ifaceText = a[N.interfaces];
  const interfaces = ifaceText === undefined ? undefined : interfacesOf(ifaceText);
  if (interfaces !== undefined && interfaces.length > 0) out.interfaces = interfaces;

  const status: Record<string, unknown> = {};
  if ((a[N.wireguardPublicKey] ?? "") !== "") status.wireguardPublicKey = a[N.wireguardPublicKey];
  if ((a[N.wireguardPublicKeyV6] ?? "") !== "") status.wireguardPublicKeyV6 = a[N.wireguardPublicKeyV6];
  const podCidrs = Array.isArray(spec.podCIDRs)
    ? (spec.podCIDRs as unknown[]).filter((c) => typeof c === "string")
    : [];
  if (podCidrs.length > 0) status.podCIDRs = podCidrs;
  const extra = Object.keys(status).length > 0 ? { status } : undefined;
  return { key, value: calicoValue("Node", metadata, out, extra) };
}
