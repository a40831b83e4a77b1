/**
 * What a server knows about the other replicas of its Service (issue 9). The directory is filled from the
 * Service's EndpointSlices (src/server/replicas/, by the datastore's existing EndpointSlice watch) or, off
 * Kubernetes and in tests, from a static list; the balancer (fair share, move hints, graceful rollout)
 * only reads it.
 */

/** One replica of this server's Service. */
export interface ReplicaPeer {
  /** The agent address clients would use (`ws://…` or `wss://…`). Unique in a directory. */
  readonly url: string;
  /** Ready in its EndpointSlice (or, for a static list, answering). */
  readonly ready: boolean;
  /** This server itself. */
  readonly self: boolean;
  /** The node and zone of the endpoint, when the EndpointSlice names them. */
  readonly node?: string;
  readonly zone?: string;
  /** Sessions it serves, when known, and the time (epoch ms) that figure was read. */
  readonly sessions?: number;
  readonly sessionsReadAtMs?: number;
  /** Since when (epoch ms) this server has seen it ready without a break; absent when not ready. */
  readonly readySinceMs?: number;
}

export interface PeerDirectory {
  /**
   * Ready replicas, this one included (at least 1: a server that runs counts itself). Every replica counts
   * the same set: this one counts when its source lists it ready, or does not list it yet.
   */
  readyReplicas(): number;
  /** Every known replica, this one included. */
  peers(): readonly ReplicaPeer[];
  /** Calls `listener` after the list, a readiness or a load figure changed; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}
