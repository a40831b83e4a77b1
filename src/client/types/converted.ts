/**
 * The kinds tabby converts from core Kubernetes objects, in the Calico v3 model that libcalico-go's
 * Kubernetes conversion produces (see src/server/datastore/convert/ and DESIGN.md "Resource model").
 * Hand-written: these kinds have no CRD schema to generate from.
 */
import type { GlobalNetworkPolicySpec, NetworkPolicySpec } from "./calico-crds.generated.js";
import type { CalicoResource } from "./resource.js";

/** A policy rule of the Calico v3 model (the same shape in every policy kind and in Profile). */
export type CalicoRule = NonNullable<GlobalNetworkPolicySpec["ingress"]>[number];

/** A named (or host-mapped) container port of a workload (`name` "" for a host-mapped one without a name). */
export interface WorkloadEndpointPort {
  name: string;
  /** As Calico's ProtocolFromString spells it. */
  protocol: "TCP" | "UDP" | "SCTP";
  port: number;
  /** 0 when not host-mapped (always written, as in Calico's JSON). */
  hostPort: number;
  /** "" when not set (always written). */
  hostIP: string;
}

/**
 * A workload's QoS controls, from the pod's `kubernetes.io/*-bandwidth` and `qos.projectcalico.org/*`
 * annotations: bandwidths and peak rates in bits per second, bursts in bits, min bursts in bytes, packet
 * rates per second, bursts in packets, connection limits; each capped to Calico's bounds
 * (docs/CALICO-CONFORMANCE.md).
 */
export interface QoSControls {
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
  /** Egress DSCP: a number 0..63, or a DSCP name (`AF11`, `CS5`, `EF`, …). */
  dscp?: number | string;
}

export interface WorkloadEndpointSpec {
  /** `k8s`. */
  orchestrator?: string;
  workload?: string;
  node?: string;
  containerID?: string;
  pod?: string;
  /** `eth0`. */
  endpoint?: string;
  serviceAccountName?: string;
  /** The pod's IPs as CIDRs (`/32`, `/128`). */
  ipNetworks?: string[];
  ipNATs?: { internalIP: string; externalIP: string }[];
  ipv4Gateway?: string;
  ipv6Gateway?: string;
  /** `kns.<namespace>`, then `ksa.<namespace>.<serviceaccount>`. */
  profiles?: string[];
  /** `cali` + the first 11 hex characters of sha1(`<namespace>.<pod>`). */
  interfaceName?: string;
  mac?: string;
  ports?: WorkloadEndpointPort[];
  /** From `cni.projectcalico.org/allowedSourcePrefixes`, masked CIDRs. */
  allowSpoofedSourcePrefixes?: string[];
  qosControls?: QoSControls;
}
/**
 * `WorkloadEndpoint/<namespace>/<node>-k8s-<pod>-eth0` (each `-` of node and pod doubled, as Calico names it),
 * from a scheduled, not host-networked, unfinished Pod with an IP.
 */
export type WorkloadEndpoint = CalicoResource<"WorkloadEndpoint", WorkloadEndpointSpec>;

export interface ProfileSpec {
  ingress?: CalicoRule[];
  egress?: CalicoRule[];
  /** `pcns.<label>` (namespaces) or `pcsa.<label>` (service accounts), and `projectcalico.org/name`. */
  labelsToApply?: Record<string, string>;
}
/** `Profile/kns.<namespace>` from a Namespace, `Profile/ksa.<namespace>.<serviceaccount>` from a ServiceAccount. */
export type Profile = CalicoResource<"Profile", ProfileSpec>;

export interface NodeBGPSpec {
  asNumber?: number;
  ipv4Address?: string;
  ipv6Address?: string;
  ipv4IPIPTunnelAddr?: string;
  routeReflectorClusterID?: string;
}
export interface NodeAddress {
  address: string;
  /** `CalicoNodeIP`, `InternalIP` or `ExternalIP`. */
  type?: string;
}
export interface NodeSpec {
  bgp?: NodeBGPSpec;
  ipv4VXLANTunnelAddr?: string;
  vxlanTunnelMACAddr?: string;
  ipv6VXLANTunnelAddr?: string;
  vxlanTunnelMACAddrV6?: string;
  orchRefs?: { nodeName?: string; orchestrator: string }[];
  wireguard?: { interfaceIPv4Address?: string; interfaceIPv6Address?: string };
  addresses?: NodeAddress[];
  /** From `projectcalico.org/Interfaces`, addresses that are no IP removed. */
  interfaces?: { name?: string; addresses?: string[] }[];
}
/** The WireGuard public keys live here, as in Calico (not in `spec`). */
export interface NodeStatus {
  wireguardPublicKey?: string;
  wireguardPublicKeyV6?: string;
  podCIDRs?: string[];
}
/** `Node/<name>`, from a Kubernetes Node and its Calico annotations. */
export type Node = CalicoResource<"Node", NodeSpec, NodeStatus>;

/**
 * `KubernetesNetworkPolicy/<namespace>/<name>`: a networking.k8s.io NetworkPolicy as the Calico v3 NetworkPolicy
 * libcalico-go makes of it; the value's `kind` is `NetworkPolicy`, as Calico's is (only the key says
 * KubernetesNetworkPolicy).
 */
export type KubernetesNetworkPolicy = CalicoResource<"NetworkPolicy", NetworkPolicySpec>;

/**
 * `KubernetesClusterNetworkPolicy/<name>`: a policy.networking.k8s.io ClusterNetworkPolicy as the Calico v3
 * GlobalNetworkPolicy libcalico-go makes of it (tier `kube-admin` or `kube-baseline`, order = priority).
 */
export type KubernetesClusterNetworkPolicy = CalicoResource<"GlobalNetworkPolicy", GlobalNetworkPolicySpec>;

export interface ServicePort {
  name?: string;
  protocol?: "TCP" | "UDP" | "SCTP";
  appProtocol?: string;
  port: number;
  targetPort?: number | string;
  nodePort?: number;
}
/** The Service's spec as Kubernetes has it (Felix reads it for its service rules and kube-proxy replacement). */
export interface KubernetesServiceSpec {
  type?: "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";
  selector?: Record<string, string>;
  ports?: ServicePort[];
  clusterIP?: string;
  clusterIPs?: string[];
  externalIPs?: string[];
  externalName?: string;
  externalTrafficPolicy?: "Cluster" | "Local";
  internalTrafficPolicy?: "Cluster" | "Local";
  healthCheckNodePort?: number;
  ipFamilies?: ("IPv4" | "IPv6")[];
  ipFamilyPolicy?: "SingleStack" | "PreferDualStack" | "RequireDualStack";
  loadBalancerIP?: string;
  loadBalancerSourceRanges?: string[];
  loadBalancerClass?: string;
  sessionAffinity?: "ClientIP" | "None";
  publishNotReadyAddresses?: boolean;
}
/** `KubernetesService/<namespace>/<name>`. */
export type KubernetesService = CalicoResource<"KubernetesService", KubernetesServiceSpec>;

/** An endpoint of a slice in the discovery.k8s.io/v1 shape (v1beta1 `topology` is folded into nodeName/zone). */
export interface EndpointSliceEndpoint {
  addresses: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  hostname?: string;
  nodeName?: string;
  zone?: string;
  targetRef?: { kind?: string; namespace?: string; name?: string; uid?: string };
  hints?: { forZones?: { name: string }[] };
}
export interface EndpointSlicePort {
  name?: string;
  protocol?: "TCP" | "UDP" | "SCTP";
  port?: number;
  appProtocol?: string;
}
/** An EndpointSlice has no spec of its own: the value's spec holds its addressType, endpoints and ports. */
export interface KubernetesEndpointSliceSpec {
  addressType?: "IPv4" | "IPv6" | "FQDN";
  endpoints: EndpointSliceEndpoint[];
  ports?: EndpointSlicePort[];
}
/** `KubernetesEndpointSlice/<namespace>/<name>` (labels keep `kubernetes.io/service-name`). */
export type KubernetesEndpointSlice = CalicoResource<"KubernetesEndpointSlice", KubernetesEndpointSliceSpec>;

/** Every converted kind and the type of its value. */
export interface ConvertedKinds {
  WorkloadEndpoint: WorkloadEndpoint;
  Profile: Profile;
  Node: Node;
  KubernetesNetworkPolicy: KubernetesNetworkPolicy;
  KubernetesClusterNetworkPolicy: KubernetesClusterNetworkPolicy;
  KubernetesService: KubernetesService;
  KubernetesEndpointSlice: KubernetesEndpointSlice;
}
