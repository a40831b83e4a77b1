/**
 * Reads the revisions of a `deltas` frame without decoding its changes: the top-level msgpack map is
 * walked, `t`, `from` and `to` are read, everything else is skipped by length, and the `changes` array,
 * when it is the last field (as the frame builder writes it), is not even walked. Nothing is allocated per
 * change. For lite clients that do not look at the values
 * (`decodeDeltas: false`, load tests): decoding every value, and collecting the garbage, is most of what
 * a lite client spends its CPU on.
 */

export interface SkimmedDeltas {
  readonly from: number;
  readonly to: number;
  /** Entries in `changes`. */
  readonly count: number;
}

/** Bytes after the type byte, for msgpack types of fixed size (0: not a fixed-size type). */
const FIXED_SIZE = new Uint8Array(256);
FIXED_SIZE[0xca] = 4; // float32
FIXED_SIZE[0xcb] = 8; // float64
FIXED_SIZE[0xcc] = 1; // uint8
FIXED_SIZE[0xcd] = 2; // uint16
FIXED_SIZE[0xce] = 4; // uint32
FIXED_SIZE[0xcf] = 8; // uint64
FIXED_SIZE[0xd0] = 1; // int8
FIXED_SIZE[0xd1] = 2; // int16
FIXED_SIZE[0xd2] = 4; // int32
FIXED_SIZE[0xd3] = 8; // int64
FIXED_SIZE[0xd4] = 2; // fixext 1
FIXED_SIZE[0xd5] = 3; // fixext 2
FIXED_SIZE[0xd6] = 5; // fixext 4
FIXED_SIZE[0xd7] = 9; // fixext 8
FIXED_SIZE[0xd8] = 17; // fixext 16

const BAD = -1;

function be16(b: Uint8Array, at: number): number {
  return ((b[at] as number) << 8) | (b[at + 1] as number);
}

function be32(b: Uint8Array, at: number): number {
  return (
    (b[at] as number) * 0x1000000 +
    (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number))
  );
}

/**
 * Skips `count` msgpack values starting at `pos` (nested maps and arrays included); returns the position
 * after them, or BAD when the bytes end early or hold the unused type 0xc1.
 */
function skipValues(b: Uint8Array, start: number, count: number): number {
  const end = b.length;
  let pos = start;
  let remaining = count;
  while (remaining > 0) {
    if (pos >= end) return BAD;
    const t = b[pos++] as number;
    remaining--;
    if (t < 0x80 || t >= 0xe0) continue; // fixint
    if (t < 0x90) {
      remaining += 2 * (t & 0x0f); // fixmap
    } else if (t < 0xa0) {
      remaining += t & 0x0f; // fixarray
    } else if (t < 0xc0) {
      pos += t & 0x1f; // fixstr
    } else if (t === 0xc0 || t === 0xc2 || t === 0xc3) {
      continue; // nil, false, true
    } else if (FIXED_SIZE[t] !== 0) {
      pos += FIXED_SIZE[t] as number;
    } else if (t === 0xc4 || t === 0xd9) {
      if (pos + 1 > end) return BAD;
      pos += 1 + (b[pos] as number); // bin8, str8
    } else if (t === 0xc5 || t === 0xda) {
      if (pos + 2 > end) return BAD;
      pos += 2 + be16(b, pos); // bin16, str16
    } else if (t === 0xc6 || t === 0xdb) {
      if (pos + 4 > end) return BAD;
      pos += 4 + be32(b, pos); // bin32, str32
    } else if (t === 0xc7) {
      if (pos + 1 > end) return BAD;
      pos += 2 + (b[pos] as number); // ext8: length, type, data
    } else if (t === 0xc8) {
      if (pos + 2 > end) return BAD;
      pos += 3 + be16(b, pos);
    } else if (t === 0xc9) {
      if (pos + 4 > end) return BAD;
      pos += 5 + be32(b, pos);
    } else if (t === 0xdc) {
      if (pos + 2 > end) return BAD;
      remaining += be16(b, pos);
      pos += 2;
    } else if (t === 0xdd) {
      if (pos + 4 > end) return BAD;
      remaining += be32(b, pos);
      pos += 4;
    } else if (t === 0xde) {
      if (pos + 2 > end) return BAD;
      remaining += 2 * be16(b, pos);
      pos += 2;
    } else if (t === 0xdf) {
      if (pos + 4 > end) return BAD;
      remaining += 2 * be32(b, pos);
      pos += 4;
    } else {
      return BAD; // 0xc1: never used
    }
  }
  return pos > end ? BAD : pos;
}

/** Compares the msgpack string at `pos` with an ASCII name; returns the position after it, or BAD. */
function matchKey(b: Uint8Array, pos: number, name: string): number {
  const t = b[pos];
  if (t === undefined || t < 0xa0 || t > 0xbf || (t & 0x1f) !== name.length) return BAD;
  for (let i = 0; i < name.length; i++) if (b[pos + 1 + i] !== name.charCodeAt(i)) return BAD;
  return pos + 1 + name.length;
}

/** Reads an integer at `pos` (as encoders write revisions): [value, next position], or undefined. */
function readInt(b: Uint8Array, pos: number): [number, number] | undefined {
  const t = b[pos];
  if (t === undefined) return undefined;
  if (t < 0x80) return [t, pos + 1];
  const size = FIXED_SIZE[t] as number;
  if (pos + 1 + size > b.length) return undefined;
  const view = new DataView(b.buffer, b.byteOffset + pos + 1, size === 0 ? 0 : size);
  switch (t) {
    case 0xcc:
      return [view.getUint8(0), pos + 2];
    case 0xcd:
      return [view.getUint16(0), pos + 3];
    case 0xce:
      return [view.getUint32(0), pos + 5];
    case 0xcf:
      return [Number(view.getBigUint64(0)), pos + 9];
    case 0xd0:
      return [view.getInt8(0), pos + 2];
    case 0xd1:
      return [view.getInt16(0), pos + 3];
    case 0xd2:
      return [view.getInt32(0), pos + 5];
    case 0xd3:
      return [Number(view.getBigInt64(0)), pos + 9];
    case 0xcb: {
      const v = view.getFloat64(0);
      return Number.isInteger(v) ? [v, pos + 9] : undefined;
    }
    default:
      return t >= 0xe0 ? [t - 0x100, pos + 1] : undefined;
  }
}

/**
 * The revisions and change count of a `deltas` frame; undefined when the frame is anything else or not
 * well-formed (the caller then decodes it normally, which validates it and reports what is wrong).
 */
export function skimDeltas(frame: Uint8Array): SkimmedDeltas | undefined {
  const head = frame[0];
  let fields: number;
  let pos: number;
  if (head !== undefined && head >= 0x80 && head <= 0x8f) {
    fields = head & 0x0f;
    pos = 1;
  } else if (head === 0xde && frame.length >= 3) {
    fields = be16(frame, 1);
    pos = 3;
  } else {
    return undefined;
  }
  let isDeltas = false;
  let from: number | undefined;
  let to: number | undefined;
  let count = 0;
  for (let i = 0; i < fields; i++) {
    let next: number;
    if ((next = matchKey(frame, pos, "t")) !== BAD) {
      const at = matchKey(frame, next, "deltas");
      if (at === BAD) return undefined;
      isDeltas = true;
      pos = at;
    } else if ((next = matchKey(frame, pos, "from")) !== BAD || (next = matchKey(frame, pos, "to")) !== BAD) {
      const isFrom = frame[pos] === 0xa4;
      const read = readInt(frame, next);
      if (read === undefined) return undefined;
      if (isFrom) from = read[0];
      else to = read[0];
      pos = read[1];
    } else if ((next = matchKey(frame, pos, "n")) !== BAD) {
      // A compressed frame ("deflate-deltas") says how many changes its `z` holds.
      const read = readInt(frame, next);
      if (read === undefined || read[0] < 0) return undefined;
      count = read[0];
      pos = read[1];
    } else if ((next = matchKey(frame, pos, "changes")) !== BAD) {
      const t = frame[next];
      if (t !== undefined && t >= 0x90 && t <= 0x9f) {
        count = t & 0x0f;
        pos = next + 1;
      } else if (t === 0xdc && next + 3 <= frame.length) {
        count = be16(frame, next + 1);
        pos = next + 3;
      } else if (t === 0xdd && next + 5 <= frame.length) {
        count = be32(frame, next + 1);
        pos = next + 5;
      } else {
        return undefined;
      }
      // The frame builder puts `changes` last: then the array runs to the end of the frame and need not
      // be walked (its entries are not validated either way). Elsewhere, it is walked to find the end.
      pos = i === fields - 1 ? frame.length : skipValues(frame, pos, count);
    } else {
      pos = skipValues(frame, pos, 2); // an unknown field: its key and value
    }
    if (pos === BAD) return undefined;
  }
  if (pos !== frame.length || !isDeltas || from === undefined || to === undefined) return undefined;
  return { from, to, count };
}
