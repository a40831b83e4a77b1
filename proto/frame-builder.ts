import { encodeValue, packValue } from "./codec.js";
import type { DeltaEntry } from "./messages.js";

/**
 * Assembles frames from entries that were msgpack-encoded once each (`encodeEntry`). A change is encoded
 * when it enters the store and never again: delta frames, resume frames and snapshot chunks are byte
 * concatenations of those encodings. The output decodes with any msgpack decoder like a normally packed map.
 */

/**
 * Encodes one entry `{k, v}` on its own, ready to be assembled into frames. Entries are kept for a long
 * time (store, change logs), so each gets its own exact-size memory: a pooled Buffer would pin a shared
 * 8 KiB slab for as long as any entry in it lives.
 */
export function encodeEntry(entry: DeltaEntry): Buffer {
  const packed = packValue(entry);
  const own = Buffer.allocUnsafeSlow(packed.byteLength);
  own.set(packed);
  return own;
}

const KEY_CACHE = new Map<string, Buffer>();
function key(name: string): Buffer {
  let b = KEY_CACHE.get(name);
  if (b === undefined) {
    b = encodeValue(name);
    KEY_CACHE.set(name, b);
  }
  return b;
}

function mapHeader(size: number): Buffer {
  if (size < 16) return Buffer.from([0x80 | size]);
  if (size < 0x10000) return Buffer.from([0xde, size >> 8, size & 0xff]);
  throw new RangeError(`map of ${size} fields`);
}

/** msgpack array header for `length` elements. */
export function arrayHeader(length: number): Buffer {
  if (length < 16) return Buffer.from([0x90 | length]);
  if (length < 0x10000) return Buffer.from([0xdc, length >> 8, length & 0xff]);
  const b = Buffer.allocUnsafe(5);
  b[0] = 0xdd;
  b.writeUInt32BE(length, 1);
  return b;
}

function assemble(
  scalars: readonly (readonly [string, unknown])[],
  arrayField: string,
  items: readonly Uint8Array[],
): Buffer {
  const parts: Uint8Array[] = [mapHeader(scalars.length + 1)];
  for (const [name, value] of scalars) parts.push(key(name), encodeValue(value));
  parts.push(key(arrayField), arrayHeader(items.length));
  for (const item of items) parts.push(item);
  return Buffer.concat(parts);
}

/** A `deltas` frame from pre-encoded entries. */
export function assembleDeltas(from: number, to: number, encodedChanges: readonly Uint8Array[]): Buffer {
  return assemble(
    [
      ["t", "deltas"],
      ["from", from],
      ["to", to],
    ],
    "changes",
    encodedChanges,
  );
}

/** A compressed `deltas` frame: `z` is deflateDeltas of the entry array, `count` its number of changes. */
export function assembleCompressedDeltas(from: number, to: number, count: number, z: Uint8Array): Buffer {
  return encodeValue({ t: "deltas", from, to, n: count, z });
}

/** A `snap-chunk` frame from pre-encoded entries. */
export function assembleSnapshotChunk(index: number, encodedEntries: readonly Uint8Array[]): Buffer {
  return assemble(
    [
      ["t", "snap-chunk"],
      ["index", index],
    ],
    "entries",
    encodedEntries,
  );
}

/** A bare msgpack array of pre-encoded entries (the payload that `z` compresses). */
export function assembleEntryArray(encodedEntries: readonly Uint8Array[]): Buffer {
  return Buffer.concat([arrayHeader(encodedEntries.length), ...encodedEntries]);
}
