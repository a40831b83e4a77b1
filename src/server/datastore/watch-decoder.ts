import { DatastoreDecodeError } from "./errors.js";
import type { KubeObject } from "./types.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
const EVENT_TYPES: ReadonlySet<string> = new Set(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

export interface WatchEvent {
  readonly type: WatchEventType;
  readonly object: KubeObject;
}

const NEWLINE = 0x0a;

/** What one chunk of a watch body completes: whole lines, and the error to raise after them. */
export interface FramedLines {
  /** Whole lines (each ending in a newline, but maybe the last one at the end of the body); undefined: none. */
  readonly lines: Buffer | undefined;
  /** A line too long: raise it once `lines` (the lines before it) have been applied. */
  readonly error: DatastoreDecodeError | undefined;
}

/**
 * Cuts a watch response body (one JSON document per line, delivered in arbitrary chunks) into runs of whole
 * lines, without decoding them: the decoding can then happen here (decodeWatchLines) or in the ingest
 * worker. A line longer than maxLineBytes is a DatastoreDecodeError (the caller restarts the watch). Pure.
 */
export class WatchLineFramer {
  readonly #maxLineBytes: number;
  readonly #resource: string;
  #parts: Buffer[] = [];
  #pendingBytes = 0;

  constructor(resource: string, maxLineBytes: number) {
    this.#resource = resource;
    this.#maxLineBytes = maxLineBytes;
  }

  /** Bytes of an incomplete line held. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Feeds a chunk; gives the lines it completes (a view of `chunk` when no earlier part is held). */
  push(chunk: Buffer): FramedLines {
    let start = 0;
    let lastEnd = -1;
    let error: DatastoreDecodeError | undefined;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl < 0) break;
      const lineBytes = (start === 0 ? this.#pendingBytes : 0) + nl - start;
      if (lineBytes > this.#maxLineBytes) {
        error = this.#tooLong();
        break;
      }
      lastEnd = nl + 1;
      start = nl + 1;
    }
    let lines: Buffer | undefined;
    if (lastEnd > 0) {
      const head = chunk.subarray(0, lastEnd);
      lines = this.#parts.length === 0 ? head : Buffer.concat([...this.#parts, head]);
      this.#parts = [];
      this.#pendingBytes = 0;
    }
    if (error !== undefined) {
      this.#parts = [];
      this.#pendingBytes = 0;
      return { lines, error };
    }
    if (start < chunk.byteLength) {
      const rest = chunk.subarray(start);
      if (this.#pendingBytes + rest.byteLength > this.#maxLineBytes) {
        return { lines, error: this.#tooLong() };
      }
      this.#parts.push(rest);
      this.#pendingBytes += rest.byteLength;
    }
    return { lines, error: undefined };
  }

  /** The body ended: a last line without a trailing newline, if any. */
  end(): Buffer | undefined {
    if (this.#parts.length === 0) return undefined;
    const line = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#pendingBytes = 0;
    return line;
  }

  #tooLong(): DatastoreDecodeError {
    this.#parts = [];
    this.#pendingBytes = 0;
    return new DatastoreDecodeError(`watch event larger than ${this.#maxLineBytes} bytes`, {
      resource: this.#resource,
    });
  }
}

/**
 * Decodes whole lines (WatchLineFramer's) into events, in order; blank lines are skipped. Bad JSON or a
 * malformed event throws DatastoreDecodeError after the events before it were delivered. Pure.
 */
export function decodeWatchLines(
  lines: Buffer,
  resource: string,
  onEvent: (event: WatchEvent) => void,
): void {
  let start = 0;
  while (start < lines.byteLength) {
    let nl = lines.indexOf(NEWLINE, start);
    if (nl < 0) nl = lines.byteLength;
    const event = decodeLine(lines.subarray(start, nl), resource);
    start = nl + 1;
    if (event !== undefined) onEvent(event);
  }
}

function decodeLine(line: Buffer, resource: string): WatchEvent | undefined {
  const text = line.toString("utf8").trim();
  if (text === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new DatastoreDecodeError("watch event is not valid JSON", { resource, cause });
  }
  return parseWatchEvent(parsed, resource);
}

/**
 * Splits a watch response body into events, on this thread: WatchLineFramer then decodeWatchLines. Handles
 * lines split across chunks; a line longer than maxLineBytes, bad JSON or a malformed event throws
 * DatastoreDecodeError (the caller restarts the watch). Pure: no I/O.
 */
export class WatchDecoder {
  readonly #framer: WatchLineFramer;
  readonly #resource: string;

  constructor(resource: string, maxLineBytes: number) {
    this.#resource = resource;
    this.#framer = new WatchLineFramer(resource, maxLineBytes);
  }

  /** Bytes of an incomplete line held. */
  get pendingBytes(): number {
    return this.#framer.pendingBytes;
  }

  /**
   * Feeds a chunk; calls `onEvent` for each event it completes, in order. A bad line throws after the
   * events before it were delivered.
   */
  push(chunk: Buffer, onEvent: (event: WatchEvent) => void): void {
    const { lines, error } = this.#framer.push(chunk);
    if (lines !== undefined) decodeWatchLines(lines, this.#resource, onEvent);
    if (error !== undefined) throw error;
  }

  /** The body ended: a last line without a trailing newline is decoded too. */
  end(onEvent: (event: WatchEvent) => void): void {
    const line = this.#framer.end();
    if (line !== undefined) decodeWatchLines(line, this.#resource, onEvent);
  }
}

/** Checks the shape of a decoded watch event: `{type, object}` with a known type and an object. */
export function parseWatchEvent(value: unknown, resource: string): WatchEvent {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new DatastoreDecodeError("watch event is not an object", { resource });
  }
  const { type, object } = value as Record<string, unknown>;
  if (typeof type !== "string" || !EVENT_TYPES.has(type)) {
    throw new DatastoreDecodeError(`watch event has unknown type ${JSON.stringify(type)}`, { resource });
  }
  if (object === null || typeof object !== "object" || Array.isArray(object)) {
    throw new DatastoreDecodeError("watch event has no object", { resource });
  }
  return { type: type as WatchEventType, object: object as KubeObject };
}
