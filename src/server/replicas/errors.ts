/** Stable error codes of the replica directory. Callers and tests match on `code`, never on message text. */
export const ReplicaErrorCode = {
  /** A `--peers` entry that is not `ws(s)://host:port[=http(s)://host:port[/path]]`. */
  badPeer: "ERR_REPLICA_BAD_PEER",
  /** A peer's /status could not be read (network error, timeout, non-200, not JSON, too big). */
  statusRead: "ERR_REPLICA_STATUS_READ",
} as const;
export type ReplicaErrorCodeValue = (typeof ReplicaErrorCode)[keyof typeof ReplicaErrorCode];

export class ReplicaError extends Error {
  override readonly name = "ReplicaError";
  readonly code: ReplicaErrorCodeValue;

  constructor(code: ReplicaErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
