/** The protocol versions this build speaks. A peer offers a range; the other side picks the highest common one. */
export const PROTOCOL_VERSION_MIN = 1;
export const PROTOCOL_VERSION_MAX = 1;

/** Optional features a client may list in its hello. The server only uses a feature the client listed. */
export const FEATURES = {
  /** Snapshot chunks may carry `z`: raw-deflate-compressed msgpack entries instead of `entries`. */
  deflateSnapshot: "deflate-snapshot",
  /** The client understands `move` hints (rebalancing). */
  move: "move",
  /**
   * `deltas` frames may carry `z` instead of `changes`: raw deflate, with the protocol's preset dictionary
   * (proto/delta-dictionary.ts), of a msgpack array of changes. Live batches and catch-ups alike.
   */
  deflateDeltas: "deflate-deltas",
  /**
   * Live `deltas` may carry patch entries `{k, p, b}`: an RFC 7386 merge patch `p` to apply to the value of
   * `k` the client holds, whose `metadata.resourceVersion` must be `b`. Only for clients that keep a mirror.
   */
  patchDeltas: "patch-deltas",
  /**
   * With "patch-deltas": a patch entry may also be `{k, j, b}`, an RFC 6902 JSON Patch `j` (add, remove,
   * replace) that reaches into arrays (PROTOCOL.md §6.7).
   */
  jsonPatchDeltas: "json-patch-deltas",
  /**
   * The hello's `resume` may carry `state` (digests of the mirror) and any replica may answer it with
   * `mode: "resume"` (PROTOCOL.md §5.2); the welcome carries `conversion`.
   */
  replicaResume: "replica-resume",
  /**
   * After a `move`, the client may send `leave`; the server stops the view on that session and answers `left`
   * with the view's digests as sent, which the client presents in its next resume token (§5.5): a replica
   * resume for a client that keeps no mirror.
   */
  leave: "leave",
} as const;
export type Feature = (typeof FEATURES)[keyof typeof FEATURES];

/** Picks the highest version in both [min, max] ranges, or null when they do not overlap. */
export function negotiateVersion(offered: readonly [number, number]): number | null {
  const high = Math.min(offered[1], PROTOCOL_VERSION_MAX);
  const low = Math.max(offered[0], PROTOCOL_VERSION_MIN);
  return high >= low ? high : null;
}
