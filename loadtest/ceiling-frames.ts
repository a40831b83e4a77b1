import { CHANGED_AT_ANNOTATION } from "../src/server/datastore/index.js";

/**
 * The ceiling broadcaster's `deltas` frames: encoded once per size (a template), copied and patched per
 * send (revisions, keys, the change stamp), never encoded per session. A frame of `changes` changes is
 * exactly `bytes` long (when that is at least the smallest such frame), so that the broadcaster sends the
 * bytes tabby sent. The first change carries the `tabby.dev/changed-at` stamp the agents measure latency
 * with, and the padding; the others are small. Every value carries the frame's revision (`r`), so that a
 * mirror never sees an update equal to what it holds; keys cycle through KEY_POOL names.
 */

/** Distinct keys (`C/0000`..`C/ffff`): a full agent's mirror holds at most this many entries. */
export const KEY_POOL = 0x10000;
const KEY_DIGITS = 4;
const STAMP_DIGITS = 13;

export interface FrameTemplate {
  readonly bytes: Buffer;
  readonly changes: number;
  /** Offsets of the 4-byte big-endian `from` and `to`. */
  readonly fromAt: number;
  readonly toAt: number;
  /** Offset of the 13 ASCII digits of the stamp. */
  readonly stampAt: number;
  /** Per change: offsets of its 4 hex digits of key and of its 4-byte `r`. */
  readonly keyAt: readonly number[];
  readonly revAt: readonly number[];
  /** True when `bytes` was asked smaller than the smallest frame of that many changes. */
  readonly isOverSize: boolean;
}

class Writer {
  readonly parts: Buffer[] = [];
  length = 0;

  raw(...bytes: number[]): void {
    this.push(Buffer.from(bytes));
  }

  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.byteLength;
  }

  /** A string with the header of its length class (fixstr, str8, str16, str32), or `header` forced. */
  str(s: string, header?: "fix" | "8" | "16" | "32"): void {
    const body = Buffer.from(s, "latin1");
    const n = body.byteLength;
    const kind = header ?? (n < 32 ? "fix" : n < 0x100 ? "8" : n < 0x10000 ? "16" : "32");
    if (kind === "fix") this.raw(0xa0 | n);
    else if (kind === "8") this.raw(0xd9, n);
    else if (kind === "16") this.raw(0xda, n >> 8, n & 0xff);
    else {
      const h = Buffer.alloc(5);
      h[0] = 0xdb;
      h.writeUInt32BE(n, 1);
      this.push(h);
    }
    this.push(body);
  }

  /** A uint32 placeholder (0xce + 4 bytes); returns the offset of the 4 bytes. */
  u32(): number {
    this.raw(0xce, 0, 0, 0, 0);
    return this.length - 4;
  }

  arrayHeader(n: number): void {
    if (n < 16) this.raw(0x90 | n);
    else if (n < 0x10000) this.raw(0xdc, n >> 8, n & 0xff);
    else {
      const h = Buffer.alloc(5);
      h[0] = 0xdd;
      h.writeUInt32BE(n, 1);
      this.push(h);
    }
  }

  /** The key `C/` + 4 hex digits (zeros); returns the offset of the digits. */
  key(): number {
    this.str("k");
    this.str(`C/${"0".repeat(KEY_DIGITS)}`);
    return this.length - KEY_DIGITS;
  }
}

/** Bytes of a padding field `p` with `length` characters: key, header, body (see Writer.str). */
function padHeader(room: number): { length: number; header: "fix" | "8" | "16" | "32" } | undefined {
  // room = 2 ("p") + header + length
  if (room < 3) return undefined;
  if (room - 3 < 32) return { length: room - 3, header: "fix" };
  if (room - 4 < 0x100) return { length: room - 4, header: "8" };
  if (room - 5 < 0x10000) return { length: room - 5, header: "16" };
  return { length: room - 7, header: "32" };
}

function build(
  changes: number,
  pad: { length: number; header: "fix" | "8" | "16" | "32" } | undefined,
  keySuffix: number,
): FrameTemplate & { size: number } {
  const w = new Writer();
  w.raw(0x84);
  w.str("t");
  w.str("deltas");
  w.str("from");
  const fromAt = w.u32();
  w.str("to");
  const toAt = w.u32();
  w.str("changes");
  w.arrayHeader(changes);
  const keyAt: number[] = [];
  const revAt: number[] = [];
  // The first change: stamped, padded.
  w.raw(0x82);
  w.str("k");
  w.str(`C/${"0".repeat(KEY_DIGITS)}${"-".repeat(keySuffix)}`);
  keyAt.push(w.length - KEY_DIGITS - keySuffix);
  w.str("v");
  w.raw(pad === undefined ? 0x82 : 0x83);
  w.str("metadata");
  w.raw(0x81);
  w.str("annotations");
  w.raw(0x81);
  w.str(CHANGED_AT_ANNOTATION);
  w.str("0".repeat(STAMP_DIGITS));
  const stampAt = w.length - STAMP_DIGITS;
  w.str("r");
  revAt.push(w.u32());
  if (pad !== undefined) {
    w.str("p");
    w.str("x".repeat(pad.length), pad.header);
  }
  for (let i = 1; i < changes; i++) {
    w.raw(0x82);
    keyAt.push(w.key());
    w.str("v");
    w.raw(0x81);
    w.str("r");
    revAt.push(w.u32());
  }
  const bytes = Buffer.concat(w.parts);
  return { bytes, changes, fromAt, toAt, stampAt, keyAt, revAt, isOverSize: false, size: bytes.byteLength };
}

/** The template of a frame of `changes` (≥ 1) changes, `bytes` long when that is possible (else smallest). */
export function frameTemplate(bytes: number, changes: number): FrameTemplate {
  if (!Number.isSafeInteger(changes) || changes < 1) throw new RangeError(`changes: ${changes}`);
  const smallest = build(changes, undefined, 0);
  const room = bytes - smallest.size;
  let t: FrameTemplate & { size: number };
  if (room <= 0) t = { ...smallest, isOverSize: room < 0 };
  else if (room < 3)
    t = build(changes, undefined, room); // a longer first key: fixstr up to 31 bytes
  else t = build(changes, padHeader(room), 0);
  const { size: _size, ...template } = t;
  return template;
}

/** The smallest frame of `changes` changes (bytes). */
export function smallestFrameBytes(changes: number): number {
  return frameTemplate(0, changes).bytes.byteLength;
}

/**
 * A copy of the template ready to send: revisions `from` → `to` (every change carries `to`), keys from
 * `firstKey` on (mod KEY_POOL), the stamp `nowMs`.
 */
export function stampFrame(
  t: FrameTemplate,
  from: number,
  to: number,
  firstKey: number,
  nowMs: number,
): Buffer {
  const b = Buffer.from(t.bytes);
  b.writeUInt32BE(from >>> 0, t.fromAt);
  b.writeUInt32BE(to >>> 0, t.toAt);
  b.write(String(Math.trunc(nowMs)).padStart(STAMP_DIGITS, "0").slice(-STAMP_DIGITS), t.stampAt, "latin1");
  for (let i = 0; i < t.changes; i++) {
    const key = ((firstKey + i) % KEY_POOL).toString(16).padStart(KEY_DIGITS, "0");
    b.write(key, t.keyAt[i] ?? 0, "latin1");
    b.writeUInt32BE(to >>> 0, t.revAt[i] ?? 0);
  }
  return b;
}
