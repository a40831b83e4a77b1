/** Stable error codes of the wire protocol layer. Tests and callers match on `code`, never on message text. */
export const ProtoErrorCode = {
  /** The bytes are not one complete msgpack value (truncated, trailing bytes, invalid encoding). */
  badFrame: "ERR_PROTO_BAD_FRAME",
  /** The frame decoded, but it is not a valid message (missing or mistyped field). */
  badMessage: "ERR_PROTO_BAD_MESSAGE",
  /** The frame is a well-formed message of a type this side does not know (ignorable for forward compatibility). */
  unknownType: "ERR_PROTO_UNKNOWN_TYPE",
  /** The frame exceeds the size limit. */
  tooLarge: "ERR_PROTO_TOO_LARGE",
} as const;
export type ProtoErrorCodeValue = (typeof ProtoErrorCode)[keyof typeof ProtoErrorCode];

export class ProtoError extends Error {
  override readonly name = "ProtoError";
  readonly code: ProtoErrorCodeValue;

  constructor(code: ProtoErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
