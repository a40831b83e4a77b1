import { DatastoreDecodeError } from "./errors.js";
import type { KubeObject } from "./types.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
const EVENT_TYPES: ReadonlySet<string> = new Set(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

export interface WatchEvent {
  readonly type: WatchEventType;
  readonly object: KubeObject;
}

const NEWLINE = 0x0a;

/**
 * Splits a watch response body (one JSON document per line, delivered in arbitrary chunks) into events.
 * Handles lines split across chunks; a line longer than maxLineBytes, bad JSON or a malformed event throws
 * DatastoreDecodeError (the caller restarts the watch). Pure: no I/O.
 */
export class WatchDecoder {
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

  /**
   * Feeds a chunk; calls `onEvent` for each event it completes, in order. A bad line throws after the
   * events before it were delivered.
   */
  push(chunk: Buffer, onEvent: (event: WatchEvent) => void): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      this.#checkSize(piece.byteLength);
      const line = this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]);
      this.#parts = [];
      this.#pendingBytes = 0;
      start = nl + 1;
      const event = this.#decode(line);
      if (event !== undefined) onEvent(event);
    }
    if (start < chunk.byteLength) {
      const rest = chunk.subarray(start);
      this.#checkSize(rest.byteLength);
      this.#parts.push(rest);
      this.#pendingBytes += rest.byteLength;
    }
  }

  /** The body ended: a last line without a trailing newline is decoded too. */
  end(onEvent: (event: WatchEvent) => void): void {
    if (this.#parts.length === 0) return;
    const line = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#pendingBytes = 0;
    const event = this.#decode(line);
    if (event !== undefined) onEvent(event);
  }

  #checkSize(extra: number): void {
    if (this.#pendingBytes + extra > this.#maxLineBytes) {
      this.#parts = [];
      this.#pendingBytes = 0;
      throw new DatastoreDecodeError(`watch event larger than ${this.#maxLineBytes} bytes`, {
        resource: this.#resource,
      });
    }
  }

  #decode(line: Buffer): WatchEvent | undefined {
    const text = line.toString("utf8").trim();
    if (text === "") return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new DatastoreDecodeError("watch event is not valid JSON", { resource: this.#resource, cause });
    }
    return parseWatchEvent(parsed, this.#resource);
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
