/** Stable error codes of the simulator. Tests and callers match on `code`, never on message text. */
export const SimErrorCode = {
  /** The object does not exist (HTTP 404). */
  notFound: "ERR_SIM_NOT_FOUND",
  /** The resource is unknown or its CRD is not installed (HTTP 404). */
  resourceNotFound: "ERR_SIM_RESOURCE_NOT_FOUND",
  /** Create of an object that already exists (HTTP 409). */
  alreadyExists: "ERR_SIM_ALREADY_EXISTS",
  /** Stale resourceVersion or uid precondition in an update, patch or delete (HTTP 409). */
  conflict: "ERR_SIM_CONFLICT",
  /** The object is not valid: missing or bad name, wrong kind, not an object (HTTP 422). */
  invalid: "ERR_SIM_INVALID",
  /** The request is malformed: unparsable JSON, bad query parameter, name mismatch (HTTP 400). */
  badRequest: "ERR_SIM_BAD_REQUEST",
  /** The resourceVersion or continue token is older than the retained history (HTTP 410). */
  expired: "ERR_SIM_EXPIRED",
  /** The HTTP method is not supported on this path (HTTP 405). */
  methodNotAllowed: "ERR_SIM_METHOD_NOT_ALLOWED",
  /** The patch content type is not supported (HTTP 415). */
  unsupportedMediaType: "ERR_SIM_UNSUPPORTED_MEDIA_TYPE",
  /** The request body exceeds the size limit (HTTP 413). */
  tooLarge: "ERR_SIM_TOO_LARGE",
  /** An injected failure (HTTP 500 or 429). */
  injected: "ERR_SIM_INJECTED",
  /** A bug in the simulator (HTTP 500); logged. */
  internal: "ERR_SIM_INTERNAL",
  /** The simulator was asked to listen on a host that is not loopback. */
  nonLoopback: "ERR_SIM_NON_LOOPBACK",
  /** A CRD manifest could not be read or lacks a required field. */
  crdManifest: "ERR_SIM_CRD_MANIFEST",
  /** A bad option value (names the option). */
  badOption: "ERR_SIM_BAD_OPTION",
  /** The simulator is closed. */
  closed: "ERR_SIM_CLOSED",
} as const;
export type SimErrorCodeValue = (typeof SimErrorCode)[keyof typeof SimErrorCode];

export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
  readonly retryAfterSeconds?: number;
}

export class SimError extends Error {
  override readonly name = "SimError";
  readonly code: SimErrorCodeValue;
  readonly details: StatusDetails | undefined;
  /** Overrides the HTTP status of the code (used by injected failures: 500 or 429). */
  readonly httpStatus: number | undefined;

  constructor(
    code: SimErrorCodeValue,
    message: string,
    options?: { cause?: unknown; details?: StatusDetails; httpStatus?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
    this.httpStatus = options?.httpStatus;
  }
}

const HTTP: Readonly<Record<SimErrorCodeValue, readonly [number, string]>> = {
  ERR_SIM_NOT_FOUND: [404, "NotFound"],
  ERR_SIM_RESOURCE_NOT_FOUND: [404, "NotFound"],
  ERR_SIM_ALREADY_EXISTS: [409, "AlreadyExists"],
  ERR_SIM_CONFLICT: [409, "Conflict"],
  ERR_SIM_INVALID: [422, "Invalid"],
  ERR_SIM_BAD_REQUEST: [400, "BadRequest"],
  ERR_SIM_EXPIRED: [410, "Expired"],
  ERR_SIM_METHOD_NOT_ALLOWED: [405, "MethodNotAllowed"],
  ERR_SIM_UNSUPPORTED_MEDIA_TYPE: [415, "UnsupportedMediaType"],
  ERR_SIM_TOO_LARGE: [413, "RequestEntityTooLarge"],
  ERR_SIM_INJECTED: [500, "InternalError"],
  ERR_SIM_INTERNAL: [500, "InternalError"],
  ERR_SIM_NON_LOOPBACK: [500, "InternalError"],
  ERR_SIM_CRD_MANIFEST: [500, "InternalError"],
  ERR_SIM_BAD_OPTION: [500, "InternalError"],
  ERR_SIM_CLOSED: [503, "ServiceUnavailable"],
};

const REASON_BY_STATUS: Readonly<Record<number, string>> = {
  429: "TooManyRequests",
  500: "InternalError",
};

/** A Kubernetes `Status` object (what the API server sends for errors, and in ERROR watch events). */
export interface KubeStatus {
  readonly kind: "Status";
  readonly apiVersion: "v1";
  readonly metadata: Record<string, never>;
  readonly status: "Failure";
  readonly message: string;
  readonly reason: string;
  readonly details?: StatusDetails;
  readonly code: number;
}

export function httpStatusOf(err: SimError): number {
  return err.httpStatus ?? HTTP[err.code][0];
}

export function statusOf(err: SimError): KubeStatus {
  const code = httpStatusOf(err);
  const reason =
    err.httpStatus === undefined ? HTTP[err.code][1] : (REASON_BY_STATUS[code] ?? HTTP[err.code][1]);
  const base = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: err.message,
    reason,
    code,
  } as const;
  return err.details === undefined ? base : { ...base, details: err.details };
}

/** The 410 Status of a too-old resourceVersion. */
export function expiredError(requestedRv: number, oldestRv: number): SimError {
  return new SimError(SimErrorCode.expired, `too old resource version: ${requestedRv} (${oldestRv})`);
}
