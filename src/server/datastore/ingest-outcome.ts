/**
 * What one upstream object or watch event becomes, before it touches the store: the part of the ingest that
 * needs no state (decode, convert and, on the worker, encode/hash/fingerprint). Computed on the main thread
 * (ingest worker off) or in the ingest worker (ingest-thread.ts), which sends it back in the compact wire
 * form below. Pure: no I/O.
 */
import type { ResourceValue } from "../../../proto/messages.js";
import { prepareValue } from "../../snapshot/prepared.js";
import type { PreparedValue } from "../../snapshot/prepared.js";
import { DatastoreDecodeError } from "./errors.js";
import type { ConvertRejection, KubeObject, UpstreamResource } from "./types.js";
import type { WatchEvent, WatchEventType } from "./watch-decoder.js";

/** What to do with one converted object. */
export type ObjectOutcome =
  /** Upsert this value (converted on the main thread). */
  | { readonly t: "upsert"; readonly key: string; readonly value: ResourceValue }
  /** Upsert this prepared value (converted and encoded in the ingest worker). */
  | { readonly t: "prepared"; readonly key: string; readonly prepared: PreparedValue }
  /**
   * Delete the key if held (null: the object maps to nothing and owns no key, an unscheduled pod); with
   * `rejected`, Calico refuses the object (counted, warned).
   */
  | {
      readonly t: "delete";
      readonly key: string | null;
      readonly rejected: ConvertRejection | undefined;
      readonly name: string | undefined;
      readonly namespace: string | undefined;
    }
  /** Could not be converted (no name, or the converter threw `err`): counted, logged at debug. */
  | {
      readonly t: "invalid";
      readonly name: string | undefined;
      readonly namespace: string | undefined;
      readonly err: unknown;
    };

/** One watch event, decoded and converted. */
export interface IngestEvent {
  readonly type: WatchEventType;
  /** The object's metadata.resourceVersion ("" or undefined: none). */
  readonly rv: string | undefined;
  /** ADDED/MODIFIED: the converted object; DELETED: a delete, or invalid without a name. */
  readonly outcome: ObjectOutcome | undefined;
  /** ERROR: the Status `code` (if a number) and `message` (if a string, at most 300 characters). */
  readonly status: { readonly code: number | undefined; readonly message: string | undefined } | undefined;
}

/** Converts one object (a list item, or the object of an ADDED/MODIFIED event). */
export function outcomeOf(resource: UpstreamResource, obj: KubeObject, isPrepared: boolean): ObjectOutcome {
  let result;
  try {
    result = resource.convert(obj);
  } catch (err) {
    return invalid(obj, err);
  }
  if (result === null) return invalid(obj, undefined);
  if (result.value === null) {
    return {
      t: "delete",
      key: result.key,
      rejected: result.rejected,
      name: obj.metadata?.name,
      namespace: obj.metadata?.namespace,
    };
  }
  if (isPrepared) return { t: "prepared", key: result.key, prepared: prepareValue(result.key, result.value) };
  return { t: "upsert", key: result.key, value: result.value };
}

/** Converts one watch event. */
export function eventOf(resource: UpstreamResource, event: WatchEvent, isPrepared: boolean): IngestEvent {
  const obj = event.object;
  const rv = obj.metadata?.resourceVersion;
  const base = { type: event.type, rv: typeof rv === "string" ? rv : undefined };
  switch (event.type) {
    case "ERROR":
      return {
        ...base,
        outcome: undefined,
        status: {
          code: typeof obj.code === "number" ? obj.code : undefined,
          message: typeof obj.message === "string" ? obj.message.slice(0, 300) : undefined,
        },
      };
    case "DELETED": {
      const key = resource.keyOf(obj);
      const outcome: ObjectOutcome =
        key === null
          ? invalid(obj, undefined)
          : { t: "delete", key, rejected: undefined, name: undefined, namespace: undefined };
      return { ...base, outcome, status: undefined };
    }
    case "BOOKMARK":
      return { ...base, outcome: undefined, status: undefined };
    default:
      return { ...base, outcome: outcomeOf(resource, obj, isPrepared), status: undefined };
  }
}

function invalid(obj: KubeObject, err: unknown): ObjectOutcome {
  return { t: "invalid", name: obj.metadata?.name, namespace: obj.metadata?.namespace, err };
}

// ---- the wire form between the ingest worker and the main thread ----

/**
 * A prepared outcome as it travels: its encoded bytes live at [off, off + len) of the reply's one
 * ArrayBuffer (one transfer per reply, not one per value).
 */
export interface WirePrepared {
  readonly t: "prepared";
  readonly key: string;
  readonly off: number;
  readonly len: number;
  readonly node: string | undefined;
  readonly hi: number;
  readonly lo: number;
  readonly sameAs: string;
}

export type WireOutcome =
  | Exclude<ObjectOutcome, { t: "prepared" } | { t: "upsert" } | { t: "invalid" }>
  | WirePrepared
  | {
      readonly t: "invalid";
      readonly name: string | undefined;
      readonly namespace: string | undefined;
      readonly err: WireError | undefined;
    };

export type WireEvent = Omit<IngestEvent, "outcome"> & { readonly outcome: WireOutcome | undefined };

/** An error as it travels (a class does not survive structured clone). */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: "Error", message: String(err), stack: undefined };
}

export function fromWireError(w: WireError): Error {
  const err = new Error(w.message);
  err.name = w.name;
  if (w.stack !== undefined) err.stack = w.stack;
  return err;
}

/** Packs outcomes for one reply: the encoded values go into one buffer. */
export class WirePacker {
  readonly #buffers: Buffer[] = [];
  #bytes = 0;

  outcome(o: ObjectOutcome): WireOutcome {
    switch (o.t) {
      case "prepared": {
        const p = o.prepared;
        const off = this.#bytes;
        this.#buffers.push(p.encoded);
        this.#bytes += p.encoded.byteLength;
        return {
          t: "prepared",
          key: o.key,
          off,
          len: p.encoded.byteLength,
          node: p.node,
          hi: p.hash.hi,
          lo: p.hash.lo,
          sameAs: p.sameAs,
        };
      }
      case "upsert":
        // The worker always prepares; reaching this is a bug.
        throw new TypeError("ingest worker: an unprepared upsert cannot travel");
      case "invalid":
        return { ...o, err: o.err === undefined ? undefined : toWireError(o.err) };
      default:
        return o;
    }
  }

  event(e: IngestEvent): WireEvent {
    return { ...e, outcome: e.outcome === undefined ? undefined : this.outcome(e.outcome) };
  }

  /** The one buffer the reply transfers (its own memory, transferable). */
  bytes(): ArrayBuffer {
    const out = new ArrayBuffer(this.#bytes);
    const view = new Uint8Array(out);
    let off = 0;
    for (const b of this.#buffers) {
      view.set(b, off);
      off += b.byteLength;
    }
    return out;
  }
}

/** Unpacks a reply's outcome; each value gets its own exact-size copy (the store keeps them for long). */
export function fromWire(w: WireOutcome, bytes: ArrayBuffer): ObjectOutcome {
  switch (w.t) {
    case "prepared": {
      const encoded = Buffer.allocUnsafeSlow(w.len);
      encoded.set(new Uint8Array(bytes, w.off, w.len));
      return {
        t: "prepared",
        key: w.key,
        prepared: { encoded, node: w.node, hash: { hi: w.hi, lo: w.lo }, sameAs: w.sameAs },
      };
    }
    case "invalid":
      return { ...w, err: w.err === undefined ? undefined : fromWireError(w.err) };
    default:
      return w;
  }
}

export function eventFromWire(w: WireEvent, bytes: ArrayBuffer): IngestEvent {
  return { ...w, outcome: w.outcome === undefined ? undefined : fromWire(w.outcome, bytes) };
}

/** A decode error as it travels: its message and its cause (the JSON parser's error, if any). */
export interface WireDecodeError {
  readonly message: string;
  readonly cause: WireError | undefined;
}

export function decodeErrorToWire(err: DatastoreDecodeError): WireDecodeError {
  return { message: err.message, cause: err.cause === undefined ? undefined : toWireError(err.cause) };
}

/** The decode error again, as the loop would have had it on this thread (it restarts the watch on it). */
export function decodeErrorFromWire(w: WireDecodeError, resource: string): DatastoreDecodeError {
  return new DatastoreDecodeError(
    w.message,
    w.cause === undefined ? { resource } : { resource, cause: fromWireError(w.cause) },
  );
}
