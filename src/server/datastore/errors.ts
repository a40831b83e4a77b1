/**
 * Errors of the Kubernetes datastore. Codes are stable; tests and callers match on `code`.
 *
 * | code | when |
 * |---|---|
 * | ERR_DATASTORE_LIST | a list request failed (network error or non-2xx status other than 410) |
 * | ERR_DATASTORE_WATCH | a watch request failed, broke off, or sent an ERROR event other than 410 |
 * | ERR_DATASTORE_GONE | 410 Gone: the resourceVersion or continue token expired; a relist follows |
 * | ERR_DATASTORE_DECODE | a response or watch line was not valid JSON or not the expected shape |
 * | ERR_DATASTORE_WATCHDOG | a watch saw nothing, not even a bookmark, for watchdogMs |
 * | ERR_DATASTORE_PROBE | the API server did not answer a probe (a list with limit=1) in time, or answered 5xx |
 * | ERR_DATASTORE_INGEST_WORKER | the ingest worker thread crashed (or was closed) with this request in flight |
 */
export type DatastoreErrorCode =
  | "ERR_DATASTORE_LIST"
  | "ERR_DATASTORE_WATCH"
  | "ERR_DATASTORE_GONE"
  | "ERR_DATASTORE_DECODE"
  | "ERR_DATASTORE_WATCHDOG"
  | "ERR_DATASTORE_PROBE"
  | "ERR_DATASTORE_INGEST_WORKER";

export interface DatastoreErrorDetails {
  /** The resource plural the request was for. */
  readonly resource?: string;
  /** HTTP status, or the code of an in-stream Status. */
  readonly status?: number;
  /** How long the server asked us to wait (Retry-After), in ms. */
  readonly retryAfterMs?: number;
  readonly cause?: unknown;
}

export abstract class DatastoreError extends Error {
  abstract readonly code: DatastoreErrorCode;
  readonly resource: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, details: DatastoreErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.resource = details.resource;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
  }
}

export class DatastoreListError extends DatastoreError {
  override readonly name = "DatastoreListError";
  readonly code = "ERR_DATASTORE_LIST";
}

export class DatastoreWatchError extends DatastoreError {
  override readonly name = "DatastoreWatchError";
  readonly code = "ERR_DATASTORE_WATCH";
}

export class DatastoreGoneError extends DatastoreError {
  override readonly name = "DatastoreGoneError";
  readonly code = "ERR_DATASTORE_GONE";
}

export class DatastoreDecodeError extends DatastoreError {
  override readonly name = "DatastoreDecodeError";
  readonly code = "ERR_DATASTORE_DECODE";
}

export class DatastoreWatchdogError extends DatastoreError {
  override readonly name = "DatastoreWatchdogError";
  readonly code = "ERR_DATASTORE_WATCHDOG";
}

export class DatastoreProbeError extends DatastoreError {
  override readonly name = "DatastoreProbeError";
  readonly code = "ERR_DATASTORE_PROBE";
}

export class DatastoreIngestWorkerError extends DatastoreError {
  override readonly name = "DatastoreIngestWorkerError";
  readonly code = "ERR_DATASTORE_INGEST_WORKER";
}

export function isDatastoreError(err: unknown): err is DatastoreError {
  return err instanceof DatastoreError;
}
