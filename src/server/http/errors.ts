/** Stable error codes of the HTTP side doors (health, metrics, status). */
export const HttpServerErrorCode = {
  /** A health or metrics port could not be opened (address in use, permission denied, ...). */
  listen: "ERR_HTTP_LISTEN",
  /** A port number outside 0..65535 or not an integer. */
  invalidPort: "ERR_HTTP_INVALID_PORT",
} as const;
export type HttpServerErrorCodeValue = (typeof HttpServerErrorCode)[keyof typeof HttpServerErrorCode];

export class HttpServerError extends Error {
  override readonly name = "HttpServerError";
  readonly code: HttpServerErrorCodeValue;

  constructor(code: HttpServerErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
