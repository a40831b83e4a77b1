/**
 * Reads the layout of an encoded entry array (a snapshot chunk's payload) without decoding the values:
 * each entry's key and the byte range of its value, so that a client can skip the values it already
 * holds byte for byte. Only the exact layout tabby's server writes is read (an array of 2-field maps, `k`
 * then `v`, `v` a map or nil); anything else gives undefined and the caller decodes the whole payload.
 */

/** One entry of an encoded entry array: its key, and where its encoding and its value's lie. */
export interface ScannedEntry {
  readonly k: string;
  /** The whole entry's encoding: [entryStart, end). */
  readonly entryStart: number;
  /** The value's encoding: [valueStart, end); a nil value when `isNil`. */
  readonly valueStart: number;
  readonly end: number;
  readonly isNil: boolean;
}

class Malformed extends Error {}
/** Thrown and caught inside this module only: one instance, no stack to capture. */
const MALFORMED = new Malformed();

/** Bytes taken by a scalar item with type byte `t`, header included, when fixed; -1 if not fixed. */
const FIXED_SIZE = new Int8Array(256).fill(-1);
for (const [t, size] of [
  [0xc0, 1], // nil
  [0xc2, 1], // false
  [0xc3, 1], // true
  [0xca, 5], // float 32
  [0xcb, 9], // float 64
  [0xcc, 2], // uint 8
  [0xcd, 3],
  [0xce, 5],
  [0xcf, 9],
  [0xd0, 2], // int 8
  [0xd1, 3],
  [0xd2, 5],
  [0xd3, 9],
  [0xd4, 3], // fixext 1: type and data
  [0xd5, 4],
  [0xd6, 6],
  [0xd7, 10],
  [0xd8, 18],
] as const) {
  FIXED_SIZE[t] = size;
}

/** The index just past the msgpack item starting at `i`. Throws past the end or on 0xc1. */
function skip(b: Uint8Array, view: DataView, i: number): number {
  const n = b.length;
  // Items still to skip: containers add their children, so nesting needs no recursion.
  let pending = 1;
  while (pending > 0) {
    if (i >= n) throw MALFORMED;
    const t = b[i] as number;
    pending--;
    if (t < 0x80 || t >= 0xe0)
      i++; // positive and negative fixint
    else if (t >= 0xa0 && t <= 0xbf)
      i += 1 + (t & 0x1f); // fixstr
    else if (t <= 0x8f) {
      pending += 2 * (t & 0x0f); // fixmap
      i++;
    } else if (t <= 0x9f) {
      pending += t & 0x0f; // fixarray
      i++;
    } else {
      const fixed = FIXED_SIZE[t] as number;
      if (fixed > 0) i += fixed;
      else if (t === 0xd9 || t === 0xc4)
        i += 2 + view.getUint8(i + 1); // str 8, bin 8
      else if (t === 0xda || t === 0xc5) i += 3 + view.getUint16(i + 1);
      else if (t === 0xdb || t === 0xc6) i += 5 + view.getUint32(i + 1);
      else if (t === 0xc7)
        i += 3 + view.getUint8(i + 1); // ext 8: length, type, data
      else if (t === 0xc8) i += 4 + view.getUint16(i + 1);
      else if (t === 0xc9) i += 6 + view.getUint32(i + 1);
      else if (t === 0xdc) {
        pending += view.getUint16(i + 1); // array 16
        i += 3;
      } else if (t === 0xdd) {
        pending += view.getUint32(i + 1);
        i += 5;
      } else if (t === 0xde) {
        pending += 2 * view.getUint16(i + 1); // map 16
        i += 3;
      } else if (t === 0xdf) {
        pending += 2 * view.getUint32(i + 1);
        i += 5;
      } else throw MALFORMED; // 0xc1: never used
    }
  }
  if (i > n) throw MALFORMED;
  return i;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The string at `i` and the index past it; throws Malformed unless it is a msgpack str. */
function str(b: Uint8Array, view: DataView, i: number): [string, number] {
  const t = b[i] as number;
  let start: number;
  let length: number;
  if (t >= 0xa0 && t <= 0xbf) [start, length] = [i + 1, t & 0x1f];
  else if (t === 0xd9 && i + 1 < b.length) [start, length] = [i + 2, b[i + 1] as number];
  else if (t === 0xda && i + 2 < b.length) [start, length] = [i + 3, view.getUint16(i + 1)];
  else if (t === 0xdb && i + 4 < b.length) [start, length] = [i + 5, view.getUint32(i + 1)];
  else throw MALFORMED;
  if (start + length > b.length) throw MALFORMED;
  try {
    return [decoder.decode(b.subarray(start, start + length)), start + length];
  } catch {
    throw MALFORMED;
  }
}

/** Whether the msgpack item at `i` is a single-byte fixstr equal to the one-letter `name`. */
function isFieldName(b: Uint8Array, i: number, name: number): boolean {
  return b[i] === 0xa1 && b[i + 1] === name;
}

const K = 0x6b;
const V = 0x76;

/**
 * The entries of an encoded entry array, in order, or undefined when `payload` is not exactly an array of
 * `{k: string, v: map | nil}` maps written key first (the caller then decodes it the ordinary way, which
 * accepts or refuses it). Never throws.
 */
export function scanEntryArray(payload: Uint8Array): ScannedEntry[] | undefined {
  const b = payload;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  try {
    const t = b[0];
    let count: number;
    let i: number;
    if (t === undefined) return undefined;
    if (t >= 0x90 && t <= 0x9f) [count, i] = [t & 0x0f, 1];
    else if (t === 0xdc && b.length >= 3) [count, i] = [view.getUint16(1), 3];
    else if (t === 0xdd && b.length >= 5) [count, i] = [view.getUint32(1), 5];
    else return undefined;
    const out: ScannedEntry[] = [];
    for (let n = 0; n < count; n++) {
      const entryStart = i;
      if (b[i] !== 0x82 || !isFieldName(b, i + 1, K)) return undefined;
      const [k, afterKey] = str(b, view, i + 3);
      if (!isFieldName(b, afterKey, V)) return undefined;
      const valueStart = afterKey + 2;
      const vt = b[valueStart];
      const isNil = vt === 0xc0;
      if (vt === undefined || !(isNil || (vt >= 0x80 && vt <= 0x8f) || vt === 0xde || vt === 0xdf)) {
        return undefined;
      }
      i = skip(b, view, valueStart);
      out.push({ k, entryStart, valueStart, end: i, isNil });
    }
    return i === b.length ? out : undefined;
  } catch (err) {
    if (err instanceof Malformed || err instanceof RangeError) return undefined;
    throw err;
  }
}
