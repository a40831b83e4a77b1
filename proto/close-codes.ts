/**
 * WebSocket close codes. 4000–4999 are tabby's own; 1000-range codes are the standard ones `ws` uses.
 * PROTOCOL.md has the table with what a client should do after each.
 */
export const CloseCode = {
  /** Standard: normal closure (client close()). */
  normal: 1000,
  /** Standard: a frame larger than the server's maxFrameBytes (sent by `ws` itself). */
  messageTooBig: 1009,
  /** Standard: an unexpected condition on the server (a bug) ended the session. Reconnect with backoff and resume. */
  internalError: 1011,
  /** The client's protocol version range does not overlap the server's. Do not retry this server. */
  unsupportedVersion: 4001,
  /** The hello named a view this server does not serve. Do not retry. */
  unknownView: 4002,
  /** No valid hello within the handshake timeout. Retry with backoff. */
  handshakeTimeout: 4003,
  /** The client is not allowed to connect (token or TLS identity rejected, or another node's data asked for). */
  unauthorized: 4004,
  /** The session fell too far behind the head. Reconnect and resume (or take a snapshot). */
  tooSlow: 4005,
  /** A frame that is not valid msgpack, or not a valid message, or a message out of order. */
  badFrame: 4006,
  /** The server asks the client to move to another replica (rebalancing). Reconnect elsewhere after the delay. */
  rebalance: 4007,
  /** The server is shutting down (drain). Reconnect elsewhere and resume. */
  shuttingDown: 4008,
  /** The view has node-scoped kinds and the hello named no node. Do not retry without a node name. */
  nodeRequired: 4009,
  /** The server is at its connection limit. Retry another server with backoff. */
  tooManyConnections: 4010,
  /** No pong (server side) or no frame (client side) within the timeout. */
  keepaliveTimeout: 4011,
  /** The server cannot check the client's credentials now (the Kubernetes API is down). Retry with backoff. */
  authUnavailable: 4012,
} as const;
export type CloseCodeName = keyof typeof CloseCode;
export type CloseCodeValue = (typeof CloseCode)[CloseCodeName];

const NAMES = new Map<number, CloseCodeName>(
  Object.entries(CloseCode).map(([name, code]) => [code, name as CloseCodeName]),
);

/** The name of a close code, or undefined for codes tabby does not define. */
export function closeCodeName(code: number): CloseCodeName | undefined {
  return NAMES.get(code);
}

/** Close codes after which retrying the same server with the same hello cannot succeed. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.unsupportedVersion,
  CloseCode.unknownView,
  CloseCode.nodeRequired,
  CloseCode.unauthorized,
]);

/** The longest close reason either side sends, in UTF-8 bytes (WebSocket allows 123). */
export const MAX_CLOSE_REASON_BYTES = 120;

/** `reason` cut to MAX_CLOSE_REASON_BYTES without splitting a UTF-8 character. */
export function truncateCloseReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  return Buffer.from(reason)
    .subarray(0, MAX_CLOSE_REASON_BYTES)
    .toString("utf8")
    .replace(/\uFFFD+$/, "");
}
