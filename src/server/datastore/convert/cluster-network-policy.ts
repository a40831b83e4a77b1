import type { ConvertResult, KubeObject } from "../types.js";
import { calicoValue, keepChangedAt, keyFor, nameOf, trimMetadata } from "./common.js";
import { parseCidr } from "./ip.js";
import { convertUid } from "./names.js";
import { k8sSelectorToCalico, namedPort, portJson, simplifyPorts } from "./network-policy.js";
import type { CalicoPort } from "./network-policy.js";

/**
 * policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy → the Calico v3 GlobalNetworkPolicy libcalico-go
 * makes of it (conversion.K8sClusterNetworkPolicyToCalico): the `Admin` tier is Calico's `kube-admin`, the
 * `Baseline` tier `kube-baseline`, the priority is the order; one rule per protocol × peer, in the rule's
 * action (Accept → Allow, Deny, Pass); a rule Calico cannot convert fails closed (Deny and Pass rules become
 * a deny-all rule, Accept rules are dropped); types only for the directions that have rules.
 */

/** Calico's tiers for the two ClusterNetworkPolicy tiers (lib/names KubeAdminTierName, KubeBaselineTierName). */
export const CNP_TIERS: Readonly<Record<string, string>> = { Admin: "kube-admin", Baseline: "kube-baseline" };
/** The annotation of a converted rule that keeps the ClusterNetworkPolicy rule's name. */
export const CNP_RULE_NAME_ANNOTATION = "name";

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function array(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function int(value: unknown): number {
  return typeof value === "number" && Number.isInteger(value) ? value : 0;
}

/** Go's sort.Strings order: by UTF-8 bytes. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Why a rule cannot be converted (Calico then fails it closed). */
class RuleError extends Error {}

/** A Port (`number` or `range`) → a Calico port; undefined for none (every port). */
function destinationPort(port: unknown): CalicoPort | undefined {
  const p = record(port);
  if (p === undefined) return undefined;
  const n = int(p.number);
  // numorstring.SinglePort(uint16(Number)) and PortFromRange(uint16(Start), uint16(End)).
  if (n !== 0) return { kind: "range", min: n & 0xffff, max: n & 0xffff };
  const range = record(p.range);
  if (range === undefined) return undefined;
  const min = int(range.start) & 0xffff;
  const max = int(range.end) & 0xffff;
  if (min > max) {
    throw new RuleError(
      `minimum port number (${min}) is greater than maximum port number (${max}) in port range`,
    );
  }
  return { kind: "range", min, max };
}

/**
 * unpackCNPProtocols: protocol ("" = none) → ports (undefined = every port), sorted by protocol. No protocols
 * (or an empty entry) allow everything; a named port has no protocol.
 */
function unpackProtocols(protocolsIn: unknown[]): [string, CalicoPort[] | undefined][] {
  const protocols = protocolsIn.length > 0 ? protocolsIn : [{}];
  let out = new Map<string, CalicoPort[] | undefined>();
  for (const entry of protocols) {
    const e = record(entry) ?? {};
    let protocol: string | undefined;
    let port: CalicoPort | undefined;
    const tcp = record(e.tcp);
    const udp = record(e.udp);
    const sctp = record(e.sctp);
    const named = typeof e.destinationNamedPort === "string" ? e.destinationNamedPort : "";
    if (tcp !== undefined) [protocol, port] = ["TCP", destinationPort(tcp.destinationPort)];
    else if (udp !== undefined) [protocol, port] = ["UDP", destinationPort(udp.destinationPort)];
    else if (sctp !== undefined) [protocol, port] = ["SCTP", destinationPort(sctp.destinationPort)];
    else if (named !== "") port = namedPort(named);
    if (protocol === undefined && port === undefined) {
      out = new Map([["", undefined]]);
      break;
    }
    const key = protocol ?? "";
    if (port === undefined) out.set(key, undefined);
    else if (!out.has(key) || (out.get(key)?.length ?? 0) > 0) out.set(key, [...(out.get(key) ?? []), port]);
  }
  return [...out.keys()].sort(byteOrder).map((k) => [k, out.get(k)]);
}

/** The rules of one ClusterNetworkPolicy rule: one per protocol × peer. Throws RuleError. */
function cnpRuleToCalico(ruleIn: unknown, isIngress: boolean): Record<string, unknown>[] {
  const rule = record(ruleIn) ?? {};
  const action =
    rule.action === "Accept"
      ? "Allow"
      : rule.action === "Deny" || rule.action === "Pass"
        ? rule.action
        : undefined;
  if (action === undefined)
    throw new RuleError(`unsupported cluster network policy action ${String(rule.action)}`);
  let byProtocol: [string, CalicoPort[] | undefined][];
  try {
    byProtocol = unpackProtocols(array(rule.protocols));
  } catch (err) {
    throw new RuleError(`failed to parse k8s protocol: ${(err as Error).message}`);
  }
  const name = typeof rule.name === "string" ? rule.name : "";
  const peers = array(isIngress ? rule.from : rule.to);
  const out: Record<string, unknown>[] = [];
  for (const [protocol, list] of byProtocol) {
    const ports = list === undefined ? [] : simplifyPorts(list).map(portJson);
    for (const peerIn of peers) {
      const peer = record(peerIn) ?? {};
      let selector = "";
      let nsSelector = "";
      const nets: string[] = [];
      let isFound = false;
      if (record(peer.namespaces) !== undefined) {
        nsSelector = k8sSelectorToCalico(peer.namespaces, "namespace");
        isFound = true;
      }
      const pods = record(peer.pods);
      if (pods !== undefined) {
        // NamespacedPod's selectors are structs, never nil: an absent one is the empty selector.
        selector = k8sSelectorToCalico(pods.podSelector ?? {}, "pod");
        nsSelector = k8sSelectorToCalico(pods.namespaceSelector ?? {}, "namespace");
        isFound = true;
      }
      if (!isIngress && array(peer.networks).length > 0) {
        for (const n of array(peer.networks)) {
          const cidr = parseCidr(typeof n === "string" ? n : "");
          if (cidr === undefined) throw new RuleError(`invalid CIDR in ANP rule: ${String(n)}`);
          nets.push(cidr.network);
        }
        isFound = true;
      }
      if (!isFound) {
        throw new RuleError(`none of supported fields in '${isIngress ? "From" : "To"}' is set.`);
      }
      // Field order is Calico's Rule and EntityRule JSON order.
      const r: Record<string, unknown> = { action };
      if (protocol !== "") r.protocol = protocol;
      const entity: Record<string, unknown> = {};
      if (nets.length > 0) entity.nets = nets;
      if (selector !== "") entity.selector = selector;
      if (nsSelector !== "") entity.namespaceSelector = nsSelector;
      if (isIngress) {
        if (Object.keys(entity).length > 0) r.source = entity;
        if (ports.length > 0) r.destination = { ports };
      } else {
        const destination: Record<string, unknown> = {};
        if (entity.nets !== undefined) destination.nets = entity.nets;
        if (entity.selector !== undefined) destination.selector = entity.selector;
        if (entity.namespaceSelector !== undefined) destination.namespaceSelector = entity.namespaceSelector;
        if (ports.length > 0) destination.ports = ports;
        if (Object.keys(destination).length > 0) r.destination = destination;
      }
      if (name !== "") r.metadata = { annotations: { [CNP_RULE_NAME_ANNOTATION]: name } };
      out.push(r);
    }
  }
  return out;
}

/** Converts one direction's rules; a rule that fails is replaced by a deny-all rule for Deny and Pass. */
function convertRules(rules: unknown[], isIngress: boolean): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const r of rules) {
    try {
      out.push(...cnpRuleToCalico(r, isIngress));
    } catch (err) {
      if (!(err instanceof RuleError)) throw err;
      const action = record(r)?.action;
      if (action === "Deny" || action === "Pass") out.push({ action: "Deny" });
    }
  }
  return out;
}

/** The key of a ClusterNetworkPolicy: `KubernetesClusterNetworkPolicy/<name>`. */
export function clusterNetworkPolicyKey(obj: KubeObject): string | null {
  return keyFor("KubernetesClusterNetworkPolicy", obj, false);
}

/**
 * ClusterNetworkPolicy → `KubernetesClusterNetworkPolicy/<name>`, valued as the Calico v3 GlobalNetworkPolicy
 * (kind GlobalNetworkPolicy, same name) libcalico-go makes of it. A policy with an unknown tier or no
 * subject has no value (Calico's tombstone: a held key is deleted), and is counted; a uid that is no UUID
 * rejects it.
 */
export function convertClusterNetworkPolicy(obj: KubeObject): ConvertResult {
  const name = nameOf(obj);
  if (name === undefined) return null;
  const key = keyFor("KubernetesClusterNetworkPolicy", obj, false);
  if (key === null) return null;
  const spec = record(obj.spec) ?? {};
  const tier =
    typeof spec.tier === "string" && Object.hasOwn(CNP_TIERS, spec.tier) ? CNP_TIERS[spec.tier] : undefined;
  if (tier === undefined) {
    return {
      key,
      value: null,
      rejected: {
        code: "ERR_CONVERT_REJECTED",
        reason: `invalid cluster network policy tier ${String(spec.tier)}`,
      },
    };
  }
  const subject = record(spec.subject) ?? {};
  let nsSelector: string;
  let selector: string;
  const pods = record(subject.pods);
  if (record(subject.namespaces) !== undefined) {
    nsSelector = k8sSelectorToCalico(subject.namespaces, "namespace");
    // The orchestrator term alone, so that host endpoints are not selected.
    selector = k8sSelectorToCalico(undefined, "pod");
  } else if (pods !== undefined) {
    nsSelector = k8sSelectorToCalico(pods.namespaceSelector ?? {}, "namespace");
    selector = k8sSelectorToCalico(pods.podSelector ?? {}, "pod");
  } else {
    return {
      key,
      value: null,
      rejected: { code: "ERR_CONVERT_REJECTED", reason: "no subject selector specified" },
    };
  }
  const sourceUid = typeof obj.metadata?.uid === "string" ? obj.metadata.uid : "";
  const uid = sourceUid === "" ? "" : convertUid(sourceUid);
  if (uid === undefined) {
    return {
      key,
      value: null,
      rejected: { code: "ERR_CONVERT_REJECTED", reason: `uid "${sourceUid}" is not a UUID` },
    };
  }
  const ingress = convertRules(array(spec.ingress), true);
  const egress = convertRules(array(spec.egress), false);
  // Field order is Calico's GlobalNetworkPolicySpec JSON order.
  const out: Record<string, unknown> = { tier, order: int(spec.priority) };
  if (ingress.length > 0) out.ingress = ingress;
  if (egress.length > 0) out.egress = egress;
  if (selector !== "") out.selector = selector;
  const types: string[] = [];
  if (ingress.length > 0) types.push("Ingress");
  if (egress.length > 0) types.push("Egress");
  if (types.length > 0) out.types = types;
  if (nsSelector !== "") out.namespaceSelector = nsSelector;
  const metadata = trimMetadata(obj.metadata, {
    name,
    uid,
    keepLabels: false,
    keepAnnotation: keepChangedAt,
  });
  return { key, value: calicoValue("GlobalNetworkPolicy", metadata, out) };
}
