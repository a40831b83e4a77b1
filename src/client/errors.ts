import { closeCodeName } from "../../proto/close-codes.js";

/**
 * Stable error codes of the client library. Callers and tests match on `code`, never on message text.
 *
 * | code | when | what the client does next |
 * |---|---|---|
 * | ERR_CLIENT_OPTIONS | the constructor got an invalid option (`field` names it) | throws; nothing starts |
 * | ERR_CLIENT_CLOSED | an operation on a closed client; `synced()` when the client closed first | — |
 * | ERR_CLIENT_CONNECT | the socket failed (refused, reset, HTTP error on upgrade) | reconnects with backoff |
 * | ERR_CLIENT_TIMEOUT | no WebSocket upgrade within connectTimeoutMs, no frame (the welcome included) within readTimeoutMs, discovery or the token function too slow | reconnects with backoff |
 * | ERR_CLIENT_TOKEN | the token function threw or returned no usable token | retries with backoff |
 * | ERR_CLIENT_PROTOCOL | the server sent a frame that is invalid or out of order (closed with 4006) | reconnects with backoff |
 * | ERR_CLIENT_REJECTED | the server closed with a fatal close code (bad version, view, node, token) | stops using that server; closes when every server rejected it |
 * | ERR_CLIENT_DISCOVERY | the discovery function threw or returned no usable address | retries with backoff |
 * | ERR_CLIENT_LISTENER | an application event listener threw (the client keeps going) | — |
 */
export const ClientErrorCode = {
  options: "ERR_CLIENT_OPTIONS",
  closed: "ERR_CLIENT_CLOSED",
  connect: "ERR_CLIENT_CONNECT",
  timeout: "ERR_CLIENT_TIMEOUT",
  protocol: "ERR_CLIENT_PROTOCOL",
  rejected: "ERR_CLIENT_REJECTED",
  discovery: "ERR_CLIENT_DISCOVERY",
  listener: "ERR_CLIENT_LISTENER",
  token: "ERR_CLIENT_TOKEN",
} as const;
export type ClientErrorCodeValue = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** The root of the client's errors. */
export class TabbyClientError extends Error {
  override readonly name: string = "TabbyClientError";
  readonly code: ClientErrorCodeValue;
  /** The server address the error is about, when there is one. */
  readonly server: string | undefined;

  constructor(code: ClientErrorCodeValue, message: string, options?: { cause?: unknown; server?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.server = options?.server;
  }
}

export class ClientOptionsError extends TabbyClientError {
  override readonly name = "ClientOptionsError";
  /** The option that is wrong, e.g. `servers` or `backoffMaxMs`. */
  readonly field: string;

  constructor(field: string, expected: string) {
    super(ClientErrorCode.options, `option "${field}" must be ${expected}`);
    this.field = field;
  }
}

export class ClientClosedError extends TabbyClientError {
  override readonly name = "ClientClosedError";

  constructor(message = "the client is closed", options?: { cause?: unknown }) {
    super(ClientErrorCode.closed, message, options);
  }
}

export class ClientConnectError extends TabbyClientError {
  override readonly name = "ClientConnectError";

  constructor(message: string, options: { cause?: unknown; server?: string }) {
    super(ClientErrorCode.connect, message, options);
  }
}

export class ClientTokenError extends TabbyClientError {
  override readonly name = "ClientTokenError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(ClientErrorCode.token, message, options);
  }
}

export type TimeoutKind = "connect" | "read" | "discovery" | "token";

export class ClientTimeoutError extends TabbyClientError {
  override readonly name = "ClientTimeoutError";
  readonly timeout: TimeoutKind;
  readonly timeoutMs: number;

  constructor(timeout: TimeoutKind, timeoutMs: number, server?: string) {
    super(
      ClientErrorCode.timeout,
      timeout === "read"
        ? `no frame from the server within ${timeoutMs} ms`
        : timeout === "connect"
          ? `the server did not accept the WebSocket within ${timeoutMs} ms`
          : timeout === "token"
            ? `the token function took longer than ${timeoutMs} ms`
            : `server discovery took longer than ${timeoutMs} ms`,
      server === undefined ? undefined : { server },
    );
    this.timeout = timeout;
    this.timeoutMs = timeoutMs;
  }
}

export class ClientProtocolError extends TabbyClientError {
  override readonly name = "ClientProtocolError";

  constructor(message: string, options: { cause?: unknown; server: string }) {
    super(ClientErrorCode.protocol, message, options);
  }
}

export class ClientRejectedError extends TabbyClientError {
  override readonly name = "ClientRejectedError";
  /** The fatal close code (one of FATAL_CLOSE_CODES). */
  readonly closeCode: number;

  constructor(closeCode: number, reason: string, server: string) {
    const name = closeCodeName(closeCode) ?? "unknown";
    super(ClientErrorCode.rejected, `server rejected the client: ${closeCode} ${name}: ${reason}`, {
      server,
    });
    this.closeCode = closeCode;
  }
}

export class ClientDiscoveryError extends TabbyClientError {
  override readonly name = "ClientDiscoveryError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(ClientErrorCode.discovery, message, options);
  }
}

export class ClientListenerError extends TabbyClientError {
  override readonly name = "ClientListenerError";
  /** The event whose listener threw. */
  readonly event: string;

  constructor(event: string, cause: unknown) {
    super(ClientErrorCode.listener, `a listener of "${event}" threw`, { cause });
    this.event = event;
  }
}
