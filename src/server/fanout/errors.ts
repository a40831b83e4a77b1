/** Stable error codes of the fan-out server. Callers and tests match on `code`, never on message text. */
export const FanoutErrorCode = {
  /** An option is missing its type, range or relation to another option; `field` names it. */
  invalidOption: "ERR_FANOUT_INVALID_OPTION",
  /** The server was closed (or is draining) and cannot do what was asked. */
  closed: "ERR_FANOUT_CLOSED",
  /** The WebSocket listener could not be opened (address in use, permission denied, ...). */
  listen: "ERR_FANOUT_LISTEN",
  /** `listen` was called twice. */
  alreadyListening: "ERR_FANOUT_ALREADY_LISTENING",
} as const;
export type FanoutErrorCodeValue = (typeof FanoutErrorCode)[keyof typeof FanoutErrorCode];

export class FanoutError extends Error {
  override readonly name: string = "FanoutError";
  readonly code: FanoutErrorCodeValue;

  constructor(code: FanoutErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** An invalid FanoutOptions field. */
export class FanoutOptionError extends FanoutError {
  override readonly name = "FanoutOptionError";
  /** The option at fault, e.g. "pongTimeoutMs". */
  readonly field: string;

  constructor(field: string, message: string) {
    super(FanoutErrorCode.invalidOption, `fanout option ${field}: ${message}`);
    this.field = field;
  }
}

/** Standard WebSocket close code for an unexpected condition on the server (a bug): the client retries. */
export const INTERNAL_ERROR_CLOSE_CODE = 1011;
