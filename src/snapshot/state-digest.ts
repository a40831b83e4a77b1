/**
 * Digests of a view's state, for resuming on another replica (PROTOCOL.md §5.2.1). The state of one digest
 * domain (a kind; for node-scoped kinds, a kind on one node) is the set of its `(key, resourceVersion)`
 * pairs; its digest is `{count, xor}` where `xor` is the XOR of `entryHash(key, rv)` over the set. XOR makes
 * it cheap to keep on both sides: an upsert XORs out the old pair and in the new one, order does not matter.
 *
 * `entryHash` is 64-bit FNV-1a over the UTF-8 bytes of `key + "\n" + resourceVersion` (the empty string for
 * a value without one), so that a client in any language can compute it. 64-bit values are kept as two
 * unsigned 32-bit halves (no bigint on the hot path). Pure: no I/O.
 */
import type { ResourceValue } from "../../proto/messages.js";
import { NODE_SCOPED_KINDS } from "./kinds.js";
import type { CalicoKind } from "./kinds.js";

/** A 64-bit hash or digest as two unsigned 32-bit halves. */
export interface Hash64 {
  readonly hi: number;
  readonly lo: number;
}

/** The digest of one domain: how many entries, and the XOR of their hashes. */
export interface DomainDigest extends Hash64 {
  readonly count: number;
}

export const EMPTY_DIGEST: DomainDigest = { count: 0, hi: 0, lo: 0 };

const MASK16 = 0xffff;

/** 64-bit FNV-1a of `key + "\n" + rv` (UTF-8). */
export function entryHash(key: string, rv: string): Hash64 {
  return fnv1a64Parts(`${key}\n${rv}`);
}

/** 64-bit FNV-1a of the UTF-8 bytes of `text`, as two 32-bit halves. */
export function fnv1a64Parts(text: string): Hash64 {
  // The 64-bit state in four 16-bit limbs (v0 lowest), so that every product stays exact; multiplying by
  // the FNV prime 2^40 + 0x1b3 is v·0x1b3 plus v shifted left by 40 bits (limb i lands on i+2, << 8).
  let v0 = 0x2325;
  let v1 = 0x8422;
  let v2 = 0x9ce4;
  let v3 = 0xcbf2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return fnv1a64Bytes(Buffer.from(text, "utf8"));
    v0 ^= c;
    const t0 = v0 * 0x1b3;
    let t1 = v1 * 0x1b3;
    let t2 = v2 * 0x1b3 + (v0 << 8);
    const t3 = v3 * 0x1b3 + (v1 << 8);
    t1 += t0 >>> 16;
    v0 = t0 & MASK16;
    t2 += t1 >>> 16;
    v1 = t1 & MASK16;
    v3 = (t3 + (t2 >>> 16)) & MASK16;
    v2 = t2 & MASK16;
  }
  return { hi: ((v3 << 16) | v2) >>> 0, lo: ((v1 << 16) | v0) >>> 0 };
}

function fnv1a64Bytes(bytes: Uint8Array): Hash64 {
  let v0 = 0x2325;
  let v1 = 0x8422;
  let v2 = 0x9ce4;
  let v3 = 0xcbf2;
  for (const byte of bytes) {
    v0 ^= byte;
    const t0 = v0 * 0x1b3;
    let t1 = v1 * 0x1b3;
    let t2 = v2 * 0x1b3 + (v0 << 8);
    const t3 = v3 * 0x1b3 + (v1 << 8);
    t1 += t0 >>> 16;
    v0 = t0 & MASK16;
    t2 += t1 >>> 16;
    v1 = t1 & MASK16;
    v3 = (t3 + (t2 >>> 16)) & MASK16;
    v2 = t2 & MASK16;
  }
  return { hi: ((v3 << 16) | v2) >>> 0, lo: ((v1 << 16) | v0) >>> 0 };
}

/** 64-bit FNV-1a of `text` as one unsigned bigint (tools and tests). */
export function fnv1a64(text: string): bigint {
  const h = fnv1a64Parts(text);
  return (BigInt(h.hi) << 32n) | BigInt(h.lo);
}

/** The resourceVersion a value carries (`metadata.resourceVersion`), or "" when it has none. */
export function resourceVersionOfValue(value: ResourceValue): string {
  const metadata = value.metadata;
  if (metadata === null || typeof metadata !== "object") return "";
  const rv = (metadata as Record<string, unknown>).resourceVersion;
  return typeof rv === "string" ? rv : "";
}

/** The hash of one held value. */
export function valueHash(key: string, value: ResourceValue): Hash64 {
  return entryHash(key, resourceVersionOfValue(value));
}

/** A digest as it travels: 16 lower-case hex digits. */
export function digestHex(d: Hash64): string {
  return d.hi.toString(16).padStart(8, "0") + d.lo.toString(16).padStart(8, "0");
}

/** Reads 16 lower-case hex digits; undefined for anything else. */
export function parseDigestHex(s: string): Hash64 | undefined {
  if (!/^[0-9a-f]{16}$/.test(s)) return undefined;
  return { hi: Number.parseInt(s.slice(0, 8), 16), lo: Number.parseInt(s.slice(8), 16) };
}

/**
 * The digest domain of an entry: its kind, or `kind/node` for a node-scoped kind (each session holds only
 * its own node's entries); undefined for a node-scoped entry without owner (no session holds it).
 */
export function domainOf(kind: string, node: string | undefined): string | undefined {
  if (!NODE_SCOPED_KINDS.has(kind as CalicoKind)) return kind;
  return node === undefined ? undefined : `${kind}/${node}`;
}

/** A digest that is updated one entry at a time (XOR: adding and removing are the same operation). */
export class DigestAccumulator implements DomainDigest {
  count = 0;
  hi = 0;
  lo = 0;

  add(h: Hash64): void {
    this.count++;
    this.#xor(h);
  }

  remove(h: Hash64): void {
    this.count--;
    this.#xor(h);
  }

  #xor(h: Hash64): void {
    this.hi = (this.hi ^ h.hi) >>> 0;
    this.lo = (this.lo ^ h.lo) >>> 0;
  }
}
