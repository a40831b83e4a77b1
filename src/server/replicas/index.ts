export type { PeerDirectory, ReplicaPeer } from "./peers.js";
export { ReplicaDirectory } from "./directory.js";
export type {
  DirectorySource,
  Member,
  ReadinessFrom,
  ReplicaDirectoryDeps,
  ReplicasReport,
} from "./directory.js";
export { EndpointSliceMembers, membersOfSlice } from "./endpoint-slices.js";
export type { ServiceSelector } from "./endpoint-slices.js";
export { ReplicaError, ReplicaErrorCode } from "./errors.js";
export type { ReplicaErrorCodeValue } from "./errors.js";
export { replicaDirectoryFor } from "./from-config.js";
export type { ReplicaWiring, ReplicaWiringDeps } from "./from-config.js";
export { formatStaticPeers, parseStaticPeers } from "./static-peers.js";
export type { StaticPeer } from "./static-peers.js";
export { fetchPeerStatus, parsePeerStatus } from "./status-fetch.js";
export type { PeerStatus, StatusFetcher } from "./status-fetch.js";
