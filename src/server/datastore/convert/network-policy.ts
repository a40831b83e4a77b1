import type { ConvertResult, KubeObject } from "../types.js";
import { calicoValue, keepChangedAt, keyFor, nameOf, namespaceOf, trimMetadata } from "./common.js";
import { parseCidr } from "./ip.js";
import { convertUid } from "./names.js";

/**
 * networking.k8s.io/v1 NetworkPolicy → the Calico v3 NetworkPolicy libcalico-go makes of it
 * (conversion.K8sNetworkPolicyToCalico): tier `default`, order 1000, Calico selectors, one rule per
 * protocol × peer, ipBlock → nets / notNets, named ports and endPort ranges, types from policyTypes.
 */

/** The order Calico gives every Kubernetes NetworkPolicy. */
export const KNP_ORDER = 1000;
/** The name prefix Typha before v3.32 gave Kubernetes policies (`knp.default.<name>`); see CALICO-CONFORMANCE.md. */
export const LEGACY_KNP_PREFIX = "knp.default.";
const ORCHESTRATOR_TERM = "projectcalico.org/orchestrator == 'k8s'";

interface LabelSelector {
  matchLabels?: Record<string, unknown>;
  matchExpressions?: unknown[];
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function array(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Go's sort.Strings order: by UTF-8 bytes (JavaScript's default sort is by UTF-16 units). */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * A Kubernetes label selector as the Calico selector string libcalico-go writes: a pod selector starts with
 * `projectcalico.org/orchestrator == 'k8s'`; matchLabels sorted by key as `k == 'v'`; expressions in order
 * as `k in { 'a', 'b' }`, `k not in { … }`, `has(k)`, `! has(k)`; terms joined with ` && `. An absent
 * namespace selector is "" and an empty one `all()`.
 */
export function k8sSelectorToCalico(selector: unknown, type: "pod" | "namespace"): string {
  const terms: string[] = type === "pod" ? [ORCHESTRATOR_TERM] : [];
  const s = record(selector) as LabelSelector | undefined;
  if (s === undefined) return terms.join(" && ");
  const labels = record(s.matchLabels) ?? {};
  const expressions = array(s.matchExpressions);
  if (type === "namespace" && Object.keys(labels).length === 0 && expressions.length === 0) return "all()";
  for (const k of Object.keys(labels).sort(byteOrder)) terms.push(`${k} == '${String(labels[k])}'`);
  for (const e of expressions) {
    const expr = record(e) ?? {};
    const key = typeof expr.key === "string" ? expr.key : "";
    const values = array(expr.values)
      .map((v) => String(v))
      .join("', '");
    switch (expr.operator) {
      case "In":
        terms.push(`${key} in { '${values}' }`);
        break;
      case "NotIn":
        terms.push(`${key} not in { '${values}' }`);
        break;
      case "Exists":
        terms.push(`has(${key})`);
        break;
      case "DoesNotExist":
        terms.push(`! has(${key})`);
        break;
    }
  }
  return terms.join(" && ");
}

/** A Calico port: a number, `min:max`, or a port name. */
export type CalicoPort = { kind: "range"; min: number; max: number } | { kind: "name"; name: string };

const PORT_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;

/** numorstring.PortFromString: digits (≤ 65535), `min:max` (min ≤ max), or a port name. */
function portFromString(text: string): CalicoPort {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n > 65535) throw new Error(`invalid port format (${text})`);
    return { kind: "range", min: n, max: n };
  }
  const range = /^(\d+):(\d+)$/.exec(text);
  if (range !== null) {
    const min = Number(range[1]);
    const max = Number(range[2]);
    if (min > 65535) throw new Error(`invalid minimum port number in range (${text})`);
    if (max > 65535) throw new Error(`invalid maximum port number in range (${text})`);
    if (min > max)
      throw new Error(`minimum port number (${min}) is greater than maximum port number (${max})`);
    return { kind: "range", min, max };
  }
  return namedPort(text);
}

/** numorstring.NamedPort: a port name of 1..128 of `[a-zA-Z0-9_.-]`; throws for another. */
export function namedPort(name: string): CalicoPort {
  if (!PORT_NAME.test(name)) throw new Error(`invalid name for named port (${name})`);
  return { kind: "name", name };
}

/** A port as Calico's JSON writes it: a number, `"min:max"`, or the name. */
export function portJson(p: CalicoPort): number | string {
  if (p.kind === "name") return p.name;
  return p.min === p.max ? p.min : `${p.min}:${p.max}`;
}

/**
 * Calico's SimplifyPorts: named ports first (in order), then the numeric ports merged into the fewest
 * ranges, ascending. With at most one numeric port the list is kept as it is.
 */
export function simplifyPorts(ports: readonly CalicoPort[]): CalicoPort[] {
  if (ports.length <= 1) return [...ports];
  const named = ports.filter((p) => p.kind === "name");
  const numeric = ports.filter((p): p is Extract<CalicoPort, { kind: "range" }> => p.kind === "range");
  const count = numeric.reduce((n, p) => n + (p.max - p.min + 1), 0);
  if (count <= 1) return [...ports];
  const sorted = [...numeric].sort((a, b) => a.min - b.min || a.max - b.max);
  const out: CalicoPort[] = [...named];
  let cur: { min: number; max: number } | undefined;
  for (const p of sorted) {
    if (cur !== undefined && p.min <= cur.max + 1) {
      cur.max = Math.max(cur.max, p.max);
      continue;
    }
    if (cur !== undefined) out.push({ kind: "range", ...cur });
    cur = { min: p.min, max: p.max };
  }
  if (cur !== undefined) out.push({ kind: "range", ...cur });
  return out;
}

interface PeerFields {
  selector?: string;
  namespaceSelector?: string;
  nets?: string[];
  notNets?: string[];
}

/** A peer as Calico's rule fields: ipBlock → nets/notNets (masked), else pod and namespace selectors. */
function peerFields(peer: unknown): PeerFields {
  const p = record(peer);
  if (p === undefined) return {};
  const ipBlock = record(p.ipBlock);
  if (ipBlock !== undefined) {
    // Calico logs a CIDR it cannot parse and leaves the rest of the peer empty.
    const cidr = parseCidr(typeof ipBlock.cidr === "string" ? ipBlock.cidr : "");
    if (cidr === undefined) return {};
    const out: PeerFields = { nets: [cidr.network] };
    const notNets: string[] = [];
    for (const e of array(ipBlock.except)) {
      const ex = parseCidr(typeof e === "string" ? e : "");
      if (ex === undefined) break; // Calico stops at the first bad exception, keeping the ones before it.
      notNets.push(ex.network);
    }
    if (notNets.length > 0) out.notNets = notNets;
    return out;
  }
  const out: PeerFields = {};
  const selector = k8sSelectorToCalico(p.podSelector, "pod");
  const nsSelector = k8sSelectorToCalico(p.namespaceSelector, "namespace");
  if (selector !== "") out.selector = selector;
  if (nsSelector !== "") out.namespaceSelector = nsSelector;
  return out;
}

/** Calico spells Kubernetes protocols as numorstring.ProtocolFromString does: `TCP`, `UDP`, `SCTP`. */
function calicoProtocol(text: string): string {
  for (const n of ["UDP", "TCP", "ICMP", "ICMPv6", "SCTP", "UDPLite"]) {
    if (n.toLowerCase() === text.toLowerCase()) return n;
  }
  return text;
}

/** One Kubernetes rule (peers × ports) → Calico rules. Throws for a port Calico cannot parse. */
function k8sRuleToCalico(
  peersIn: unknown[],
  portsIn: unknown[],
  isIngress: boolean,
): Record<string, unknown>[] {
  const peers: unknown[] = peersIn.length > 0 ? peersIn : [undefined];
  // protocol ("" = any) → ports (undefined = every port).
  let protocolPorts = new Map<string, CalicoPort[] | undefined>();
  const ports: (Record<string, unknown> | undefined)[] =
    portsIn.length > 0 ? portsIn.map((p) => record(p) ?? {}) : [undefined];
  for (const port of ports) {
    if (port === undefined) {
      protocolPorts = new Map([["", undefined]]);
      break;
    }
    const protocol = calicoProtocol(typeof port.protocol === "string" ? port.protocol : "TCP");
    let calicoPorts: CalicoPort[] | undefined;
    if (typeof port.port === "number" || typeof port.port === "string") {
      let text = String(port.port);
      if (typeof port.endPort === "number") text = `${text}:${port.endPort}`;
      try {
        calicoPorts = [portFromString(text)];
      } catch (err) {
        throw new Error(`failed to parse k8s port: invalid port ${text}: ${(err as Error).message}`);
      }
    }
    if (calicoPorts === undefined) {
      protocolPorts.set(protocol, undefined);
    } else if (!protocolPorts.has(protocol) || (protocolPorts.get(protocol)?.length ?? 0) > 0) {
      protocolPorts.set(protocol, [...(protocolPorts.get(protocol) ?? []), ...calicoPorts]);
    }
  }
  const rules: Record<string, unknown>[] = [];
  for (const protocol of [...protocolPorts.keys()].sort(byteOrder)) {
    const list = protocolPorts.get(protocol);
    const simplified = list === undefined ? undefined : simplifyPorts(list).map(portJson);
    for (const peer of peers) {
      const fields = peerFields(peer);
      const rule: Record<string, unknown> = { action: "Allow" };
      if (protocol !== "") rule.protocol = protocol;
      const portField = simplified !== undefined && simplified.length > 0 ? { ports: simplified } : {};
      // Field order is Calico's EntityRule JSON order: nets, selector, namespaceSelector, ports, notNets.
      const entity = (withPorts: boolean): Record<string, unknown> => {
        const e: Record<string, unknown> = {};
        if (fields.nets !== undefined) e.nets = fields.nets;
        if (fields.selector !== undefined) e.selector = fields.selector;
        if (fields.namespaceSelector !== undefined) e.namespaceSelector = fields.namespaceSelector;
        if (withPorts) Object.assign(e, portField);
        if (fields.notNets !== undefined) e.notNets = fields.notNets;
        return e;
      };
      if (isIngress) {
        const source = entity(false);
        if (Object.keys(source).length > 0) rule.source = source;
        if (Object.keys(portField).length > 0) rule.destination = portField;
      } else {
        const destination = entity(true);
        if (Object.keys(destination).length > 0) rule.destination = destination;
      }
      rules.push(rule);
    }
  }
  return rules;
}

/** What a conversion dropped: Calico drops a rule it cannot convert and keeps the rest of the policy. */
export interface DroppedRule {
  direction: "ingress" | "egress";
  index: number;
  reason: string;
}

/** The Calico v3 NetworkPolicy spec of a Kubernetes NetworkPolicy spec, and the rules it had to drop. */
export function k8sNetworkPolicySpec(specIn: unknown): {
  spec: Record<string, unknown>;
  dropped: DroppedRule[];
} {
  const spec = record(specIn) ?? {};
  const dropped: DroppedRule[] = [];
  const convertRules = (direction: "ingress" | "egress"): Record<string, unknown>[] => {
    const out: Record<string, unknown>[] = [];
    array(spec[direction]).forEach((r, index) => {
      const rule = record(r) ?? {};
      const peers = array(direction === "ingress" ? rule.from : rule.to);
      try {
        out.push(...k8sRuleToCalico(peers, array(rule.ports), direction === "ingress"));
      } catch (err) {
        dropped.push({
          direction,
          index,
          reason: `k8s rule couldn't be converted: ${(err as Error).message}`,
        });
      }
    });
    return out;
  };
  const ingress = convertRules("ingress");
  const egress = convertRules("egress");
  const policyTypes = array(spec.policyTypes);
  const types: string[] = [];
  if (policyTypes.includes("Ingress")) types.push("Ingress");
  if (policyTypes.includes("Egress")) types.push("Egress");
  // Without policyTypes (a pre-1.8 API server) a policy is for ingress only.
  if (types.length === 0) types.push("Ingress");
  const out: Record<string, unknown> = { tier: "default", order: KNP_ORDER };
  if (ingress.length > 0) out.ingress = ingress;
  if (egress.length > 0) out.egress = egress;
  out.selector = k8sSelectorToCalico(spec.podSelector ?? {}, "pod");
  out.types = types;
  return { spec: out, dropped };
}

/**
 * networking.k8s.io/v1 NetworkPolicy → `KubernetesNetworkPolicy/<ns>/<name>`, valued as the Calico v3
 * NetworkPolicy (kind NetworkPolicy, same name and namespace) libcalico-go makes of it. The uid is derived
 * (convertUid); a policy whose uid is no UUID is rejected, as Calico fails it. Rules Calico cannot convert
 * are dropped from the value, the rest kept.
 */
export function convertKubernetesNetworkPolicy(obj: KubeObject): ConvertResult {
  const name = nameOf(obj);
  const ns = namespaceOf(obj);
  if (name === undefined || ns === undefined) return null;
  const key = keyFor("KubernetesNetworkPolicy", obj, true);
  if (key === null) return null;
  const sourceUid = typeof obj.metadata?.uid === "string" ? obj.metadata.uid : "";
  const uid = sourceUid === "" ? "" : convertUid(sourceUid);
  if (uid === undefined) {
    return {
      key,
      value: null,
      rejected: { code: "ERR_CONVERT_REJECTED", reason: `uid "${sourceUid}" is not a UUID` },
    };
  }
  const metadata = trimMetadata(obj.metadata, {
    name,
    namespace: ns,
    uid,
    keepLabels: false,
    keepAnnotation: keepChangedAt,
  });
  const { spec } = k8sNetworkPolicySpec(obj.spec);
  return { key, value: calicoValue("NetworkPolicy", metadata, spec) };
}
