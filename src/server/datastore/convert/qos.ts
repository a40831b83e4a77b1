import { goFoldKey } from "./go-json.js";
import { quantityValue } from "./quantity.js";

/**
 * Calico's QoS annotations on a pod → the WorkloadEndpoint's `qosControls` (libcalico-go
 * handleQoSControlsAnnotations). A value out of range is capped to the bound; one that does not parse is
 * ignored; dependent settings without their base are dropped; defaults fill in the bursts. Problems are
 * reported, never fatal: Calico keeps the pod.
 */

export const QOS_ANNOTATIONS = {
  k8sIngressBandwidth: "kubernetes.io/ingress-bandwidth",
  k8sEgressBandwidth: "kubernetes.io/egress-bandwidth",
  ingressBandwidth: "qos.projectcalico.org/ingressBandwidth",
  egressBandwidth: "qos.projectcalico.org/egressBandwidth",
  ingressBurst: "qos.projectcalico.org/ingressBurst",
  egressBurst: "qos.projectcalico.org/egressBurst",
  ingressPeakrate: "qos.projectcalico.org/ingressPeakrate",
  egressPeakrate: "qos.projectcalico.org/egressPeakrate",
  ingressMinburst: "qos.projectcalico.org/ingressMinburst",
  egressMinburst: "qos.projectcalico.org/egressMinburst",
  ingressPacketRate: "qos.projectcalico.org/ingressPacketRate",
  egressPacketRate: "qos.projectcalico.org/egressPacketRate",
  ingressPacketBurst: "qos.projectcalico.org/ingressPacketBurst",
  egressPacketBurst: "qos.projectcalico.org/egressPacketBurst",
  ingressMaxConnections: "qos.projectcalico.org/ingressMaxConnections",
  egressMaxConnections: "qos.projectcalico.org/egressMaxConnections",
  dscp: "qos.projectcalico.org/dscp",
} as const;

/** Bounds, as Calico sets them (bits per second, bits, bytes, packets per second, packets, connections). */
export const QOS_LIMITS = {
  bandwidth: { min: 1_000n, max: 1_000_000_000_000_000n },
  burst: { min: 1_000n, max: 4_294_967_295n * 8n, default: 4n * 1024n ** 3n },
  peakrate: { min: 1_010n, max: 1_010_000_000_000_000n },
  minburst: { min: 1_000n, max: 100_000_000n },
  packetRate: { min: 1n, max: 10_000n },
  packetBurst: { min: 1n, max: 10_000n, default: 5n },
  connections: { min: 1n, max: 4_294_967_295n },
} as const;

/** DSCP names and their values (numorstring.AllDSCPValues). */
const DSCP_NAMES: Record<string, number> = {
  DF: 0,
  EF: 46,
  AF11: 10,
  AF12: 12,
  AF13: 14,
  AF21: 18,
  AF22: 20,
  AF23: 22,
  AF31: 26,
  AF32: 28,
  AF33: 30,
  AF41: 34,
  AF42: 36,
  AF43: 38,
  CS0: 0,
  CS1: 8,
  CS2: 16,
  CS3: 24,
  CS4: 32,
  CS5: 40,
  CS6: 48,
};

/** The field order of Calico's QoSControls, which is the JSON order. */
export interface QosControls {
  ingressBandwidth?: number;
  ingressBurst?: number;
  ingressPeakrate?: number;
  ingressMinburst?: number;
  egressBandwidth?: number;
  egressBurst?: number;
  egressPeakrate?: number;
  egressMinburst?: number;
  ingressPacketRate?: number;
  ingressPacketBurst?: number;
  egressPacketRate?: number;
  egressPacketBurst?: number;
  ingressMaxConnections?: number;
  egressMaxConnections?: number;
  /** A number 0..63, or a DSCP name as Calico spells it (`CS5`). */
  dscp?: number | string;
}

type Field = Exclude<keyof QosControls, "dscp">;
const FIELD_ORDER: readonly (keyof QosControls)[] = [
  "ingressBandwidth",
  "ingressBurst",
  "ingressPeakrate",
  "ingressMinburst",
  "egressBandwidth",
  "egressBurst",
  "egressPeakrate",
  "egressMinburst",
  "ingressPacketRate",
  "ingressPacketBurst",
  "egressPacketRate",
  "egressPacketBurst",
  "ingressMaxConnections",
  "egressMaxConnections",
  "dscp",
];

export interface QosResult {
  /** Undefined when no control is configured. */
  controls: QosControls | undefined;
  /** What was capped, ignored or dropped (Calico logs these and keeps the pod). */
  problems: string[];
}

/**
 * Go's strings.TrimSpace: trims unicode.IsSpace runes, which include U+0085 (NEL) and not U+FEFF (JavaScript's
 * trim() does the opposite).
 */
const GO_TRIM_SPACE =
  /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/**
 * A DSCP annotation as Calico reads it (numorstring.DSCPFromString, then Validate): digits that ParseUint
 * reads as a uint8 are a number, valid up to 63; a name matched as strings.EqualFold matches it (ASCII case,
 * and ſ for s) is written as Calico spells it (`cs5` → `CS5`); any other text is kept as written when
 * strings.ToUpper(strings.TrimSpace(text)) is a name (` af11 `), which is what Felix reads. Undefined when
 * Calico's Validate refuses it.
 */
export function parseDscp(text: string): number | string | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    // Up to 255 parses as a number (and then must be ≤ 63); beyond that it is an unknown name.
    if (n <= 255) return n <= 63 ? n : undefined;
  }
  // The names are upper-case ASCII letters and digits: goFoldKey matches exactly what EqualFold does, and
  // maps every rune that strings.ToUpper turns into one of their letters (ſ → S).
  const folded = goFoldKey(text);
  if (Object.hasOwn(DSCP_NAMES, folded)) return folded;
  return Object.hasOwn(DSCP_NAMES, goFoldKey(text.replace(GO_TRIM_SPACE, ""))) ? text : undefined;
}

/** Parses the QoS annotations of a pod. */
export function qosControlsOf(annotations: Readonly<Record<string, string>>): QosResult {
  const values = new Map<Field, bigint>();
  const problems: string[] = [];
  const read = (field: Field, key: string, limits: { min: bigint; max: bigint }): void => {
    const text = annotations[key];
    if (text === undefined) return;
    const v = quantityValue(text);
    if (v === undefined) {
      problems.push(`${key}: "${text}" is not a quantity`);
      values.set(field, 0n);
    } else if (v < limits.min) {
      problems.push(`${key}: "${text}" is below ${limits.min}, capped`);
      values.set(field, limits.min);
    } else if (v > limits.max) {
      problems.push(`${key}: "${text}" is above ${limits.max}, capped`);
      values.set(field, limits.max);
    } else {
      values.set(field, v);
    }
  };
  const A = QOS_ANNOTATIONS;
  const L = QOS_LIMITS;
  read("ingressBandwidth", A.k8sIngressBandwidth, L.bandwidth);
  read("egressBandwidth", A.k8sEgressBandwidth, L.bandwidth);
  // Calico's own bandwidth annotations override the Kubernetes ones.
  read("ingressBandwidth", A.ingressBandwidth, L.bandwidth);
  read("egressBandwidth", A.egressBandwidth, L.bandwidth);
  read("ingressBurst", A.ingressBurst, L.burst);
  read("egressBurst", A.egressBurst, L.burst);
  read("ingressPeakrate", A.ingressPeakrate, L.peakrate);
  read("egressPeakrate", A.egressPeakrate, L.peakrate);
  read("ingressMinburst", A.ingressMinburst, L.minburst);
  read("egressMinburst", A.egressMinburst, L.minburst);
  read("ingressPacketRate", A.ingressPacketRate, L.packetRate);
  read("egressPacketRate", A.egressPacketRate, L.packetRate);
  read("ingressPacketBurst", A.ingressPacketBurst, L.packetBurst);
  read("egressPacketBurst", A.egressPacketBurst, L.packetBurst);
  read("ingressMaxConnections", A.ingressMaxConnections, L.connections);
  read("egressMaxConnections", A.egressMaxConnections, L.connections);

  const get = (f: Field): bigint => values.get(f) ?? 0n;
  const drop = (f: Field, why: string): void => {
    problems.push(why);
    values.set(f, 0n);
  };
  for (const dir of ["ingress", "egress"] as const) {
    const bw = `${dir}Bandwidth` as const;
    const burst = `${dir}Burst` as const;
    const peak = `${dir}Peakrate` as const;
    const minburst = `${dir}Minburst` as const;
    const rate = `${dir}PacketRate` as const;
    const pburst = `${dir}PacketBurst` as const;
    if (get(burst) !== 0n && get(bw) === 0n) drop(burst, `${dir} burst needs ${dir} bandwidth`);
    if (get(peak) !== 0n && (get(bw) === 0n || get(bw) >= get(peak))) {
      drop(peak, `${dir} peakrate must be greater than ${dir} bandwidth`);
    }
    if (get(minburst) !== 0n && get(peak) === 0n) drop(minburst, `${dir} minburst needs ${dir} peakrate`);
    if (get(pburst) !== 0n && get(rate) === 0n) drop(pburst, `${dir} packet burst needs ${dir} packet rate`);
  }
  for (const dir of ["ingress", "egress"] as const) {
    if (get(`${dir}Bandwidth`) !== 0n && get(`${dir}Burst`) === 0n)
      values.set(`${dir}Burst`, L.burst.default);
    if (get(`${dir}PacketRate`) !== 0n && get(`${dir}PacketBurst`) === 0n) {
      values.set(`${dir}PacketBurst`, L.packetBurst.default);
    }
  }

  const out: QosControls = {};
  let dscp: number | string | undefined;
  const dscpText = annotations[A.dscp];
  if (dscpText !== undefined) {
    dscp = parseDscp(dscpText);
    if (dscp === undefined) problems.push(`${A.dscp}: "${dscpText}" is not a DSCP value`);
  }
  for (const f of FIELD_ORDER) {
    if (f === "dscp") {
      if (dscp !== undefined) out.dscp = dscp;
      continue;
    }
    const v = get(f);
    if (v !== 0n) out[f] = Number(v);
  }
  return { controls: Object.keys(out).length > 0 ? out : undefined, problems };
}
